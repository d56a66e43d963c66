"""`steerc compile SPEC -o OUT`: lower a spec and write a standalone steered checkpoint."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from steerc.commands import add_allow_pickle_argument, show
from steerc.commands.args import JOBS
from steerc.compiler.plan import TARGETS
from steerc.report import add_format_argument, human_stream, warn

NAME = "compile"
HELP = "compile a spec into a standalone checkpoint directory (exact weight edits or hooks)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("spec", help="the .steer file")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="output checkpoint directory")
    p.add_argument("--target", choices=TARGETS, default="auto",
                   help="auto (default): weights if every rule is exact, else hooks; weights: "
                        "plain checkpoint, refuse anything else; hooks: custom modeling code")
    p.add_argument("--force", action="store_true", help="replace an existing output directory")
    p.add_argument("--locked", action="store_true",
                   help="fail (E222) if the resolution differs from steer.lock")
    p.add_argument("--lock", metavar="PATH", help="lock file (default: steer.lock next to the spec)")
    p.add_argument("--catalogue", metavar="PATH", help="use this catalogue instead of the spec's")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--jobs", type=JOBS, default=None, metavar="N",
                   help="make N tensors at once, one thread each (default: 2, or 1 on one "
                        "core; the output does not depend on it; see BENCHMARKS.md, Scale)")
    add_allow_pickle_argument(p)
    add_format_argument(p)


def run(args: argparse.Namespace) -> int:
    """Exit 0 with the checkpoint written, 1 on diagnostics (nothing written)."""
    from steerc.compiler.build import compile_program
    from steerc.compiler.load import DiskEnvironment, load
    from steerc.compiler.lock import build_lock, check_locked, default_lock_path, dumps_lock

    loaded = load(args.spec, catalogue_override=args.catalogue,
                  env=DiskEnvironment(allow_pickle=args.allow_pickle))
    program = loaded.program
    warn(args, loaded.diagnostics)
    lock_path = Path(args.lock) if args.lock else default_lock_path(args.spec)
    lock = build_lock(program, lock_path.parent)
    if args.locked:
        check_locked(lock, lock_path, args.spec)
    res = compile_program(program, args.output, target=args.target, force=args.force,
                          progress=not args.no_progress and sys.stderr.isatty(),
                          lock_text=dumps_lock(lock), allow_pickle=args.allow_pickle,
                          jobs=None if args.jobs is None else max(1, args.jobs))
    p = res.plan
    n_w, n_h = len(p.weight_edits), len(p.hooks)
    how = ("load with AutoModelForCausalLM.from_pretrained(OUT, trust_remote_code=True)"
           if p.target == "hooks" and (n_h or p.json_guard) else "loads as a plain checkpoint")
    show(f"wrote {res.out} (target {p.target}: {n_w} exact weight edit{'s' * (n_w != 1)}, "
          f"{n_h} hook{'s' * (n_h != 1)}, {len(res.manifest['edits'])} tensors rewritten); {how}",
          file=human_stream(args))
    return 0
