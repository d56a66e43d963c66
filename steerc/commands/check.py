"""`steerc check SPEC`: parse and resolve a spec (no weights), report, and keep steer.lock."""

from __future__ import annotations

import argparse
from pathlib import Path

from steerc.compiler.describe import describe_program, summary
from steerc.commands import add_allow_pickle_argument, show
from steerc.compiler.load import DiskEnvironment, load
from steerc.compiler.lock import build_lock, check_locked, default_lock_path, write_lock
from steerc.report import add_format_argument, human_stream, warn

NAME = "check"
HELP = "parse and resolve a spec against its catalogue and SAEs (fast, no model weights)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("spec", help="the .steer file")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--locked", action="store_true",
                   help="fail (E222) if the resolution differs from the lock file")
    g.add_argument("--write-lock", action="store_true", help="write the lock file")
    p.add_argument("--lock", metavar="PATH", help="lock file (default: steer.lock next to the spec)")
    p.add_argument("--catalogue", metavar="PATH", help="use this catalogue instead of the spec's")
    p.add_argument("-v", "--verbose", action="store_true", help="list every intervention")
    add_allow_pickle_argument(p)
    add_format_argument(p)


def run(args: argparse.Namespace) -> int:
    """Exit 0 when the spec resolves (and matches its lock with --locked), else 1."""
    loaded = load(args.spec, catalogue_override=args.catalogue,
                  env=DiskEnvironment(allow_pickle=args.allow_pickle))
    program = loaded.program
    warnings = list(loaded.diagnostics)
    lock_path = Path(args.lock) if args.lock else default_lock_path(args.spec)
    if args.locked or args.write_lock:
        new = build_lock(program, lock_path.parent)
        if args.locked:
            check_locked(new, lock_path, args.spec, warnings)
        else:
            write_lock(new, lock_path)
    warn(args, warnings)
    if args.verbose:
        show(describe_program(program), file=human_stream(args))
    tail = f", {len(warnings)} warning{'s' * (len(warnings) != 1)}" if warnings else ""
    locked = f"; wrote {lock_path}" if args.write_lock else ("; lock up to date" if args.locked else "")
    show(f"ok: {summary(program)}{tail}{locked}", file=human_stream(args))
    return 0
