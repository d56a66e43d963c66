"""`steerc trace "TEXT" --spec SPEC | --model M --sae S [--catalogue C]`: features per token;
`steerc trace --contrast A B [--rank activation|output|both] ...`: features most different
between two prompt files, with what each does to the output; `steerc trace --feature SAE[i]`:
one feature's promoted / suppressed tokens and output score."""

from __future__ import annotations

import argparse
import json
import os

from steerc.commands import add_allow_pickle_argument, show
from steerc.commands.args import COUNT, STRENGTH

# = steerc.verify.trace.RANKS / POOL (kept literal here: importing that module loads torch)
RANKS = ("activation", "output", "both")
POOL = 4

NAME = "trace"
HELP = "show which SAE features fire on each token of a text (to find features for a spec)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("text", nargs="?", help="the text to trace (or --contrast A B)")
    p.add_argument("--contrast", nargs=2, metavar=("A", "B"),
                   help="instead of a text: the features whose mean activation differs most between "
                        "prompt files A and B (one prompt per line, or *.jsonl), with their labels")
    p.add_argument("--feature", action="append", metavar="SAE[i]",
                   help="instead of a text: this feature's promoted / suppressed tokens, output score and "
                        "KL (repeatable), e.g. --feature res2[1221]")
    p.add_argument("--rank", choices=RANKS, default=None,
                   help="--contrast: rank by activation difference, by output score (re-ranks the "
                        f"{POOL} x --top largest differences), or both (default: activation order, "
                        "each feature given its output score)")
    p.add_argument("--last", action="store_true",
                   help="--contrast: compare each prompt's last token only (prompts cut right before a "
                        "behaviour vs elsewhere: the features about to write it)")
    p.add_argument("--neutral", metavar="FILE",
                   help="--contrast/--feature: text the output score steers on (default: heldout/neutral.txt "
                        "beside the model, else built-in prose)")
    p.add_argument("--strength", type=STRENGTH, default=None, metavar="S",
                   help="--contrast/--feature: steering added, in mean residual norms at the feature's hook "
                        "(default 1)")
    p.add_argument("--spec", metavar="SPEC", help="take model, SAEs and catalogue from this spec")
    p.add_argument("--model", metavar="DIR", help="base model checkpoint directory")
    p.add_argument("--sae", metavar="[ALIAS=]DIR", action="append", default=[],
                   help="an SAE folder (repeatable); ALIAS defaults to sae0, sae1, ...")
    p.add_argument("--catalogue", metavar="PATH", help="feature catalogue (labels)")
    p.add_argument("--top", type=COUNT, default=10, help="features shown per token and SAE (default 10)")
    # dest differs from `format`: the CLI's reporter reads args.format for diagnostics
    p.add_argument("--format", choices=("text", "json"), default="text", dest="output_format",
                   help="text table (default) or one JSON document on stdout")
    add_allow_pickle_argument(p)


def _sae_args(values):
    out = []
    for i, v in enumerate(values):
        alias, sep, path = v.partition("=")
        if not sep or os.path.exists(v):
            alias, path = f"sae{i}", v
        out.append((alias, path))
    return tuple(out)


def run(args: argparse.Namespace) -> int:
    """Exit 0 with the table or JSON on stdout; 1 on diagnostics."""
    from steerc.api import trace
    from steerc.diagnostics import Diagnostic, DiagnosticError

    modes = [m for m, v in (("TEXT", args.text), ("--contrast", args.contrast), ("--feature", args.feature))
             if v is not None]
    if len(modes) != 1:
        raise DiagnosticError([Diagnostic("E510", "trace takes one of TEXT, --contrast A B or --feature SAE[i]"
                                          + (f" (got {' and '.join(modes)})" if modes else ""), None,
                                          'e.g. steerc trace --contrast code.txt prose.txt --spec S')])
    stray = [f for f, v in (("--rank", args.rank), ("--last", args.last or None), ("--neutral", args.neutral),
                            ("--strength", args.strength))
             if v is not None and (args.text is not None or (f in ("--rank", "--last") and args.feature is not None))]
    if stray:
        raise DiagnosticError([Diagnostic(
            "E577", f"{', '.join(stray)} does not apply to trace {modes[0]}", None,
            "--rank and --last are for --contrast; --neutral and --strength for --contrast and --feature")])
    if args.contrast is not None or args.feature is not None:
        return _contrast(args) if args.contrast is not None else _feature(args)
    res = trace(args.text, spec=args.spec, model=args.model, saes=_sae_args(args.sae),
                catalogue=args.catalogue, top=args.top, allow_pickle=args.allow_pickle)
    if args.output_format == "json":
        print(json.dumps(res.to_json(), indent=1))
    else:
        show(res.table())
    return 0


