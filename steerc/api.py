"""steerc as a library: the five things the CLI does, callable from Python.

    import steerc

    checked = steerc.check("specs/examples/no_code.steer")           # parse + resolve, no torch
    checked.summary, checked.rules[0].rule, len(checked.rules[0].features)
    explained = steerc.explain("specs/examples/no_code.steer")       # how each rule lowers
    print(explained.render())
    built = steerc.compile("specs/examples/no_code.steer", "build/no_code", force=True)
    built.target, built.trust_remote_code, built.tensors_rewritten
    report = steerc.verify("build/no_code")                          # base vs steered
    report.ok
    curve = steerc.calibrate("specs/examples/prose_auto.steer")     # the t of `by auto` rules
    curve.chosen.t, curve.lock_written
    traced = steerc.trace("def f(x):", spec="specs/examples/no_code.steer", top=5)
    traced.rows[0].hits

Bad input raises `steerc.DiagnosticError`, whose `.diagnostics` is the list of
`steerc.Diagnostic(code, message, span, hint)` the CLI would print; warnings come back on the
results (`.warnings`). Nothing is printed. The CLI commands (`steerc/commands/`) are these
functions plus argument parsing and output. torch and transformers are imported only by the
functions that need them (`compile`, `explain`, `verify`, `trace`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from steerc.compiler.ir import FeatureId, Intervention, Program
from steerc.compiler.rulegroups import RuleGroup, group_by_rule, op_summary
from steerc.diagnostics import Diagnostic, DiagnosticError, Span

if TYPE_CHECKING:
    from steerc.calibration import Curve
    from steerc.compiler.plan import Plan
    from steerc.verify import Report
    from steerc.verify.trace import TokenRow, TracedSae

PathLike = str | os.PathLike


@dataclass(frozen=True)
class Lowered:
    """How some of a rule's features lower: `kind` weights | hook | refused, the E4xx `code`
    of a refusal, `reason` (why), and how many features went this way."""

    kind: str
    reason: str
    count: int
    code: str | None = None


@dataclass(frozen=True)
class RuleSummary:
    """One source rule: its text as written, its span, the features it resolved to, its ops
    (`set_activation = 0 x568, scale_activation by 2 x349`) and, after planning, how they lower."""

    rule: str
    span: Span | None
    features: tuple[FeatureId, ...]
    ops: str
    lowered: tuple[Lowered, ...] = ()


@dataclass(frozen=True)
class Checked:
    """What `check` found: the resolved program, warnings, a one-line summary, the rules, and
    the lock file it compared against (`locked`) or wrote (`lock_written`)."""

    spec: str
    program: Program
    warnings: tuple[Diagnostic, ...]
    summary: str
    rules: tuple[RuleSummary, ...]
    lock_path: Path
    locked: bool = False
    lock_written: bool = False
    target: str | None = None    # what `target=` asked for (None: not planned)
    planned: str | None = None   # what it resolved to (auto -> weights or hooks)


@dataclass(frozen=True)
class Explained:
    """How a spec lowers for a target. `refusals` are the E410/E411 diagnostics `--target
    weights` would stop at (`ok` is False then); `render()` is the text `steerc explain` prints."""

    spec: str
    program: Program
    plan: "Plan"
    requested_target: str
    target: str
    rules: tuple[RuleSummary, ...]
    warnings: tuple[Diagnostic, ...]
    refusals: tuple[Diagnostic, ...]

    @property
    def ok(self) -> bool:
        return not any(d.is_error for d in self.refusals)

    def render(self, *, features: bool = False) -> str:
        """The program and the plan as text; one block per source rule, or per feature."""
        from steerc.compiler.describe import describe_plan, describe_program

        return "\n".join(["program:", describe_program(self.program, features=features),
                          describe_plan(self.plan, features=features)])

    def to_json(self) -> dict[str, Any]:
        """Every rule with every feature and its lowering (`steerc explain --json`)."""
        rules = []
        for g in group_by_rule(self.plan.lowerings, key=lambda lo: lo.intervention):
            rules.append({"rule": g.origin, "span": str(g.span) if g.span else None,
                          "n_features": len(g), "features": [_lowering_json(lo) for lo in g.items]})
        return {"spec": self.spec, "family": self.plan.family, "requested_target": self.requested_target,
                "target": self.target, "untie": self.plan.untie, "json_guard": self.plan.json_guard,
                "rules": rules, "refusals": [_diag_json(d) for d in self.refusals]}


@dataclass(frozen=True)
class Compiled:
    """A written checkpoint: where, the resolved target, counts, whether loading it needs
    `trust_remote_code=True`, the rules, warnings and the manifest (`steerc-manifest.json`)."""

    out: Path
    requested_target: str
    target: str
    weight_edits: int
    hooks: int
    tensors_rewritten: int
    trust_remote_code: bool
    rules: tuple[RuleSummary, ...]
    warnings: tuple[Diagnostic, ...]
    manifest: dict = field(repr=False, compare=False)


@dataclass(frozen=True)
class Traced:
    """Per token of `text`, the SAE features that fire most (`rows[i].hits`, highest first)."""

    text: str
    top: int
    saes: tuple["TracedSae", ...] = field(repr=False)
    rows: tuple["TokenRow", ...]

    def table(self) -> str:
        """The text table `steerc trace` prints."""
        from steerc.verify.trace import trace_table

        return trace_table(list(self.rows), self.top)

    def to_json(self) -> dict[str, Any]:
        """The document `steerc trace --format json` prints."""
        from steerc.verify.trace import trace_json

        return trace_json(self.text, list(self.saes), list(self.rows))


# ---- the functions ------------------------------------------------------------------------


def check(spec: PathLike, *, catalogue: PathLike | None = None, lock: PathLike | None = None,
          locked: bool = False, write_lock: bool = False, allow_pickle: bool = False,
          target: str | None = None) -> Checked:
    """Parse and resolve `spec` against its catalogue and SAEs, then run the validation pass
    (`compiler/validate.py`: the model's config.json and safetensors headers, never its
    weights, no torch), so a spec `check` accepts is not refused by `compile` for its model.

    `locked`: raise E222 when the resolution differs from the lock file; `write_lock`: write
    it. The lock file is `lock`, else `<spec>.lock` beside the spec. `catalogue` replaces the
    spec's own; `allow_pickle` lets torch-pickled SAE files load (they can run code).
    `target`: also plan the spec for this target as `compile` does before writing (its
    refusals, E410-E418; the tensors a weight edit would rewrite, E608/E609), from the model's
    config and headers; this reads the config through transformers."""
    from steerc.compiler.describe import summary
    from steerc.compiler.lock import build_lock, write_lock as write

    if locked and write_lock:
        raise ValueError("check: locked and write_lock exclude each other")
    if target is not None:
        _check_target(target)
    lock_path = _lock_path(spec, lock)
    program, warnings, calibration = _load(spec, catalogue, allow_pickle, lock_path=lock_path)
    info = _validate(program, warnings)
    planned = None if target is None else _plan_checked(program, info, target, warnings)
    if locked or write_lock:
        new = build_lock(program, lock_path.parent, calibration)
        if locked:
            _check_locked(new, program, lock_path, spec, warnings)
        else:  # never over, into or above an input of the spec
            from steerc.compiler.inputs import program_inputs

            write(new, lock_path, program_inputs(program))
    return Checked(str(spec), program, tuple(warnings), summary(program), _rules(program.interventions),
                   lock_path, locked=locked, lock_written=write_lock, target=target, planned=planned)


def _plan_checked(program: Program, info, target: str, warnings: list[Diagnostic]) -> str:
    """What `compile --target` checks before it writes, without loading a weight: the plan
    (refusals raise) and the tensors its weight edits rewrite. Returns the planned target."""
    from steerc.checkpoint.reader import open_checkpoint
    from steerc.compiler.build_checkpoint import load_base
    from steerc.compiler.plan import plan as make_plan
    from steerc.compiler.weight_plan import check_edit_targets

    try:
        config, _, adapter = load_base(info.root)
        p = make_plan(program, config, adapter, target)
        check_edit_targets(p, open_checkpoint(info.root), config)
    except DiagnosticError as e:  # after the resolve warnings, as the validation pass does
        raise DiagnosticError(list(warnings) + list(e.diagnostics)) from None
    return p.target


def explain(spec: PathLike, *, target: str = "auto", catalogue: PathLike | None = None,
            allow_pickle: bool = False) -> Explained:
    """Resolve `spec` and plan it for `target` (auto or a name in `steerc.targets.TARGETS`) without writing
    anything; refused rules are reported on the result (`refusals`), not raised."""
    from steerc.compiler.build_checkpoint import load_base
    from steerc.compiler.plan import plan as make_plan

    _check_target(target)
    program, warnings, _ = _load(spec, catalogue, allow_pickle, lock_path=_lock_path(spec, None))
    info = _validate(program, warnings)
    config, _, adapter = load_base(info.root)
    p = make_plan(program, config, adapter, target, check=False)
    return Explained(str(spec), program, p, target, p.target, _planned_rules(p), tuple(warnings),
                     tuple(p.diagnostics))


def compile(spec: PathLike, out: PathLike, *, target: str = "auto", force: bool = False,  # noqa: A001
            catalogue: PathLike | None = None, lock: PathLike | None = None, locked: bool = False,
            jobs: int | None = None, progress: bool = False, allow_pickle: bool = False) -> Compiled:
    """Compile `spec` into an output directory `out` (written atomically).

    `target`: auto (weights when every rule is an exact weight edit, else hooks), or any name
    in `steerc.targets.TARGETS`: weights (a plain checkpoint; refuses anything else, E410),
    hooks, lora (a PEFT adapter), gguf-cvec (a llama.cpp control vector). `force` replaces an existing
    `out` (E401 otherwise). `locked`: E222 when the resolution differs from the lock file
    (`lock`, else `<spec>.lock`); the lock text is copied into the checkpoint as `steer.lock`.
    `jobs`: tensors made at once (the output does not depend on it)."""
    from steerc.compiler.build_checkpoint import compile_program
    from steerc.compiler.lock import build_lock, dumps_lock

    _check_target(target)
    lock_path = _lock_path(spec, lock)
    program, warnings, calibration = _load(spec, catalogue, allow_pickle, fetch_weights=True,
                                           progress=progress, lock_path=lock_path)
    new = build_lock(program, lock_path.parent, calibration)
    if locked:
        _check_locked(new, program, lock_path, spec, warnings)
    try:
        res = compile_program(program, out, target=target, force=force, progress=progress,
                              lock_text=dumps_lock(new), allow_pickle=allow_pickle,
                              jobs=None if jobs is None else max(1, jobs))
    except DiagnosticError as e:  # the resolve warnings still belong to the report
        raise DiagnosticError(list(warnings) + list(e.diagnostics)) from None
    p = res.plan
    return Compiled(res.out, target, p.target, len(p.weight_edits), len(p.hooks),
                    len(res.manifest["edits"]), res.artifacts.remote_code,
                    _planned_rules(p), tuple(warnings), res.manifest)


def verify(checkpoint: PathLike, *, prompts: PathLike | None = None, neutral: PathLike | None = None,
           base_model: PathLike | None = None, max_windows: int = 32, max_new_tokens: int = 48,
           allow_pickle: bool = False, blame: str = "failing", blame_rules: int = 8) -> "Report":
    """Measure a compiled checkpoint against its base: feature activations, KL on neutral
    text, the spec's `expect`s (`Report.ok` is False when one failed, or when a targeted
    feature moved against its rule: verdict `failed`). The shipped code is checked against
    the manifest before anything loads (E504). `blame`: "failing" re-measures each failing
    expectation with each of the first `blame_rules` rules left out and alone
    (`Report.blame`), "all" every expectation, "off" none (E570 for anything else)."""
    from steerc.verify.run import Options, verify_checkpoint

    opts = Options(prompts=_str(prompts), neutral=_str(neutral), base_model=_str(base_model),
                   max_windows=max_windows, max_new_tokens=max_new_tokens, allow_pickle=allow_pickle,
                   blame=blame, blame_rules=blame_rules)
    return verify_checkpoint(checkpoint, opts)


def calibrate(spec: PathLike, *, lock: PathLike | None = None, grid: Sequence[float] | None = None,
              catalogue: PathLike | None = None, max_windows: int = 32, max_new_tokens: int = 48,
              write: bool = True, progress: bool = False, allow_pickle: bool = False) -> "Curve":
    """Find the strength t of the spec's `auto` rules (`steer X by auto`): at each t of `grid`
    (default `steerc.calibration.DEFAULT_GRID`) apply the program to the base model in process
    and measure every `expect`, as `verify` would on a compiled checkpoint; among the t where
    all pass, choose the lowest KL on the text of the spec's first `expect kl`. With a choice
    (`Curve.ok`) and `write`, the lock (`lock`, else `<spec>.lock`) is written with it;
    without one the lock is untouched and `Curve.failure` says which point came closest
    (E561). E562 when the spec has no `auto`; E280/E281 when its expectations cannot guide a
    search (docs/calibrate.md)."""
    import dataclasses

    from steerc.calibration import DEFAULT_GRID
    from steerc.calibration.search import search
    from steerc.calibration.write import write_calibrated
    from steerc.compiler.resolve.auto import Strength
    from steerc.verify.run import Options

    points = tuple(sorted(float(g) for g in (DEFAULT_GRID if grid is None else grid)))
    lock_path = _lock_path(spec, lock)
    # t = 1: each auto intervention holds its unit, which search scales per point
    program, warnings, _ = _load(spec, catalogue, allow_pickle, fetch_weights=True, progress=progress,
                                 lock_path=lock_path, strength=Strength(1.0, str(lock_path), str(spec)))
    if program.calibrated is None:
        raise DiagnosticError(list(warnings) + [Diagnostic(
            "E562", f"nothing to calibrate: {spec} has no `auto` strength", None,
            "write `by auto` (or `clamp X to auto`) where the strength should be found, e.g. "
            "`steer res2[12] by auto`")])
    _validate(program, warnings)
    opts = Options(max_windows=max_windows, max_new_tokens=max_new_tokens, allow_pickle=allow_pickle)
    curve = dataclasses.replace(search(program, str(spec), lock_path, points, opts, progress=progress),
                                warnings=tuple(warnings))
    if curve.ok and write:
        write_calibrated(program, curve, points)
        curve = dataclasses.replace(curve, lock_written=True)
    return curve


def trace(text: str, *, spec: PathLike | None = None, model: PathLike | None = None,
          saes: Sequence[PathLike | tuple[str, PathLike]] | Mapping[str, PathLike] = (),
          catalogue: PathLike | None = None, top: int = 10, allow_pickle: bool = False) -> Traced:
    """The `top` SAE features per token of `text`. Model, SAEs and catalogue come from `spec`
    (its declarations; the rules need not resolve) unless given: `saes` as paths (aliases
    sae0, sae1, ...), (alias, path) pairs or an alias -> path mapping."""
    from steerc.verify.trace import Sources, load_sources, sources_from_spec, trace_text

    if top < 1:
        raise DiagnosticError([Diagnostic("E510", "--top must be at least 1")])
    pairs = _sae_pairs(saes)
    if spec is not None:
        src = sources_from_spec(str(spec))
        sources = Sources(_str(model) or src.model, pairs or src.saes, _str(catalogue) or src.catalogue)
    elif model is None or not pairs:
        raise DiagnosticError([Diagnostic("E510", "trace needs --spec, or --model and --sae", None,
                                          'e.g. steerc trace "def f(x):" --spec specs/examples/no_code.steer')])
    else:
        sources = Sources(str(model), pairs, _str(catalogue))
    m, tok, traced, cat = load_sources(sources, allow_pickle=allow_pickle)
    rows = trace_text(m, tok, traced, cat, text, top=top)
    return Traced(text, top, tuple(traced), tuple(rows))


# ---- helpers ------------------------------------------------------------------------------


def export_lm_eval(spec: PathLike, out: PathLike, *, catalogue: PathLike | None = None,
                   allow_pickle: bool = False):
    """`steerc export SPEC --to lm-eval -o OUT`: the spec's steer/amplify rules as the file
    lm-evaluation-harness's `steered` model reads (OUT.pt: summed vectors; OUT.csv: one
    SAELens-named feature); returns `steerc.export.run.Exported`. Rules lm-eval cannot run
    exactly raise DiagnosticError (E450-E457), nothing written (docs/export.md)."""
    from steerc.export.run import export_lm_eval as run

    return run(spec, out, catalogue=catalogue, allow_pickle=allow_pickle)


def _load(spec: PathLike, catalogue: PathLike | None, allow_pickle: bool, *,
          fetch_weights: bool = False, progress: bool = False, lock_path: Path,
          strength=None) -> tuple[Program, list[Diagnostic], dict | None]:
    """Parse + resolve, `auto` rules at the strength calibrated in the lock at `lock_path`
    (or `strength`, a resolve.auto.Strength: calibrate's own). Returns the program, the
    warnings and the lock's calibration entry (None without `auto`). `fetch_weights`: a Hub
    model comes with its safetensors (compile), not only its config and tokenizer (check,
    explain); `progress`: download bars."""
    from steerc.compiler.load import DiskEnvironment, load

    loaded = load(str(spec), catalogue_override=_str(catalogue),
                  env=DiskEnvironment(allow_pickle=allow_pickle, fetch_weights=fetch_weights,
                                      progress=progress), strength=strength, lock_path=lock_path)
    return loaded.program, list(loaded.diagnostics), loaded.calibration


def _check_locked(new: dict, program: Program, lock_path: Path, spec: PathLike,
                  warnings: list[Diagnostic]) -> None:
    """E222 when the resolution differs from the lock, E283 when its calibration was
    measured on other inputs (steerc/compiler/lock_calibration.py)."""
    from steerc.compiler.lock import check_locked
    from steerc.compiler.lock_calibration import check_calibration

    check_locked(new, lock_path, str(spec), warnings, check_calibration(new, program, lock_path, str(spec)))


def _validate(program: Program, warnings: list[Diagnostic]):
    """The validation pass (what compile refuses for the model); its errors are raised after
    the resolve warnings, so a report shows both."""
    from steerc.compiler.validate import validate_program

    try:
        return validate_program(program)
    except DiagnosticError as e:
        raise DiagnosticError(list(warnings) + list(e.diagnostics)) from None


def _lock_path(spec: PathLike, lock: PathLike | None) -> Path:
    from steerc.compiler.lock import default_lock_path

    return Path(lock) if lock is not None else default_lock_path(spec)


def _check_target(target: str) -> None:
    from steerc.targets import check_target

    check_target(target)


def _str(p: PathLike | None) -> str | None:
    return None if p is None else str(p)


def _sae_pairs(saes) -> tuple[tuple[str, str], ...]:
    if isinstance(saes, Mapping):
        return tuple((str(a), str(p)) for a, p in saes.items())
    return tuple((str(s[0]), str(s[1])) if isinstance(s, tuple) else (f"sae{i}", str(s))
                 for i, s in enumerate(saes))


def _rules(ivs: Sequence[Intervention]) -> tuple[RuleSummary, ...]:
    return tuple(_summary(g, [iv.feature for iv in g.items], g.items) for g in group_by_rule(ivs))


def _planned_rules(p: "Plan") -> tuple[RuleSummary, ...]:
    out = []
    for g in group_by_rule(p.lowerings, key=lambda lo: lo.intervention):
        ways: dict[tuple, int] = {}
        for lo in g.items:
            ways[(lo.kind, lo.reason, lo.code)] = ways.get((lo.kind, lo.reason, lo.code), 0) + 1
        lowered = tuple(Lowered(k, r, n, c) for (k, r, c), n in ways.items())
        ivs = [lo.intervention for lo in g.items]
        out.append(_summary(g, [iv.feature for iv in ivs], ivs, lowered))
    return tuple(out)


def _summary(g: RuleGroup, features, ivs, lowered: tuple[Lowered, ...] = ()) -> RuleSummary:
    return RuleSummary(g.origin, g.span, tuple(features), op_summary(ivs), lowered)


def _lowering_json(lo) -> dict[str, Any]:
    iv = lo.intervention
    f = iv.feature
    return {"sae": f.sae, "index": f.index, "label": f.label, "op": iv.op.value, "value": iv.value,
            "points": list(iv.points), "everywhere": iv.everywhere, "lowering": lo.kind,
            "code": lo.code, "reason": lo.reason, "tensors": list(lo.tensors),
            "hook_points": list(lo.hook_points)}


def _diag_json(d: Diagnostic) -> dict[str, Any]:
    return {"code": d.code, "message": d.message, "span": str(d.span) if d.span else None, "hint": d.hint}
