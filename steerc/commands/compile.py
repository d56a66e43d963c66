"""`steerc compile SPEC -o OUT`: lower a spec and write a standalone steered checkpoint."""

from __future__ import annotations

import argparse
import sys

from steerc.commands import add_allow_pickle_argument, show
from steerc.commands.args import JOBS
from steerc.targets import TARGET_NAMES, TARGETS
from steerc.report import add_format_argument, human_stream, warn

NAME = "compile"
HELP = "compile a spec into a standalone checkpoint directory (exact weight edits or hooks)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("spec", help="the .steer file")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="output checkpoint directory")
    p.add_argument("--target", choices=TARGET_NAMES, default="auto",
                   help="auto (default): weights if every rule is exact, else hooks; " +
                        "; ".join(f"{t.name}: {t.summary}" for t in TARGETS.values()))
    p.add_argument("--force", action="store_true", help="replace an existing output directory")
    p.add_argument("--locked", action="store_true",
                   help="fail (E222) if the resolution differs from the lock file")
    p.add_argument("--lock", metavar="PATH", help="lock file (default: SPEC.lock beside the spec, e.g. no_code.steer.lock)")
    p.add_argument("--catalogue", metavar="PATH", help="use this catalogue instead of the spec's")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--jobs", type=JOBS, default=None, metavar="N",
                   help="make N tensors at once, one thread each (default: 2, or 1 on one "
                        "core; the output does not depend on it; see BENCHMARKS.md, Scale)")
    add_allow_pickle_argument(p)
    add_format_argument(p)


def run(args: argparse.Namespace) -> int:
    """Exit 0 with the checkpoint written, 1 on diagnostics (nothing written)."""
    from steerc.api import compile as compile_spec

    res = compile_spec(args.spec, args.output, target=args.target, force=args.force,
                       catalogue=args.catalogue, lock=args.lock, locked=args.locked, jobs=args.jobs,
                       progress=not args.no_progress and sys.stderr.isatty(),
                       allow_pickle=args.allow_pickle)
    warn(args, res.warnings)
    n_w, n_h = res.weight_edits, res.hooks
    usage = getattr(TARGETS.get(res.target), "usage", None)
    if usage is not None:  # not a transformers checkpoint: no weight edits or hooks to count
        n = n_w + n_h
        show(f"wrote {res.out} (target {res.target}: {n} rule lowering{'s' * (n != 1)} as "
             f"{TARGETS[res.target].expresses}); {usage}", file=human_stream(args))
        return 0
    how = ("load with AutoModelForCausalLM.from_pretrained(OUT, trust_remote_code=True)"
           if res.trust_remote_code else "loads as a plain checkpoint")
    how = getattr(TARGETS.get(res.target), "loads_as", None) or how  # not a checkpoint (an adapter)
    show(f"wrote {res.out} (target {res.target}: {n_w} exact weight edit{'s' * (n_w != 1)}, "
          f"{n_h} hook{'s' * (n_h != 1)}, {res.tensors_rewritten} tensors rewritten); {how}",
          file=human_stream(args))
    return 0
