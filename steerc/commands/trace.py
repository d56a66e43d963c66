"""`steerc trace "TEXT" --spec SPEC | --model M --sae S [--catalogue C]`: features per token;
`steerc trace --contrast A B ...`: features most different between two prompt files."""

from __future__ import annotations

import argparse
import json
import os

from steerc.commands import add_allow_pickle_argument, show
from steerc.commands.args import COUNT

NAME = "trace"
HELP = "show which SAE features fire on each token of a text (to find features for a spec)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("text", nargs="?", help="the text to trace (or --contrast A B)")
    p.add_argument("--contrast", nargs=2, metavar=("A", "B"),
                   help="instead of a text: the features whose mean activation differs most between "
                        "prompt files A and B (one prompt per line, or *.jsonl), with their labels")
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

    if (args.text is None) == (args.contrast is None):
        from steerc.diagnostics import Diagnostic, DiagnosticError

        raise DiagnosticError([Diagnostic("E510", "trace takes a TEXT or --contrast A B (one of the two)",
                                          None, 'e.g. steerc trace --contrast code.txt prose.txt --spec S')])
    if args.contrast is not None:
        return _contrast(args)
    res = trace(args.text, spec=args.spec, model=args.model, saes=_sae_args(args.sae),
                catalogue=args.catalogue, top=args.top, allow_pickle=args.allow_pickle)
    if args.output_format == "json":
        print(json.dumps(res.to_json(), indent=1))
    else:
        show(res.table())
    return 0


def _contrast(args: argparse.Namespace) -> int:
    """`trace --contrast A B`: the table or JSON of `steerc.verify.trace.contrast`."""
    from steerc.diagnostics import Diagnostic, DiagnosticError
    from steerc.verify.trace import (Sources, contrast, contrast_json, contrast_table, load_sources,
                                     read_contrast_file, sources_from_spec)

    a, b = args.contrast
    prompts_a, prompts_b = read_contrast_file(a), read_contrast_file(b)  # before any model loads
    pairs = _sae_args(args.sae)
    if args.spec is not None:
        src = sources_from_spec(args.spec)
        src = Sources(args.model or src.model, pairs or src.saes, args.catalogue or src.catalogue)
    elif args.model is None or not pairs:
        raise DiagnosticError([Diagnostic("E510", "trace needs --spec, or --model and --sae", None,
                                          "e.g. steerc trace --contrast a.txt b.txt --spec S")])
    else:
        src = Sources(args.model, pairs, args.catalogue)
    model, tok, saes, cat = load_sources(src, allow_pickle=args.allow_pickle)
    rows, na, nb = contrast(model, tok, saes, cat, prompts_a, prompts_b, top=args.top)
    if args.output_format == "json":
        print(json.dumps(contrast_json(rows, a, b, na, nb), indent=1))
    else:
        show(contrast_table(rows, a, b))
    return 0
