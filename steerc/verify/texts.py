"""Text sets for `steerc verify`: the prompt set (feature activations) and neutral text (KL).

A text file holds documents separated by lines `<|doc|>` (the demo's held-out files), or,
without such a line, by blank lines. Documents become fixed-length token windows
`[BOS] + tokens` (no padding), cut from the documents joined by EOS.

Defaults, in order: the --prompts/--neutral file; `heldout/` next to the base model (the
demo ships `demo/heldout/{prose,code,json,neutral}.txt` beside `demo/model`); the built-in
`default_texts.json`.
"""

from __future__ import annotations

import os
import json
import re
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from steerc.diagnostics import Diagnostic, DiagnosticError
from steerc.files import read

DOC_SEP = re.compile(r"^<\|doc\|>\s*$", re.M)
BUILTIN = Path(__file__).with_name("default_texts.json")
PROMPT_FILES = ("prose.txt", "code.txt", "json.txt")
NEUTRAL_FILE = "neutral.txt"


@dataclass(frozen=True)
class TextSet:
    """Documents and where they came from (reported as `source`)."""

    source: str
    docs: tuple[str, ...]


def split_docs(text: str) -> list[str]:
    """Documents of a text file (see the module docstring); empty ones dropped."""
    parts = DOC_SEP.split(text) if DOC_SEP.search(text) else re.split(r"\n\s*\n", text)
    return [p.strip("\n") for p in parts if p.strip()]


def read_file(path: str | Path, what: str) -> TextSet:
    """E508 when the file is missing, unreadable or holds no text."""
    p = Path(path)
    docs = split_docs(read.read_text(p, replace(read.TEXTS, what=f"{what} file")))
    if not docs:
        raise DiagnosticError([Diagnostic("E508", f"{what} file '{p}' holds no text", None,
                                          "documents are separated by blank lines or <|doc|>")])
    return TextSet(str(p), tuple(docs))


def _interleave(lists: list[list[str]]) -> list[str]:
    out = []
    for i in range(max((len(x) for x in lists), default=0)):
        out += [x[i] for x in lists if i < len(x)]
    return out


def prompt_set(path: str | None, base_model: Path) -> TextSet:
    """The prompt set: `path`, else the base model's heldout/ prose+code+json, else built-in."""
    if path:
        return read_file(path, "prompts")
    held = base_model.parent / "heldout"
    files = [held / f for f in PROMPT_FILES if os.path.isfile(held / f)]
    if files:
        docs = _interleave([read_file(f, "prompts").docs for f in files])
        return TextSet(", ".join(str(f) for f in files), tuple(docs))
    return TextSet("built-in prompts", tuple(json.loads(BUILTIN.read_text())["prompts"]))


def neutral_set(path: str | None, base_model: Path) -> TextSet:
    """Neutral text for KL: `path`, else heldout/neutral.txt beside the base model, else built-in."""
    if path:
        return read_file(path, "neutral text")
    f = base_model.parent / "heldout" / NEUTRAL_FILE
    if os.path.isfile(f):
        return read_file(f, "neutral text")
    return TextSet("built-in neutral prose", tuple(json.loads(BUILTIN.read_text())["neutral"]))


def windows(docs, tokenizer, length: int, max_windows: int, *, per_doc: bool = False) -> torch.Tensor:
    """(N, length) int64 token windows, N <= max_windows, each starting with BOS when the
    tokenizer has one.

    `per_doc=False`: the documents joined by EOS, cut into consecutive windows (KL wants
    many tokens). `per_doc=True`: one window per document, from its start (documents shorter
    than a window are joined with the next ones), so mixed-format sets stay mixed.
    """
    bos = tokenizer.bos_token_id
    eos = tokenizer.eos_token_id
    body = length - (bos is not None)
    rows: list[list[int]] = []
    stream: list[int] = []
    for doc in docs:
        ids = tokenizer(doc, add_special_tokens=False)["input_ids"]
        stream += ids + ([eos] if eos is not None else [])
        if per_doc and len(stream) >= body:
            rows.append(stream[:body])
            stream = []
        while not per_doc and len(stream) >= body:
            rows.append(stream[:body])
            stream = stream[body:]
        if len(rows) >= max_windows:
            break
    if not rows and stream:  # less text than one window: one short window
        rows.append(stream)
    rows = rows[:max_windows]
    prefix = [bos] if bos is not None else []
    return torch.tensor([prefix + r for r in rows], dtype=torch.long)
