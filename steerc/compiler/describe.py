"""A Program as text (for `steerc explain` and `check -v`): one line per source rule.

    spec.steer:5:1  set_activation  res2[0] "email address" = 0  at blocks.1.hook_resid_post  # suppress res2["email"]
    spec.steer:7:1  917 features: set_activation = 0 x568, scale_activation by 2 x349  at blocks.2.hook_resid_post  # enforce json format

A rule over a feature set is one summary line plus its first features; `features=True` lists
every intervention on its own line instead.
"""

from __future__ import annotations

from steerc.compiler.ir import Intervention, Program
from steerc.compiler.rulegroups import RuleGroup, counted, group_by_rule, op_summary

SHOWN_FEATURES = 5  # features named under a rule's summary line


def describe_intervention(iv: Intervention) -> str:
    """One line: span, op, feature, value, where, positions, condition, origin."""
    value = f" {iv.op.value_word} {iv.value:g}" if iv.op.value_word else ""
    parts = [str(iv.span) if iv.span else "-", iv.op.value, f"{iv.feature}{value}", _where(iv)]
    return "  ".join(parts + _scope(iv)) + f"  # {iv.origin}"


def _where(*ivs: Intervention) -> str:
    if ivs[0].everywhere:
        return "everywhere"
    points = dict.fromkeys(p for iv in ivs for p in iv.points)
    return "at " + ", ".join(points)


def _scope(iv: Intervention) -> list[str]:
    parts = []
    if iv.positions != "all":
        parts.append(f"on {iv.positions}")
    if iv.condition is not None:
        c = iv.condition
        parts.append(f"when {c.feature} > {c.threshold:g} at {c.hook}")
    return parts


def describe_rule(g: RuleGroup[Intervention]) -> list[str]:
    """A rule's lines: its one intervention, or a summary and the first few features."""
    if len(g) == 1:
        return [describe_intervention(g.items[0])]
    ivs = g.items
    head = [str(g.span) if g.span else "-", f"{counted(len(ivs), 'feature')}: {op_summary(ivs)}",
            _where(*ivs)]
    names = ", ".join(str(iv.feature) for iv in ivs[:SHOWN_FEATURES])
    more = f" (+{len(ivs) - SHOWN_FEATURES} more; `explain --features` lists them)" if len(ivs) > SHOWN_FEATURES else ""
    return ["  ".join(head + _scope(ivs[0])) + f"  # {g.origin}", f"    {names}{more}"]


def describe_program(program: Program, *, features: bool = False) -> str:
    """Every source rule (every intervention with `features`), then the SAEs, the JSON guard
    and the expects."""
    if features:
        lines = [describe_intervention(iv) for iv in program.interventions]
    else:
        lines = [ln for g in group_by_rule(program.interventions) for ln in describe_rule(g)]
    if program.calibrated is not None:
        lines.append(describe_calibrated(program))
    for b in program.saes:
        lines.append(describe_binding(b))
    if program.json is not None:
        lines.append("json guard: " + (f"schema {program.json.schema_path}" if program.json.schema_path
                                       else "any JSON"))
    for e in program.expects:
        lines.append(describe_expect(e))
    if program.expects and program.expects[0].baseline is not None:
        lines.append(f"baseline prompt {program.expects[0].baseline!r}")
    return "\n".join(lines)


def describe_calibrated(program: Program) -> str:
    """One line on the `auto` strength: its value and that `steerc calibrate` chose it."""
    cal = program.calibrated
    n = len(cal.rules)
    return (f"calibrated: t = {cal.t:g} for {n} `auto` rule{'s' * (n != 1)} (chosen by `steerc "
            "calibrate`, read from the spec's lock; value = t x the feature's max_activation, "
            "or t for scale)")


def describe_expect(e) -> str:
    """One expect as `explain` lists it (`expect 'p' is json`, `expect >= 95% of f.txt ...`)."""
    check = e.kind.replace("_", " ") + (f" {e.arg!r}" if e.arg else "")
    on = f" on {e.texts}" if e.texts else ""
    if e.kind == "kl_below":
        return f"expect kl{on} below {e.bound:g}"
    if e.kind in ("down", "up"):
        names = ", ".join(str(f) for f in e.features[:SHOWN_FEATURES])
        more = f" (+{len(e.features) - SHOWN_FEATURES} more)" if len(e.features) > SHOWN_FEATURES else ""
        return f"expect {e.kind} by at least {e.percent:g}%{on}: {names}{more}"
    if e.percent is not None:
        return f"expect at least {e.percent:g}% of {e.texts} {check}"
    return f"expect {e.prompt!r} {check}"


