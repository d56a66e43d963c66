"""Corpus -> documents -> fixed windows -> batches, streamed in one deterministic order.

Sources, in the order given: a text file (documents are its blank-line-separated blocks,
cut at 16 KiB), a `.jsonl` file (one document per line, text in `text_field`), or
`dataset:NAME[:SPLIT]` (a Hugging Face `datasets` dataset, streamed; a folder written by
`save_to_disk` is read from disk). A source may carry a label, `code=PATH`, used for tags.

A document's tokens are cut into windows of `context - 1` tokens, each prefixed with the
tokenizer's BOS (when it has one); windows are numbered in corpus order. The token budget
cuts the last window short, so a budget of N gives exactly N content tokens. Both engines
consume `batches()`, so they run the model on identical tensors.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import torch

from steerc.diagnostics import Diagnostic, DiagnosticError

E_CORPUS_FILE = "E140"
E_CORPUS_ROW = "E141"
E_CORPUS_EMPTY = "E142"
E_NO_DATASETS = "E145"
DOC_MAX_CHARS = 16 << 10


@dataclass(frozen=True)
class Source:
    """One corpus source: `label` ("" for none), `path` (a file, or `dataset:NAME[:SPLIT]`)."""

    label: str
    path: str

    @property
    def is_dataset(self) -> bool:
        return self.path.startswith("dataset:")

    def size(self) -> int:
        """Bytes of a file source (0 for datasets): progress is measured in these."""
        return 0 if self.is_dataset else os.path.getsize(self.path)


@dataclass(frozen=True)
class Batch:
    """Model input: `ids` (B, T), `attn` (B, T) True at real (non-padding) tokens, `mask`
    (B, T) True at content tokens, and per row its global `window` number and `source` index."""

    ids: torch.Tensor
    attn: torch.Tensor
    mask: torch.Tensor
    window: torch.Tensor
    source: torch.Tensor
    nbytes: int  # corpus bytes finished with this batch (progress)


def check_sources(sources: list[Source], text_field: str) -> None:
    """Fail early (E140/E145) on a missing file or a dataset without the package."""
    bad = []
    for s in sources:
        if s.is_dataset:
            try:
                import datasets  # noqa: F401
            except ImportError:
                raise DiagnosticError([Diagnostic(E_NO_DATASETS, f"{s.path}: reading a dataset needs the `datasets` package",
                                                  hint="pip install datasets, or pass text or JSONL files")])
        elif not os.path.isfile(s.path):
            bad.append(Diagnostic(E_CORPUS_FILE, f"{s.path}: corpus file not found" if not os.path.exists(s.path)
                                  else f"{s.path}: not a file", hint="pass text (.txt) or JSON-lines (.jsonl) files"))
    if bad:
        raise DiagnosticError(bad)


def _open_text(path: str):
    """A corpus file as UTF-8 text lines, opened through the guarded reader: a regular file
    only (a FIFO or /dev/zero would stream forever), checked on the opened descriptor."""
    import io

    from steerc.files import read

    return io.TextIOWrapper(io.BufferedReader(read.open_regular(path, read.CORPUS)), encoding="utf-8")


def _text_docs(path: str) -> Iterator[tuple[str, int]]:
    block: list[str] = []
    size = 0
    try:
        with _open_text(path) as fh:
            for line in fh:
                nbytes = len(line.encode("utf-8"))
                if not line.strip() or size > DOC_MAX_CHARS:
                    if block:
                        yield "".join(block), size
                        block, size = [], 0
                    if not line.strip():
                        size = nbytes
                        continue
                block.append(line)
                size += nbytes
    except UnicodeDecodeError as e:
        raise DiagnosticError([Diagnostic(E_CORPUS_FILE, f"{path}: not UTF-8 text ({e.reason} at byte {e.start})")])
    except OSError as e:
        raise DiagnosticError([Diagnostic(E_CORPUS_FILE, f"{path}: cannot read ({e.strerror})")])
    if block:
        yield "".join(block), size


def _jsonl_docs(path: str, field: str) -> Iterator[tuple[str, int]]:
    try:
        with _open_text(path) as fh:
            for n, line in enumerate(fh, start=1):
                nbytes = len(line.encode("utf-8"))
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as e:
                    raise DiagnosticError([Diagnostic(E_CORPUS_ROW, f"{path}:{n}:{e.colno}: not valid JSON ({e.msg})")])
                text = row.get(field) if isinstance(row, dict) else None
                if not isinstance(text, str):
                    keys = sorted(row)[:8] if isinstance(row, dict) else []
                    raise DiagnosticError([Diagnostic(E_CORPUS_ROW, f"{path}:{n}: no string field '{field}'",
                                                      hint=f"choose the field with --text-field (keys: {keys})")])
                yield text, nbytes
    except UnicodeDecodeError as e:
        raise DiagnosticError([Diagnostic(E_CORPUS_FILE, f"{path}: not UTF-8 text ({e.reason} at byte {e.start})")])
    except OSError as e:
        raise DiagnosticError([Diagnostic(E_CORPUS_FILE, f"{path}: cannot read ({e.strerror})")])


def _dataset_docs(spec: str, field: str) -> Iterator[tuple[str, int]]:
    import datasets

    name, _, split = spec[len("dataset:"):].partition(":")
    try:
        saved = os.path.isdir(name) and any((Path(name) / f).exists() for f in ("dataset_info.json", "dataset_dict.json"))
        if saved:
            ds = datasets.load_from_disk(name)
            ds = ds[split or next(iter(ds))] if isinstance(ds, datasets.DatasetDict) else ds
        else:
            ds = datasets.load_dataset(name, split=split or "train", streaming=True)
    except Exception as e:  # datasets raises many types; all mean "cannot open it"
        raise DiagnosticError([Diagnostic(E_CORPUS_FILE, f"{spec}: cannot open the dataset ({type(e).__name__}: {e})")])
    for n, row in enumerate(ds):
        text = row.get(field)
        if not isinstance(text, str):
            raise DiagnosticError([Diagnostic(E_CORPUS_ROW, f"{spec}: row {n} has no string field '{field}'",
                                              hint=f"choose the field with --text-field (keys: {sorted(row)[:8]})")])
        yield text, 0


def documents(source: Source, text_field: str) -> Iterator[tuple[str, int]]:
    """(text, bytes of the source consumed) for each document of `source`, in file order."""
    if source.is_dataset:
        return _dataset_docs(source.path, text_field)
    if source.path.endswith((".jsonl", ".ndjson")):
        return _jsonl_docs(source.path, text_field)
    return _text_docs(source.path)


def windows(sources: list[Source], tokenizer, *, context: int, max_tokens: int | None,
            text_field: str) -> Iterator[tuple[int, list[int], int]]:
    """(source index, window token ids, bytes consumed) in corpus order, BOS first."""
    bos = tokenizer.bos_token_id
    specials = set(getattr(tokenizer, "all_special_ids", []) or [])
    body = context - 1 if bos is not None else context
    left = max_tokens
    for si, src in enumerate(sources):
        for text, nbytes in documents(src, text_field):
            # verbose=False: documents are longer than the model context on purpose (cut below)
            toks = tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"]
            for lo in range(0, len(toks), body):
                piece = toks[lo:lo + body]
                if left is not None:  # the budget counts content tokens (specials are not seen)
                    n, cut = 0, len(piece)
                    for i, t in enumerate(piece):
                        n += t not in specials
                        if n == left:
                            cut = i + 1
                            break
                    piece = piece[:cut]
                    left -= sum(t not in specials for t in piece)
                yield si, ([bos] if bos is not None else []) + piece, nbytes if lo + body >= len(toks) else 0
                if left == 0:
                    return


def batches(sources: list[Source], tokenizer, *, context: int, batch_size: int, max_tokens: int | None,
            text_field: str, skip_windows: int = 0) -> Iterator[Batch]:
    """Windows grouped `batch_size` at a time, right-padded; the first `skip_windows`
    windows (already counted in a resumed run) are tokenised but not batched."""
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)
    specials = set(getattr(tokenizer, "all_special_ids", []) or [])
    rows: list[tuple[int, int, list[int]]] = []
    nbytes = 0

    def emit() -> Batch:
        T = max(len(r[2]) for r in rows)
        ids = torch.full((len(rows), T), pad, dtype=torch.int64)
        attn = torch.zeros((len(rows), T), dtype=torch.bool)
        mask = torch.zeros((len(rows), T), dtype=torch.bool)
        for i, (_, _, toks) in enumerate(rows):
            ids[i, :len(toks)] = torch.tensor(toks, dtype=torch.int64)
            attn[i, :len(toks)] = True
            mask[i, :len(toks)] = torch.tensor([x not in specials for x in toks])
        return Batch(ids, attn, mask, torch.tensor([r[0] for r in rows]), torch.tensor([r[1] for r in rows]), nbytes)

    for w, (si, toks, nb) in enumerate(windows(sources, tokenizer, context=context, max_tokens=max_tokens,
                                                text_field=text_field)):
        nbytes += nb
        if w < skip_windows:
            continue
        rows.append((w, si, toks))
        if len(rows) == batch_size:
            yield emit()
            rows, nbytes = [], 0
    if rows:
        yield emit()
