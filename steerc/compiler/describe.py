"""A Program as text, one line per intervention (for `steerc explain` and `check -v`).

    spec.steer:5:1  set_activation  res2[0] "email address" = 0  at blocks.1.hook_resid_post  # suppress res2["email"]
"""

from __future__ import annotations

from steerc.compiler.ir import Intervention, Op, Program


def describe_intervention(iv: Intervention) -> str:
    """One line: span, op, feature, value, where, positions, condition, origin."""
    where = "everywhere" if iv.everywhere else "at " + ", ".join(iv.points)
    value = "" if iv.op == Op.PROJECT_OUT else (
        f" by {iv.value:g}" if iv.op in (Op.ADD, Op.SCALE) else f" = {iv.value:g}")
    parts = [str(iv.span) if iv.span else "-", iv.op.value, f"{iv.feature}{value}", where]
    if iv.positions != "all":
        parts.append(f"on {iv.positions}")
    if iv.condition is not None:
        c = iv.condition
        parts.append(f"when {c.feature} > {c.threshold:g} at {c.hook}")
    return "  ".join(parts) + f"  # {iv.origin}"


def describe_program(program: Program) -> str:
    """Every intervention, one per line, then the SAEs, the JSON guard and the expects."""
    lines = [describe_intervention(iv) for iv in program.interventions]
    for b in program.saes:
        lines.append(f"sae {b.alias}: {b.path} ({b.format}, {b.hook}, d_in {b.d_in}, d_sae {b.d_sae}, "
                     f"sha256 {b.sha256[:12]})")
    if program.json is not None:
        lines.append("json guard: " + (f"schema {program.json.schema_path}" if program.json.schema_path
                                       else "any JSON"))
    for e in program.expects:
        lines.append(f"expect {e.prompt!r} {e.kind.replace('_', ' ')}" + (f" {e.arg!r}" if e.arg else ""))
    return "\n".join(lines)


def summary(program: Program) -> str:
    """`7 interventions on 1 SAE (3 rules)`."""
    n = len(program.interventions)
    rules = len({(iv.span, iv.origin) for iv in program.interventions})
    saes = len({iv.feature.sae for iv in program.interventions})
    return (f"{n} intervention{'s' * (n != 1)} on {saes} SAE{'s' * (saes != 1)} "
            f"({rules} rule{'s' * (rules != 1)})")
