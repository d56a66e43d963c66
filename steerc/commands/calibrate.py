"""`steerc calibrate SPEC`: find the strength of the spec's `auto` rules, write it into the lock."""

from __future__ import annotations

import argparse
import json
import sys

from steerc.commands import add_allow_pickle_argument, show
from steerc.commands.args import COUNT
from steerc.report import warn

NAME = "calibrate"
HELP = "search the strength of `by auto` / `to auto` rules against the spec's expectations; write it into the lock"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("spec", help="the .steer file (with `auto` strengths, expectations and an `expect kl` budget)")
    p.add_argument("--lock", metavar="PATH",
                   help="lock file to write (default: SPEC.lock beside the spec, e.g. prose_auto.steer.lock)")
    p.add_argument("--grid", metavar="T,T,...",
                   help="strengths to try, comma-separated (default 0,0.25,0.5,1,2,4,8: t times each "
                        "feature's max_activation for steer/clamp, the factor itself for scale)")
    p.add_argument("--catalogue", metavar="PATH", help="use this catalogue instead of the spec's")
    p.add_argument("--dry-run", action="store_true", help="measure and print the curve; do not write the lock")
    p.add_argument("--max-new-tokens", type=COUNT, default=48, help="generation budget per prompt (default 48)")
    p.add_argument("--max-windows", type=COUNT, default=32,
                   help="token windows (of up to 128 tokens) per text set (default 32)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    # dest differs from `format`, as in trace: diagnostics stay text on stderr, so stdout
    # holds one document, the curve
    p.add_argument("--format", choices=("text", "json"), default="text", dest="output_format",
                   help="the curve as a text table (default) or one JSON document on stdout")
    add_allow_pickle_argument(p)


def run(args: argparse.Namespace) -> int:
    """Exit 0 with the chosen t written; 1 when no strength passes (the curve is shown) or on
    diagnostics."""
    from steerc.api import calibrate
    from steerc.calibration import curve_json, parse_grid, render_curve
    from steerc.diagnostics import render

    grid = None if args.grid is None else parse_grid(args.grid)  # before any model loads
    as_json = args.output_format == "json"
    curve = calibrate(args.spec, lock=args.lock, grid=grid, catalogue=args.catalogue,
                      max_windows=args.max_windows, max_new_tokens=args.max_new_tokens,
                      write=not args.dry_run, progress=not args.no_progress and sys.stderr.isatty(),
                      allow_pickle=args.allow_pickle)
    warn(args, curve.warnings)
    if as_json:
        print(json.dumps(curve_json(curve), indent=1))
    else:
        show(render_curve(curve))
    if curve.failure is not None:
        print(render(curve.failure), file=sys.stderr)
    return 0 if curve.ok else 1
