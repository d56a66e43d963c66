"""`steerc explain SPEC`: the IR and the lowering plan (weight edit / hook / refused, and why)."""

from __future__ import annotations

import argparse
import json
import sys

from steerc.commands import add_allow_pickle_argument, show
from steerc.targets import TARGET_NAMES

NAME = "explain"
HELP = "show how each rule lowers: exact weight edit, hook module, or refused (and why)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("spec", help="the .steer file")
    p.add_argument("--target", choices=TARGET_NAMES, default="auto", help="target to plan for")
    p.add_argument("--catalogue", metavar="PATH", help="use this catalogue instead of the spec's")
    p.add_argument("--features", action="store_true",
                   help="one block per feature (default: one per source rule, with its feature count)")
    p.add_argument("--json", action="store_true",
                   help="print one JSON document: every rule with every feature and its lowering")
    add_allow_pickle_argument(p)


def run(args: argparse.Namespace) -> int:
    """Print the program and the plan; exit 1 when --target refuses a rule."""
    from steerc.api import explain
    from steerc.diagnostics import render_all

    res = explain(args.spec, target=args.target, catalogue=args.catalogue, allow_pickle=args.allow_pickle)
    if args.json:
        print(json.dumps(res.to_json(), indent=1, ensure_ascii=False))
    else:
        show(res.render(features=args.features))
    if res.refusals:
        show(render_all(list(res.refusals)), file=sys.stderr)
    return 0 if res.ok else 1
