"""`steerc catalogue calibrate`: arguments and the call into `calibrate`."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from steerc.commands.args import COUNT, TOKENS
from steerc.diagnostics import Diagnostic, DiagnosticError

E_ARGS = "E143"
E_OPTION = "E150"
_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")


def add_arguments(sub) -> None:
    """Register the `calibrate` action on the `catalogue` subparsers."""
    c = sub.add_parser("calibrate", help="Build a catalogue for SAEs by running a model over a corpus.",
                       description="Statistics, top contexts, output-side tokens, auto-labels and tags for every "
                                   "feature of the given SAEs (docs/catalogue.md, 'Calibrate').")
    c.add_argument("--model", required=True, help="model folder (transformers checkpoint)")
    c.add_argument("--sae", action="append", required=True, metavar="[ID=]PATH",
                   help="SAE folder or file; ID is the catalogue id (default: the folder name); repeatable")
    c.add_argument("--corpus", action="append", required=True, metavar="[LABEL[,LABEL]=]PATH",
                   help="text file, .jsonl file, or dataset:NAME[:SPLIT]; LABEL makes tags (code= -> format:code, "
                        "news= -> topic:news, entity:acme= verbatim; code,topic:xml= both); repeatable")
    c.add_argument("-o", "--out", required=True, type=Path, help="output catalogue (.json)")
    c.add_argument("--text-field", default="text", help="JSONL / dataset field holding the text (default: text)")
    c.add_argument("--max-tokens", type=TOKENS, help="token budget (default: the whole corpus)")
    c.add_argument("--context", type=COUNT, default=128, help="window length in tokens, BOS included (default 128)")
    c.add_argument("--batch-size", type=COUNT, default=8, help="windows per forward pass (default 8)")
    c.add_argument("--dtype", choices=("float32", "bfloat16", "float16"), default="float32")
    c.add_argument("--device", default="cpu", help="torch device, e.g. cpu, cuda, cuda:1 (default cpu)")
    c.add_argument("--top-k", type=COUNT, default=16, help="contexts kept per feature for labelling (default 16)")
    c.add_argument("--contexts", type=COUNT, default=5, help="contexts written per feature (default 5)")
    c.add_argument("--checkpoint-every", type=COUNT, default=50, help="batches between checkpoints to OUT.partial")
    c.add_argument("--labels", action="append", default=[], metavar="[SAE=]EXPORT",
                   help="merge labels from a Neuronpedia export (files or folder); repeatable")
    c.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="local (default) or ray (Ray Data; RAY_ADDRESS joins a cluster)")
    c.add_argument("--workers", type=COUNT, default=2, help="Ray model actors (default 2)")
    c.add_argument("--threads", type=COUNT, help="torch threads per process (default: torch's choice; Ray: 1)")
    c.add_argument("--no-progress", action="store_true", help="no progress bar")


def _pair(value: str, what: str) -> tuple[str, str]:
    # "ID=PATH" or "PATH"; a path holding "=" is taken as a path when it exists as given.
    if "=" in value and not Path(value).exists():
        key, _, path = value.partition("=")
        if not key or not path:
            raise DiagnosticError([Diagnostic(E_ARGS, f"{what} {value!r}: expected NAME=PATH or PATH")])
        return key, path
    return "", value


def job_from_args(args: argparse.Namespace):
    """Validate the arguments into a `Job` (E143 / E150 on bad values)."""
    from steerc.catalogue.calibrate.corpus import Source
    from steerc.catalogue.calibrate.job import Job
    from steerc.catalogue.calibrate.tags import label_problem

    diags = []
    saes = []
    for v in args.sae:
        sid, path = _pair(v, "--sae")
        sid = sid or re.sub(r"[^A-Za-z0-9_.\-]", "_", Path(path).name.removesuffix(".safetensors")) or "sae"
        if not _ID.match(sid):
            sid = "sae_" + sid
        if not _ID.match(sid):
            diags.append(Diagnostic(E_ARGS, f"--sae {v}: '{sid}' is not a valid SAE id",
                                    hint="ids look like res2 or blocks.2.res (letters, digits, _ . -)"))
        saes.append((sid, path))
    dup = sorted({s for s, _ in saes if [x for x, _ in saes].count(s) > 1})
    if dup:
        diags.append(Diagnostic(E_ARGS, f"SAE id {dup[0]!r} given twice", hint="name them: --sae a=PATH --sae b=PATH"))
    sources = []
    for v in args.corpus:
        label, path = ("", v) if v.startswith("dataset:") else _pair(v, "--corpus")
        problem = label_problem(label) if label else None
        if problem:
            diags.append(Diagnostic(E_ARGS, f"--corpus {v}: {problem}",
                                    hint="labels look like code, topic:xml or code,topic:xml (one per kind)"))
        sources.append(Source(label, path))
    for name, value, lo in (("--context", args.context, 2), ("--batch-size", args.batch_size, 1),
                            ("--top-k", args.top_k, 1), ("--contexts", args.contexts, 0),
                            ("--checkpoint-every", args.checkpoint_every, 1), ("--workers", args.workers, 1),
                            ("--max-tokens", args.max_tokens, 1), ("--threads", args.threads, 1)):
        if value is not None and value < lo:
            diags.append(Diagnostic(E_OPTION, f"{name} {value}: must be at least {lo}"))
    if args.contexts > args.top_k:
        diags.append(Diagnostic(E_OPTION, f"--contexts {args.contexts} exceeds --top-k {args.top_k}"))
    if args.out.suffix != ".json":
        diags.append(Diagnostic(E_OPTION, f"-o {args.out}: calibrate writes a JSON catalogue (.json)",
                                hint="build an index from it afterwards: steerc catalogue build OUT.json -o OUT.sqlite"))
    if diags:
        raise DiagnosticError(diags)
    return Job(model=args.model, saes=tuple(saes), sources=tuple(sources), out=args.out, max_tokens=args.max_tokens,
               context=args.context, batch_size=args.batch_size, dtype=args.dtype, device=args.device,
               text_field=args.text_field, top_k=args.top_k, n_contexts=args.contexts,
               checkpoint_every=args.checkpoint_every, labels=tuple(_pair(v, "--labels") for v in args.labels),
               engine=args.engine, workers=args.workers, threads=args.threads, progress=not args.no_progress)


def run(args: argparse.Namespace) -> int:
    """The `calibrate` action: run the job, print a summary."""
    from steerc.catalogue.calibrate.run import calibrate

    job = job_from_args(args)
    doc = calibrate(job)
    for s in doc["saes"]:
        feats = [f for f in doc["features"] if f["sae"] == s["id"]]
        live = [f for f in feats if "inactive" not in f["tags"]]
        tags: dict[str, int] = {}
        for f in live:
            for t in f["tags"]:
                tags[t] = tags.get(t, 0) + 1
        shown = ", ".join(f"{t} {n}" for t, n in sorted(tags.items()))
        print(f"{s['id']}: {len(live)} of {len(feats)} features fired" + (f"; tags: {shown}" if shown else ""))
    print(f"wrote {job.out}")
    return 0