def _sources(args: argparse.Namespace, example: str):
    """Model / SAEs / catalogue from --spec, overridden by --model, --sae, --catalogue."""
    from steerc.diagnostics import Diagnostic, DiagnosticError
    from steerc.verify.trace import Sources, sources_from_spec

    pairs = _sae_args(args.sae)
    if args.spec is not None:
        src = sources_from_spec(args.spec)
        return Sources(args.model or src.model, pairs or src.saes, args.catalogue or src.catalogue)
    if args.model is None or not pairs:
        raise DiagnosticError([Diagnostic("E510", "trace needs --spec, or --model and --sae", None,
                                          f"e.g. steerc trace {example} --spec S")])
    return Sources(args.model, pairs, args.catalogue)


def _settings(args: argparse.Namespace):
    from steerc.verify.effect import EffectSettings

    return EffectSettings() if args.strength is None else EffectSettings(strength=args.strength)


def _neutral_docs(args: argparse.Namespace, src):
    """The neutral text (E508 when --neutral is unusable), read before any model loads."""
    from pathlib import Path

    from steerc.verify.texts import neutral_set

    return neutral_set(args.neutral, Path(src.model))


def _contrast(args: argparse.Namespace) -> int:
    """`trace --contrast A B`: the table or JSON of `steerc.verify.trace.contrast`."""
    from steerc.verify.effect import neutral_windows
    from steerc.verify.trace import contrast, contrast_json, contrast_table, load_sources, read_contrast_file

    a, b = args.contrast
    rank = args.rank or "both"
    prompts_a, prompts_b = read_contrast_file(a), read_contrast_file(b)  # before any model loads
    src = _sources(args, "--contrast a.txt b.txt")
    texts = _neutral_docs(args, src) if rank != "activation" else None
    settings = _settings(args)
    model, tok, saes, cat = load_sources(src, allow_pickle=args.allow_pickle)
    neutral = neutral_windows(texts.docs, texts.source, tok, settings) if texts is not None else None
    rows, na, nb = contrast(model, tok, saes, cat, prompts_a, prompts_b, top=args.top, rank=rank,
                            neutral=neutral, settings=settings, last=args.last)
    if args.output_format == "json":
        print(json.dumps(contrast_json(rows, a, b, na, nb, rank, neutral, settings, args.last), indent=1))
    else:
        show(contrast_table(rows, a, b, rank, neutral, settings, args.last))
    return 0


def _feature(args: argparse.Namespace) -> int:
    """`trace --feature SAE[i]`: the table or JSON of `steerc.verify.trace.inspect_features`."""
    from steerc.verify.effect import neutral_windows
    from steerc.verify.trace import features_json, features_table, inspect_features, load_sources, parse_features

    src = _sources(args, "--feature res2[1221]")
    texts = _neutral_docs(args, src)
    settings = _settings(args)
    model, tok, saes, cat = load_sources(src, allow_pickle=args.allow_pickle)
    keys = parse_features(args.feature, saes)
    neutral = neutral_windows(texts.docs, texts.source, tok, settings)
    rows = inspect_features(model, tok, saes, cat, keys, neutral, settings)
    if args.output_format == "json":
        print(json.dumps(features_json(rows, neutral, settings), indent=1))
    else:
        show(features_table(rows, neutral, settings))
    return 0
