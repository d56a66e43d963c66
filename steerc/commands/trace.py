"""`steerc trace "TEXT" --spec SPEC | --model M --sae S [--catalogue C]`: features per token."""

from __future__ import annotations

import argparse
import json
import os

from steerc.commands import add_allow_pickle_argument, show
from steerc.commands.args import COUNT

NAME = "trace"
HELP = "show which SAE features fire on each token of a text (to find features for a spec)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("text", help="the text to trace")
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

    res = trace(args.text, spec=args.spec, model=args.model, saes=_sae_args(args.sae),
                catalogue=args.catalogue, top=args.top, allow_pickle=args.allow_pickle)
    if args.output_format == "json":
        print(json.dumps(res.to_json(), indent=1))
    else:
        show(res.table())
    return 0
