"""`steerc explain SPEC`: the IR and the lowering plan (weight edit / hook / refused, and why)."""

from __future__ import annotations

import argparse

from steerc.commands import add_allow_pickle_argument, show
from steerc.compiler.plan import TARGETS, Plan

NAME = "explain"
HELP = "show how each rule lowers: exact weight edit, hook module, or refused (and why)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("spec", help="the .steer file")
    p.add_argument("--target", choices=TARGETS, default="auto", help="target to plan for")
    p.add_argument("--catalogue", metavar="PATH", help="use this catalogue instead of the spec's")
    add_allow_pickle_argument(p)


_KIND = {"weights": "weight edit", "hook": "hook", "refused": "REFUSED"}


def render_plan(plan: Plan) -> str:
    """The plan as text: one block per intervention, then the resolved target."""
    lines = [f"plan ({plan.family}, target {plan.requested} -> {plan.target}):"]
    for lo in plan.lowerings:
        iv = lo.intervention
        head = f"  [{lo.index}] {iv.op.value} {iv.feature}  # {iv.origin}"
        lines.append(head)
        what = _KIND[lo.kind] + (f" {lo.code}" if lo.code else "")
        where = (", ".join(lo.tensors[:4]) + (f" (+{len(lo.tensors) - 4} more)" if len(lo.tensors) > 4 else "")
                 if lo.kind == "weights" else
                 "every residual write" if iv.everywhere else ", ".join(lo.hook_points))
        lines.append(f"      -> {what}: {where}")
        lines.append(f"         why: {lo.reason}")
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


def run(args: argparse.Namespace) -> int:
    """Print the IR (describe_program) and the plan; exit 1 when --target refuses a rule."""
    import sys

    from steerc.compiler.build import load_base
    from steerc.compiler.describe import describe_program
    from steerc.compiler.load import DiskEnvironment, load
    from steerc.compiler.plan import plan as make_plan
    from steerc.diagnostics import render_all

    loaded = load(args.spec, catalogue_override=args.catalogue,
                  env=DiskEnvironment(allow_pickle=args.allow_pickle))
    program = loaded.program
    config, _, adapter = load_base(program.model)
    p = make_plan(program, config, adapter, args.target, check=False)
    show("program:")
    show(describe_program(program))
    show(render_plan(p))
    if p.diagnostics:
        show(render_all(list(p.diagnostics)), file=sys.stderr)
        return 1
    return 0
