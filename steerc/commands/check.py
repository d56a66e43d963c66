"""`steerc check SPEC`: parse and resolve a spec (no weights), report, and keep its lock file."""

from __future__ import annotations

import argparse

from steerc.api import check
from steerc.commands import add_allow_pickle_argument, show
from steerc.compiler.describe import describe_program
from steerc.report import add_format_argument, human_stream, warn
from steerc.targets import TARGET_NAMES

NAME = "check"
HELP = ("parse and resolve a spec against its catalogue and SAEs, and validate it against the "
        "model's config.json and weight headers (fast, no weights, no torch)")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("spec", help="the .steer file")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--locked", action="store_true",
                   help="fail (E222) if the resolution differs from the lock file")
    g.add_argument("--write-lock", action="store_true", help="write the lock file")
    p.add_argument("--lock", metavar="PATH", help="lock file (default: SPEC.lock beside the spec, e.g. no_code.steer.lock)")
    p.add_argument("--catalogue", metavar="PATH", help="use this catalogue instead of the spec's")
    p.add_argument("--target", choices=TARGET_NAMES, default=None,
                   help="also plan for this compile target, as compile does before writing: its "
                        "refusals (E410...) and the tensors a weight edit rewrites (E608/E609)")
    p.add_argument("-v", "--verbose", action="store_true", help="list every intervention")
    add_allow_pickle_argument(p)
    add_format_argument(p)


def run(args: argparse.Namespace) -> int:
    """Exit 0 when the spec resolves (and matches its lock with --locked), else 1."""
    res = check(args.spec, catalogue=args.catalogue, lock=args.lock, locked=args.locked,
                write_lock=args.write_lock, allow_pickle=args.allow_pickle, target=args.target)
    warn(args, res.warnings)
    if args.verbose:
        show(describe_program(res.program, features=True), file=human_stream(args))
    n = len(res.warnings)
    tail = f", {n} warning{'s' * (n != 1)}" if n else ""
    locked = f"; wrote {res.lock_path}" if res.lock_written else ("; lock up to date" if res.locked else "")
    planned = "" if res.target is None else (
        f"; plans for target {res.target}" + (f" ({res.planned})" if res.planned != res.target else ""))
    show(f"ok: {res.summary}{tail}{planned}{locked}", file=human_stream(args))
    return 0
