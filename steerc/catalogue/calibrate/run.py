"""Run a calibration: load, stream batches through an engine, reduce, write the catalogue.

    doc = calibrate(Job(model="m", saes=(("res2", "saes/l2"),), sources=(Source("", "a.txt"),),
                        out=Path("cat.json")))

The local engine streams the corpus batch by batch; memory holds one batch and the
statistics (O(d_sae * (BINS + top_k * width)) per SAE), whatever the corpus size. Every
`checkpoint_every` batches it writes the statistics and the number of windows done to
OUT.partial (safetensors, atomically); a rerun of the same job (same fingerprint) continues
from there, and a finished run deletes it. The Ray engine (ray_engine.py) checkpoints the
same file after each wave, so either engine resumes the other's run. The output is validated, then written atomically.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import torch
from tqdm import tqdm

from steerc.arch.logitlens import output_side
from steerc.catalogue.calibrate import corpus
from steerc.catalogue.calibrate.document import Shape, Tokens, features
from steerc.catalogue.calibrate.job import Job
from steerc.catalogue.calibrate.model import Encoder, SaeJob, check_saes, load_model
from steerc.catalogue.calibrate.stats import Partial
from steerc.diagnostics import Diagnostic, DiagnosticError

E_CHECKPOINT = "E148"
E_OUTPUT = "E149"


def load_saes(job: Job, device: str) -> list[SaeJob]:
    """Load every SAE of the job (SAE loader diagnostics pass through)."""
    from steerc.saes.load import load_sae

    return [SaeJob(i, p, load_sae(p, device=device)) for i, p in job.saes]


def new_partials(job: Job, saes: list[SaeJob]) -> list[Partial]:
    """Empty statistics, one per SAE."""
    return [Partial.empty(j.sae.d_sae, len(job.sources), job.top_k, job.width) for j in saes]


def add_batch(encoder: Encoder, parts: list[Partial], batch: corpus.Batch, left: int) -> int:
    """Encode one batch and add it into `parts`; returns its number of content tokens."""
    acts = encoder.activations(batch)
    row, pos = batch.mask.nonzero(as_tuple=True)
    window, source = batch.window[row], batch.source[row]
    for p, a in zip(parts, acts):
        p.add(a, window, pos, source, batch.ids, row, left)
    return int(row.numel())


def _save_checkpoint(path: Path, parts: list[Partial], fingerprint: str, windows: int, tokens: int) -> None:
    from safetensors.torch import save_file

    t = {f"{i}.{k}": v for i, p in enumerate(parts) for k, v in p.to_tensors().items()}
    tmp = path.with_name(path.name + ".tmp")
    save_file(t, str(tmp), metadata={"fingerprint": fingerprint, "windows": str(windows), "tokens": str(tokens)})
    os.replace(tmp, path)


def _load_checkpoint(path: Path, fingerprint: str, n: int) -> tuple[list[Partial], int, int] | None:
    from safetensors import SafetensorError
    from safetensors.torch import load_file, safe_open

    try:
        with safe_open(str(path), "pt") as fh:
            meta = fh.metadata() or {}
        if meta.get("fingerprint") != fingerprint:
            raise DiagnosticError([Diagnostic(E_CHECKPOINT, f"{path}: a checkpoint of a different calibration job "
                                              "(model, SAEs, corpus or options changed)",
                                              hint="delete it to start over, or rerun the job it was made for")])
        t = load_file(str(path))
        parts = [Partial.from_tensors({k.split(".", 1)[1]: v for k, v in t.items() if k.startswith(f"{i}.")})
                 for i in range(n)]
        return parts, int(meta["windows"]), int(meta["tokens"])
    except (SafetensorError, OSError, KeyError, ValueError) as e:
        raise DiagnosticError([Diagnostic(E_CHECKPOINT, f"{path}: unreadable checkpoint ({e})",
                                          hint="delete it to start over")])


def _bar(job: Job, done_tokens: int):
    if job.max_tokens is not None:
        return tqdm(total=job.max_tokens, initial=done_tokens, unit="tok", unit_scale=True,
                    desc="calibrate", disable=not job.progress), "tokens"
    total = sum(s.size() for s in job.sources) or None
    return tqdm(total=total, unit="B", unit_scale=True, desc="calibrate (corpus bytes)",
                disable=not job.progress), "bytes"


def resume_state(job: Job, saes: list[SaeJob], fingerprint: str) -> tuple[list[Partial], int, int]:
    """(statistics, windows done, tokens done): from OUT.partial when it holds this job
    (E148 when it holds another), else empty. Both engines start here."""
    if job.partial_path.exists():
        got = _load_checkpoint(job.partial_path, fingerprint, len(saes))
        if got:
            if job.progress:
                print(f"resuming from {job.partial_path}: {got[1]} windows, {got[2]} tokens done", flush=True)
            return got
    return new_partials(job, saes), 0, 0


def save_checkpoint(job: Job, parts: list[Partial], fingerprint: str, windows: int, tokens: int) -> None:
    """Write the statistics so far and the windows / tokens done to OUT.partial, atomically."""
    _save_checkpoint(job.partial_path, parts, fingerprint, windows, tokens)


def run_local(job: Job, model, tokenizer, saes: list[SaeJob], fingerprint: str) -> list[Partial]:
    """The local engine: stream, add, checkpoint; returns the reduced statistics."""
    encoder = Encoder(model, saes, job.device)
    parts, windows, tokens = resume_state(job, saes, fingerprint)
    bar, unit = _bar(job, tokens)
    start, since = time.perf_counter(), 0
    stream = corpus.batches(list(job.sources), tokenizer, context=job.context, batch_size=job.batch_size,
                            max_tokens=job.max_tokens, text_field=job.text_field, skip_windows=windows)
    for n, batch in enumerate(stream, start=1):
        got = add_batch(encoder, parts, batch, job.left)
        tokens += got
        since += got
        windows = int(batch.window[-1]) + 1
        bar.update(got if unit == "tokens" else batch.nbytes)
        if unit == "bytes":
            bar.set_postfix_str(f"{since / max(time.perf_counter() - start, 1e-9):,.0f} tok/s", refresh=False)
        if n % job.checkpoint_every == 0:
            save_checkpoint(job, parts, fingerprint, windows, tokens)
    bar.close()
    return parts


def calibrate(job: Job) -> dict:
    """Run `job` and write its catalogue to `job.out`; returns the catalogue document.
    Raises DiagnosticError on bad input (nothing is written then)."""

    corpus.check_sources(list(job.sources), job.text_field)
    threads = torch.get_num_threads()
    if job.threads:
        torch.set_num_threads(job.threads)
    try:
        return _calibrate(job)
    finally:  # a library call must not leave the process's thread count changed
        torch.set_num_threads(threads)


def _calibrate(job: Job) -> dict:
    from steerc.catalogue.validate import validate_catalogue

    saes = load_saes(job, "cpu")
    model, tok = load_model(job.model, dtype=job.dtype, device=job.device)
    check_saes(model, saes)
    hashes = [j.sae.sha256() for j in saes]
    fingerprint = job.fingerprint(hashes)
    if job.engine == "ray":
        from steerc.catalogue.calibrate.ray_engine import run_ray

        parts = run_ray(job, tok, fingerprint)
    else:
        parts = run_local(job, model, tok, saes, fingerprint)
    if int(parts[0].n_tokens) == 0:
        raise DiagnosticError([Diagnostic(corpus.E_CORPUS_EMPTY, "the corpus gave no tokens",
                                          hint="check the corpus files (and --text-field for JSONL)")])
    doc = document(job, model, tok, saes, hashes, parts)
    diags = validate_catalogue(doc, str(job.out))
    if diags:  # a bug, not bad input: say so instead of writing a catalogue nobody can open
        raise DiagnosticError(diags)
    write_json(job.out, doc)
    if job.partial_path.exists():
        job.partial_path.unlink()
    return doc


def document(job: Job, model, tok, saes: list[SaeJob], hashes: list[str], parts: list[Partial]) -> dict:
    """The catalogue document from reduced statistics (labels, tags, output side)."""
    from steerc.catalogue.calibrate.neuronpedia_merge import merge_labels

    tokens = Tokens(tok)
    shape = Shape(job.left, job.right, job.n_contexts, job.n_logits)
    labels = [s.label for s in job.sources]
    feats, entries = [], []
    for j, h, p in zip(saes, hashes, parts):
        out = output_side(model, j.sae, min(job.n_logits + len(tokens.special), model.config.vocab_size))
        feats.extend(features(j.id, p, tokens, shape, labels, out))
        entries.append({"id": j.id, "hook": j.sae.hook_name, "d_sae": j.sae.d_sae, "sha256": h, "model": job.model})
    doc = {"version": 1, "saes": entries, "features": feats}
    return merge_labels(doc, job.labels) if job.labels else doc


def write_json(path: Path, doc: dict) -> None:
    """Write `doc` atomically (a temporary file renamed over `path`); E149 when it cannot."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise DiagnosticError([Diagnostic(E_OUTPUT, f"{path}: cannot write the catalogue ({e.strerror})")])
