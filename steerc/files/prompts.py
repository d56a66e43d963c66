"""Prompt files of `expect at least N% of "f"`, `expect kl on "f"` and `expect X down ... on "f"`.

    pf = read_prompts(path, CHECK_KIND, span)      # PromptFile(path, prompts, sha256), or DiagnosticError

Two formats, by the file name:

  *.jsonl   one JSON value per line: an object with a string `text` (or `prompt`) field, or
            a bare JSON string; blank lines are skipped. Prompts may hold newlines.
  anything  one prompt per line, as written (a trailing `\\r` is dropped); blank lines are
  else      skipped.

Read through `steerc.files.read` (regular files only, size-limited, UTF-8), so a FIFO,
`/dev/zero` or a 2 GB file is a diagnostic, never a hang. `check` and `compile` read a
spec's prompt files (E036, at the string naming the file) and record their sha256 in the
lock and the manifest; `verify` reads them again and refuses one that changed (E551, E552).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from typing import Any

from steerc.diagnostics import Diagnostic, DiagnosticError, Span
from steerc.files import read

CHECK_KIND = read.Kind("prompt file", 64 * read.MiB, "E036", "E036",
                       "one prompt per line, or JSON lines with a \"text\" field (*.jsonl)")
VERIFY_KIND = read.Kind("prompt file", 64 * read.MiB, "E551", "E551",
                        "keep the prompt files where they were at compile time, or recompile")
TEXT_FIELDS = ("text", "prompt")


def is_jsonl(path: str | os.PathLike) -> bool:
    """JSON lines, by the file name (`.jsonl`, any case)."""
    return os.fspath(path).lower().endswith(".jsonl")


def parse_prompts(text: str, path: Any, kind: read.Kind, span: Span | None = None) -> tuple[str, ...]:
    """The prompts of a prompt file's text (see the module docstring); `kind.decode_code`
    for a JSON line that is not a string or an object with a string `text`, or no prompt."""
    prompts: list[str] = []
    for n, line in enumerate(text.split("\n"), 1):
        line = line.removesuffix("\r")
        if not line.strip():
            continue
        if not is_jsonl(path):
            prompts.append(line)
            continue
        try:
            value = json.loads(line)
        except (ValueError, RecursionError) as e:
            reason = e.msg if isinstance(e, json.JSONDecodeError) else type(e).__name__
            raise _bad(kind, path, n, f"not JSON ({reason})", span) from None
        if isinstance(value, dict):
            value = next((value[k] for k in TEXT_FIELDS if k in value), None)
        if not isinstance(value, str):
            raise _bad(kind, path, n, f"holds no prompt: want a JSON string or an object with a "
                       f"string \"{TEXT_FIELDS[0]}\" field", span)
        if value.strip():
            prompts.append(value)
    if not prompts:
        raise DiagnosticError([Diagnostic(kind.bad_content_code, f"{kind.what} '{path}' holds no "
                                          "prompts (every line is blank)", span, kind.hint)])
    return tuple(prompts)


def _bad(kind: read.Kind, path: Any, line: int, why: str, span: Span | None) -> DiagnosticError:
    return DiagnosticError([Diagnostic(kind.bad_content_code, f"{kind.what} '{path}' line {line} "
                                       f"{why}", span, kind.hint)])


@dataclass(frozen=True)
class PromptFile:
    """A prompt file as read: its path, prompts and the sha256 of the bytes they came from."""

    path: str
    prompts: tuple[str, ...]
    sha256: str


def read_prompts(path: str | os.PathLike, kind: read.Kind, span: Span | None = None) -> PromptFile:
    """The prompts of the prompt file `path` (a BOM is allowed), hashed from the same bytes
    (a file swapped between hashing and reading cannot go unnoticed)."""
    raw = read.read_bytes(path, kind, span)
    text = read.decode(raw, path, kind, span, "utf-8-sig")
    return PromptFile(os.fspath(path), parse_prompts(text, path, kind, span), hashlib.sha256(raw).hexdigest())