def summary(program: Program) -> str:
    """`7 interventions on 1 SAE (3 rules)`; `... on 1 SAE and 2 directions ...`."""
    n = len(program.interventions)
    rules = len(group_by_rule(program.interventions))
    used = {iv.feature.sae for iv in program.interventions}
    saes = len({iv.feature.sae for iv in program.interventions if not iv.feature.direction})
    dirs = len({b.direction.name for b in program.saes if b.direction and b.alias in used})
    on = f"{saes} SAE{'s' * (saes != 1)}"
    if dirs:
        on = (f"{on} and " if saes else "") + f"{dirs} direction{'s' * (dirs != 1)}"
    return f"{n} intervention{'s' * (n != 1)} on {on} ({rules} rule{'s' * (rules != 1)})"


_KIND = {"weights": "weight edit", "hook": "hook", "refused": "REFUSED"}


def _lowered(lo, target: str | None = None) -> tuple[str, str, str]:
    """(what, where, why) of one lowering, as explain prints them; a target that is not a
    checkpoint (gguf-cvec) says itself how it expresses the lowerings it accepts."""
    from steerc.targets import TARGETS

    iv = lo.intervention
    own = getattr(TARGETS.get(target), "explain_lowering", None)
    if own is not None and lo.kind != "refused":
        return own(lo)
    what = _KIND[lo.kind] + (f" {lo.code}" if lo.code else "")
    where = (", ".join(lo.tensors[:4]) + (f" (+{len(lo.tensors) - 4} more)" if len(lo.tensors) > 4 else "")
             if lo.kind == "weights" else
             "every residual write" if iv.everywhere else ", ".join(lo.hook_points))
    return what, where, lo.reason


def _plan_rule(g, target: str | None = None) -> list[str]:
    """One rule of the plan: its lowering, or per distinct lowering the count of features."""
    first = g.items[0]
    if len(g) == 1:
        iv = first.intervention
        what, where, why = _lowered(first, target)
        return [f"  [{first.index}] {iv.op.value} {iv.feature}  # {iv.origin}",
                f"      -> {what}: {where}", f"         why: {why}"]
    last = g.items[-1].index
    span = last - first.index + 1 == len(g)
    idx = f"[{first.index}..{last}]" if span else f"[{first.index}, ...]"
    lines = [f"  {idx} {counted(len(g), 'feature')}: {op_summary(lo.intervention for lo in g.items)}  # {g.origin}"]
    ways: dict[tuple[str, str, str], int] = {}
    for lo in g.items:
        key = _lowered(lo, target)
        ways[key] = ways.get(key, 0) + 1
    for (what, where, why), n in ways.items():
        lines += [f"      -> {what} ({counted(n, 'feature')}): {where}", f"         why: {why}"]
    return lines


def describe_plan(plan, *, features: bool = False) -> str:
    """The plan as text: one block per source rule (per intervention with `features`), then
    the resolved target."""
    lines = [f"plan ({plan.family}, target {plan.requested} -> {plan.target}):"]
    if features:
        groups = [RuleGroup(lo.intervention.origin, lo.intervention.span, (lo,)) for lo in plan.lowerings]
    else:
        groups = group_by_rule(plan.lowerings, key=lambda lo: lo.intervention)
    for g in groups:
        lines += _plan_rule(g, plan.target)
    if plan.untie:
        lines.append("  untie: the tied LM head is written out as its own tensor")
    n_h = len(plan.hooks)
    if plan.json_guard:
        lines.append("json guard: custom_generate/generate.py (decode-time, needs the hooks target)")
    if plan.target == "hooks" and (n_h or plan.json_guard):
        lines.append(f"output: custom model_type steerc_{plan.family} (load with trust_remote_code=True)")
    elif plan.target == "weights" and not any(lo.kind == "refused" for lo in plan.lowerings):
        lines.append("output: plain checkpoint (no custom code)")
    return "\n".join(lines)


def describe_binding(b) -> str:
    """One line per SAE, or per layer of a named direction."""
    d = b.direction
    if d is None:
        return (f"sae {b.alias}: {b.path} ({b.format}, {b.hook}, d_in {b.d_in}, d_sae {b.d_sae}, "
                f"sha256 {b.sha256[:12]})")
    if d.kind == "mean":
        last = "last " if d.last else ""
        how = f"mean {last}{d.paths[0]} - mean {last}{d.paths[1]} (computed at compile time)"
    else:
        how = (f"file {d.paths[0]}" + (f" key {d.key!r}" if d.key else "")
               + ("" if d.layer is None else f", its layer {d.layer}"))
    return f"direction {b.alias}: {how} ({b.hook}, d {b.d_in}, sha256 {b.sha256[:12]})"
