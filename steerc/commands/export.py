"""`steerc export SPEC --to lm-eval -o steer.pt|steer.csv`: a spec's additive rules as the
steering file lm-evaluation-harness's `steered` model reads (docs/export.md)."""

from __future__ import annotations

import argparse

from steerc.commands import add_allow_pickle_argument, show
from steerc.report import add_format_argument, human_stream, warn

NAME = "export"
HELP = ("write a spec's steer/amplify rules as lm-evaluation-harness steering vectors "
        "(--to lm-eval), so any lm-eval task measures the spec's side effects")
TARGETS = ("lm-eval",)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("spec", help="the .steer file")
    # `--format` is the diagnostics format in every command, so the export format is `--to`
    p.add_argument("--to", choices=TARGETS, required=True, help="the tool to write for")
    p.add_argument("-o", "--output", required=True, metavar="FILE.pt|FILE.csv",
                   help=".pt: one summed steering vector per hook point (any SAE; lm-eval >= 0.4.9.2); "
                        ".csv: one feature of an SAE named by SAELens release and id (lm-eval 0.4.8-0.4.9.1)")
    p.add_argument("--catalogue", metavar="PATH", help="use this catalogue instead of the spec's")
    add_allow_pickle_argument(p)
    add_format_argument(p)


def run(args: argparse.Namespace) -> int:
    """Exit 0 when the file was written, 1 on diagnostics (nothing written)."""
    from steerc.api import export_lm_eval

    res = export_lm_eval(args.spec, args.output, catalogue=args.catalogue,
                         allow_pickle=args.allow_pickle)
    warn(args, res.warnings)
    show(f"wrote {res.out}: {res.features} feature(s) at {len(res.hookpoints)} hookpoint(s) "
         f"({', '.join(res.hookpoints)}); run: lm_eval --model steered --model_args "
         f"pretrained={res.model},steer_path={res.out} --tasks ...", file=human_stream(args))
    return 0
