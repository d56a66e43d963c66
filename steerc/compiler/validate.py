"""The validation pass: everything about a resolved program that depends on its base model.

    info = validate_program(program)           # raises DiagnosticError, else the ModelInfo
    diags = validate(program, info)            # the pure half: Program x ModelInfo -> diagnostics

`check`, `explain` and `compile` all run it, `compile` before it writes anything, so a spec
`check` accepts is one `compile` accepts (for the same model files): `check` is the contract
CI can rely on. It reads `config.json` and the safetensors headers (modeldesc.py), never
weights, and never imports torch. Every diagnostic points at the spec line that caused it:

    model line   E490 unsupported architecture (naming the supported ones), E601-E607 and
                 E240/E241 unusable model files
    sae line     E309 an SAE on a residual-space hook whose d_in is not the hidden size
    rule line    E491 hook point unknown to the family, E492 layer out of range, and the hook
                 builder's E493-E497 (`hook_problems`, which the builder itself also runs)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from steerc.arch.hookpoint import HookPoint
from steerc.compiler.ir import Intervention, Op, Program
from steerc.compiler.modeldesc import ModelInfo, describe_model
from steerc.diagnostics import Diagnostic, DiagnosticError, Span



def _at(diags: Iterable[Diagnostic], span: Span | None) -> list[Diagnostic]:
    """The diagnostics, placed at `span` where they carry none."""
    return [d if d.span or span is None else Diagnostic(d.code, d.message, span, d.hint)
            for d in diags]


def validate_program(program: Program) -> ModelInfo:
    """Describe the program's model and validate the program against it; raises
    DiagnosticError with every problem found, each at its spec line."""
    try:
        info = describe_model(program.model)
    except DiagnosticError as e:
        raise DiagnosticError(_at(e.diagnostics, program.model_span)) from None
    diags = validate(program, info)
    if any(d.is_error for d in diags):
        raise DiagnosticError(diags)
    return info


def validate(program: Program, model: ModelInfo) -> list[Diagnostic]:
    """Every problem of `program` on `model` (pure: no file is read)."""
    from steerc.arch.registry import adapter_for

    try:
        adapter = adapter_for(model.model_type or "")
    except DiagnosticError as e:
        return _at(e.diagnostics, program.model_span)
    out: list[Diagnostic] = []
    d_model = adapter.d_model(model)
    for b in program.saes:
        point = HookPoint.read(b.hook)
        if point is not None and point.residual_space and b.d_in != d_model:
            out.append(Diagnostic("E309", f"SAE '{b.alias}' has d_in {b.d_in} but the model's "
                                  f"hidden size is {d_model} (hook {b.hook})", b.span,
                                  "this SAE was trained on a different model (or a hook_z / "
                                  "MLP-hidden hook)"))
    named_ok = True
    for iv in program.interventions:
        for point in iv.points + ((iv.condition.hook,) if iv.condition else ()):
            try:
                adapter.module(point, model)
            except DiagnosticError as e:
                out += _at(e.diagnostics, iv.span)
                named_ok = False
                break
    if named_ok:  # hook_problems orders points: it needs known names
        out += hook_problems(program.interventions,
                             {b.alias: (b.hook, b.d_in) for b in program.saes})
    return out


def hook_problems(ivs: Iterable[Intervention], saes: Mapping[str, tuple[str, int]]) -> list[Diagnostic]:
    """What the hook builder cannot build (E493-E497), for `ivs` whose SAEs are `saes`
    (alias -> (hook name, d_in)). Shared by the validation pass and `runtime.build_hooks`."""
    ivs = tuple(ivs)
    out: list[Diagnostic] = []

    def fail(code: str, message: str, iv: Intervention, hint: str | None = None) -> None:
        out.append(Diagnostic(code, message, iv.span, hint))

    points: dict[str, list[Intervention]] = {}
    for iv in ivs:
        if iv.op == Op.PROJECT_OUT and iv.everywhere:
            if iv.positions != "all" or iv.condition is not None:
                fail("E493", "an 'everywhere' ablation cannot be limited to positions or a "
                     "condition", iv, "drop 'everywhere' to ablate at the feature's own hook point")
            continue
        for p in iv.points:
            points.setdefault(p, []).append(iv)
    for point, items in points.items():
        for iv in items:
            c = iv.condition
            if c is not None and c.hook != point and HookPoint.parse(c.hook) >= HookPoint.parse(point):
                fail("E495", f"the condition reads '{c.hook}', which the forward pass reaches "
                     f"after '{point}' where the rule acts", iv,
                     "a condition must be read at the same or an earlier hook point")
    for point in sorted(points, key=HookPoint.parse):
        items = points[point]
        width = saes[items[0].feature.sae][1]
        for iv in items:
            hook, d_in = saes[iv.feature.sae]
            if iv.op.reads_activation and hook != point:
                fail("E494", f"{iv.feature} is an SAE feature of '{hook}' and cannot be read at "
                     f"'{point}'", iv)
            if iv.condition is not None and iv.condition.hook != saes[iv.condition.feature.sae][0]:
                cf = iv.condition.feature
                fail("E495", f"condition on {cf} names '{iv.condition.hook}' but its SAE reads "
                     f"'{saes[cf.sae][0]}'", iv)
            if d_in != width:
                fail("E497", f"{iv.feature} has a {d_in}-dim decoder row; '{point}' holds "
                     f"{width}-dim vectors", iv)
        ablations = [iv for iv in items if iv.op == Op.PROJECT_OUT]
        if len({iv.positions for iv in ablations}) > 1 or any(iv.condition for iv in ablations):
            fail("E496", f"ablations at '{point}' must share one position scope and have no "
                 "condition", ablations[0])
    return out
