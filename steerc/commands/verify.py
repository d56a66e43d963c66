"""`steerc verify CHECKPOINT`: base vs steered, the spec's expectations, KL on neutral text."""

from __future__ import annotations

import argparse
import json

from steerc.commands import add_allow_pickle_argument, show
from steerc.commands.args import COUNT
from steerc.report import add_format_argument, human_stream, warn

NAME = "verify"
HELP = "measure a compiled checkpoint against its base model and run the spec's `expect` checks"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", help="a directory written by `steerc compile`")
    p.add_argument("--prompts", metavar="FILE",
                   help="texts for feature activations (default: heldout/ beside the base model, "
                        "else built-in); documents separated by <|doc|> lines or blank lines")
    p.add_argument("--neutral", metavar="FILE",
                   help="neutral text for KL (default: heldout/neutral.txt beside the base model)")
    p.add_argument("--base-model", metavar="DIR", help="base model directory (default: the manifest's)")
    p.add_argument("--json", metavar="OUT", help="also write the report as JSON (docs/verify.md)")
    p.add_argument("--plot", metavar="OUT.png", help="bar plot of feature activations before/after")
    p.add_argument("--max-new-tokens", type=COUNT, default=48, help="generation budget per expect")
    p.add_argument("--max-windows", type=COUNT, default=32,
                   help="token windows (of up to 128 tokens) per text set (default 32)")
    add_allow_pickle_argument(p)
    add_format_argument(p)


def run(args: argparse.Namespace) -> int:
    """Exit 0 when every expectation passed, 1 when one failed or on diagnostics."""
    from steerc.verify import Options, render_text, to_json, verify_checkpoint, write_plot

    opts = Options(prompts=args.prompts, neutral=args.neutral, base_model=args.base_model,
                   max_windows=args.max_windows, max_new_tokens=args.max_new_tokens,
                   allow_pickle=args.allow_pickle)
    report = verify_checkpoint(args.checkpoint, opts)
    show(render_text(report), file=human_stream(args))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(to_json(report), f, indent=1, ensure_ascii=False)
            f.write("\n")
    if args.plot:
        w = write_plot(report, args.plot)
        if w:
            warn(args, [w])
    return 0 if report.ok else 1
