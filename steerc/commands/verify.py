"""`steerc verify CHECKPOINT`: base vs steered, the spec's expectations, KL on neutral text."""

from __future__ import annotations

import argparse

from steerc.commands import add_allow_pickle_argument, show
from steerc.commands.args import COUNT
from steerc.files.write import atomic_file, check_output_file, dumps_json, write_atomic
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
    p.add_argument("--card", action="store_true",
                   help="write a summary of the results into the checkpoint's model card (README.md)")
    p.add_argument("--max-new-tokens", type=COUNT, default=48, help="generation budget per expect")
    p.add_argument("--max-windows", type=COUNT, default=32,
                   help="token windows (of up to 128 tokens) per text set (default 32)")
    blame = p.add_mutually_exclusive_group()
    blame.add_argument("--blame", dest="blame", action="store_const", const="all",
                       help="blame every expectation, passing ones too (default: failing ones only)")
    blame.add_argument("--no-blame", dest="blame", action="store_const", const="off",
                       help="no per-rule blame (it re-measures a failing expectation twice per rule)")
    p.set_defaults(blame="failing")
    p.add_argument("--blame-rules", type=COUNT, default=8, metavar="N",
                   help="blame at most N rules, in spec order (default 8; the rest are counted)")
    add_allow_pickle_argument(p)
    add_format_argument(p)


def run(args: argparse.Namespace) -> int:
    """Exit 0 when every expectation passed and no targeted feature moved against its rule
    (E540), 1 otherwise or on diagnostics."""
    from steerc.api import verify
    from steerc.verify import render_text, to_json, write_plot

    inputs = _inputs(args)
    for path, what in ((args.json, "--json report"), (args.plot, "--plot image")):
        if path is not None:  # before the work: a bad path fails in a second, not after it
            check_output_file(path, inputs, what)
    if args.card:
        from steerc.verify.card import check_card

        check_card(args.checkpoint)
    report = verify(args.checkpoint, prompts=args.prompts, neutral=args.neutral,
                    base_model=args.base_model, max_windows=args.max_windows,
                    max_new_tokens=args.max_new_tokens, allow_pickle=args.allow_pickle,
                    blame=args.blame, blame_rules=args.blame_rules)
    show(render_text(report), file=human_stream(args))
    if getattr(args, "format", "text") != "text":  # text: E540 is in the report above
        from steerc.verify.report import feature_diagnostics

        warn(args, feature_diagnostics(report))
    inputs.append(("the base model", report.base_model))
    if args.json is not None:
        write_atomic(args.json, dumps_json(to_json(report), "the verify report", indent=1,
                                           ensure_ascii=False) + "\n", inputs, "--json report")
    if args.card:
        from steerc.verify.card import write_card_results

        write_card_results(args.checkpoint, report, [i for i in inputs if i[0] != "the checkpoint"])
    if args.plot is not None:
        with atomic_file(args.plot, inputs, "--plot image") as tmp:
            w = write_plot(report, tmp)
            if w:
                tmp.unlink()  # nothing to plot: no file
        if w:
            warn(args, [w])
    return 0 if report.ok else 1


def _inputs(args: argparse.Namespace) -> list[tuple[str, str]]:
    """What verify reads: no report or plot may be written over, into or above it."""
    named = (("the checkpoint", args.checkpoint), ("the base model", args.base_model),
             ("the --prompts file", args.prompts), ("the --neutral file", args.neutral))
    return [(what, p) for what, p in named if p]
