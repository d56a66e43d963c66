"""`steerc catalogue build|search|show|tags|check`: build, query and validate feature catalogues."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from steerc.commands import show
from steerc.catalogue import Catalogue, FeatureInfo, build_index, import_neuronpedia, validate_catalogue
from steerc.commands.args import COUNT, WIDTH
from steerc.diagnostics import Diagnostic, DiagnosticError, did_you_mean, render_all
from steerc.files.write import dumps_json, write_atomic

NAME = "catalogue"
HELP = "Build, search and inspect feature catalogues (labels, tags, activation statistics)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION")

    b = sub.add_parser("build", help="Build a .sqlite index from a JSON catalogue or a Neuronpedia export.")
    b.add_argument("src", nargs="+", type=Path, help="JSON catalogue, or Neuronpedia export files/directories")
    b.add_argument("-o", "--out", required=True, type=Path,
                   help="output index (.sqlite); a .json OUT writes the catalogue as JSON instead")
    b.add_argument("--from", dest="fmt", choices=("json", "neuronpedia"), default="json", help="source format")
    b.add_argument("--sae", help="SAE id for an imported catalogue (neuronpedia)")
    b.add_argument("--hook", help="hook point of the SAE, e.g. blocks.6.hook_resid_pre (neuronpedia)")
    b.add_argument("--d-sae", type=WIDTH, help="number of SAE features (neuronpedia)")
    b.add_argument("--model", help="model id recorded for the SAE (neuronpedia; default: the export's modelId)")
    b.add_argument("--source", help="Neuronpedia source id to keep, e.g. 6-res-jb (when the export holds several)")
    b.add_argument("--features", nargs="+", type=Path, default=[], help="Neuronpedia feature-row files (max act, density)")
    b.add_argument("--activations", nargs="+", type=Path, default=[], help="Neuronpedia activation-row files (top contexts)")
    b.add_argument("--no-progress", action="store_true", help="no progress bars")

    s = sub.add_parser("search", help="Full-text search over labels, aliases, tags and descriptions.")
    s.add_argument("query")
    s.add_argument("--catalogue", "-c", required=True, type=Path)
    s.add_argument("--sae", help="only features of this SAE")
    s.add_argument("--limit", "-n", type=COUNT, default=10)
    s.add_argument("--json", action="store_true", help="JSON lines output")

    w = sub.add_parser("show", help="Show one feature: SAE id and index, or SAE id and label.")
    w.add_argument("sae")
    w.add_argument("index", help="feature index, or a label/alias")
    w.add_argument("--catalogue", "-c", required=True, type=Path)
    w.add_argument("--json", action="store_true", help="JSON output")

    t = sub.add_parser("tags", help="List the tags of a catalogue with their feature counts.")
    t.add_argument("--catalogue", "-c", required=True, type=Path)
    t.add_argument("--sae", help="only features of this SAE")

    c = sub.add_parser("check", help="Validate a catalogue (JSON or index) and print a summary.")
    c.add_argument("catalogue", type=Path)

    from steerc.catalogue.calibrate import cli as calibrate_cli
    calibrate_cli.add_arguments(sub)
    parser.set_defaults(_catalogue_parser=parser)


def _as_json(f: FeatureInfo) -> dict:
    return {"sae": f.sae, "index": f.index, "label": f.label, "aliases": list(f.aliases),
            "description": f.description, "tags": list(f.tags), "max_activation": f.max_activation,
            "density": f.density, "top_contexts": [{"text": t, "activation": a} for t, a in f.top_contexts]}


def _one_line(f: FeatureInfo) -> str:
    tags = f"  [{', '.join(f.tags)}]" if f.tags else ""
    return f"{f.ref:>14}  {f.label}{tags}"


def _warn(cat: Catalogue) -> None:
    if cat.warnings:
        show(render_all(cat.warnings), file=sys.stderr)


def _build(args: argparse.Namespace) -> int:
    progress = not args.no_progress
    inputs = [("a source", p) for p in [*args.src, *args.features, *args.activations]]
    if args.fmt == "neuronpedia":
        missing = [f"--{n}" for n, v in (("sae", args.sae), ("hook", args.hook), ("d-sae", args.d_sae)) if v is None]
        if missing:
            raise DiagnosticError([Diagnostic("E125", f"--from neuronpedia needs {', '.join(missing)}",
                                              hint="e.g. --sae res6 --hook blocks.6.hook_resid_pre --d-sae 24576")])
        source = import_neuronpedia(args.src, args.sae, args.hook, args.d_sae, model=args.model,
                                    feature_paths=args.features, activation_paths=args.activations,
                                    source=args.source, progress=progress)
        name = ", ".join(map(str, args.src))
    else:
        if len(args.src) != 1:
            raise DiagnosticError([Diagnostic("E125", "a JSON catalogue build takes exactly one source file",
                                              hint="several files are for --from neuronpedia")])
        source, name = args.src[0], str(args.src[0])
    if args.out.suffix == ".json":
        if not isinstance(source, dict):
            raise DiagnosticError([Diagnostic("E125", "a .json output is for imports; the source already is JSON")])
        diags = validate_catalogue(source, name)
        if diags:
            raise DiagnosticError(diags)
        write_atomic(args.out, dumps_json(source, "the catalogue", indent=1, ensure_ascii=False) + "\n",
                     inputs, "catalogue")
    else:
        build_index(source, args.out, progress=progress, source_name=name, inputs=inputs)
    with Catalogue.open(args.out) as cat:
        counts = ", ".join(f"{s.id}: {cat.n_features(s.id)}" for s in cat.saes())
        show(f"wrote {args.out} ({counts} features; sha256 {cat.sha256[:12]})")
        _warn(cat)
    return 0


def _search(args: argparse.Namespace) -> int:
    with Catalogue.open(args.catalogue) as cat:
        _warn(cat)
        found = cat.search(args.query, sae_id=args.sae, limit=args.limit)
        for f in found:
            if args.json:
                print(json.dumps(_as_json(f), ensure_ascii=False))
            else:
                show(_one_line(f))
        if not found and not args.json:
            show(f"no feature matches {args.query!r}", file=sys.stderr)
    return 0


def _show(args: argparse.Namespace) -> int:
    with Catalogue.open(args.catalogue) as cat:
        _warn(cat)
        if args.sae not in {s.id for s in cat.saes()}:
            raise DiagnosticError([Diagnostic("E126", f"{args.catalogue}: no SAE '{args.sae}' in the catalogue",
                                              hint=did_you_mean(args.sae, [s.id for s in cat.saes()]))])
        by_index = args.index.isascii() and args.index.isdigit()  # `٣` is a label, not 3
        if by_index:
            # past 2**63 no feature can exist (and SQLite's integers would overflow)
            found = [f] if len(args.index) <= 18 and (f := cat.get(args.sae, int(args.index))) else []
        else:
            found = cat.by_label(args.sae, args.index)
        if not found:
            close = cat.suggest(args.sae, args.index) if not by_index else []
            hint = ("did you mean " + " or ".join(f"'{c}'" for c in close) + "?") if close else None
            raise DiagnosticError([Diagnostic("E127", f"{args.catalogue}: no feature {args.sae}[{args.index!r}]", hint=hint)])
        for f in found:
            if args.json:
                print(json.dumps(_as_json(f), ensure_ascii=False, indent=1))
                continue
            show(f"{f.ref}  {f.label}")
            for key, value in (("aliases", ", ".join(f.aliases)), ("description", f.description),
                               ("tags", ", ".join(f.tags)), ("max_activation", f.max_activation),
                               ("density", f.density)):
                if value not in ("", None):
                    show(f"  {key}: {value}")
            for text, act in f.top_contexts:
                show(f"  context ({act:.3g}): {text!r}")
    return 0


def _tags(args: argparse.Namespace) -> int:
    with Catalogue.open(args.catalogue) as cat:
        _warn(cat)
        for tag, count in cat.tags(args.sae):
            show(f"{count:>9}  {tag}")
    return 0


def _check(args: argparse.Namespace) -> int:
    with Catalogue.open(args.catalogue) as cat:
        _warn(cat)
        for s in cat.saes():
            show(f"{s.id}: {cat.n_features(s.id)} of {s.d_sae} features catalogued ({s.hook})")
        show(f"ok: {args.catalogue} (sha256 {cat.sha256})")
    return 0


def run(args: argparse.Namespace) -> int:
    """Dispatch to the chosen action; 2 when none was given."""
    from steerc.catalogue.calibrate import cli as calibrate_cli

    actions = {"build": _build, "search": _search, "show": _show, "tags": _tags, "check": _check,
               "calibrate": calibrate_cli.run}
    if args.action not in actions:
        args._catalogue_parser.print_help(sys.stderr)
        return 2
    return actions[args.action](args)
