"""Diagnostics: the one error type every stage reports through.

A stage collects `Diagnostic`s instead of raising on the first problem; when it cannot
go on it raises `DiagnosticError` carrying all of them. The CLI renders them and exits 1.
Rendering is rustc-like::

    specs/x.steer:3:10: error[E201]: unknown SAE alias 'res3'
      3 | suppress res3["email"]
        |          ^^^^
      = hint: did you mean 'res2'?
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field
from typing import Iterable, Sequence


@dataclass(frozen=True)
class Span:
    """A source position: 1-based line and column, `length` characters long (>= 1)."""

    file: str
    line: int
    col: int
    length: int = 1

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


@dataclass(frozen=True)
class Diagnostic:
    """One problem. `code` is stable (E### error, W### warning) and documented in docs/."""

    code: str
    message: str
    span: Span | None = None
    hint: str | None = None

    @property
    def is_error(self) -> bool:
        return self.code.startswith("E")

    @property
    def severity(self) -> str:
        return "error" if self.is_error else "warning"


class DiagnosticError(Exception):
    """Raised when a stage cannot continue; carries every diagnostic collected so far."""

    def __init__(self, diagnostics: Sequence[Diagnostic]):
        self.diagnostics = list(diagnostics)
        super().__init__("\n".join(f"{d.code}: {d.message}" for d in self.diagnostics))


@dataclass
class Collector:
    """Accumulates diagnostics for one stage; `check()` raises if any is an error."""

    diagnostics: list[Diagnostic] = field(default_factory=list)

    def error(self, code: str, message: str, span: Span | None = None, hint: str | None = None) -> None:
        self.diagnostics.append(Diagnostic(code, message, span, hint))

    warn = error  # the code's first letter (E/W) decides the severity

    @property
    def has_errors(self) -> bool:
        return any(d.is_error for d in self.diagnostics)

    def check(self) -> None:
        if self.has_errors:
            raise DiagnosticError(self.diagnostics)


def did_you_mean(word: str, candidates: Iterable[str], n: int = 1) -> str | None:
    """A "did you mean 'x'?" hint from difflib, or None when nothing is close."""
    close = difflib.get_close_matches(word, list(candidates), n=n, cutoff=0.6)
    if not close:
        return None
    return "did you mean " + " or ".join(f"'{c}'" for c in close) + "?"


def printable(text: str, keep: str = "") -> str:
    """`text` safe to show on a terminal or in a CI log: every character Python does not
    call printable (controls such as ESC, bidi overrides such as U+202E, zero-width and
    unusual spaces, lone surrogates from undecodable file names) becomes its escape
    (`\\x1b`, `\\u202e`), except those in `keep` (e.g. "\\n" for multi-line text).
    Only human-readable output goes through this; JSON outputs keep the exact strings."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or c in keep else _escape(c) for c in text)


def _escape(c: str) -> str:
    return "\\0" if c == "\0" else c.encode("unicode_escape", "backslashreplace").decode("ascii")


# Source lines longer than this are shown as a window around the column (a 200 KB
# minified line would otherwise be echoed whole, once per diagnostic).
SOURCE_WINDOW = 120


def excerpt(line: str, col: int, length: int) -> tuple[str, int, int]:
    """(shown text, 1-based caret column, caret length) for the source line of a diagnostic:
    at most SOURCE_WINDOW characters around `col` (cut ends marked `...`), escaped by
    `printable`, the caret moved to where column `col` ends up."""
    line = line.replace("\t", " ")
    start = min(max(col - 1, 0), len(line))
    lo, hi = 0, len(line)
    if len(line) > SOURCE_WINDOW:
        lo = max(0, min(start - SOURCE_WINDOW // 3, len(line) - SOURCE_WINDOW))
        hi = lo + SOURCE_WINDOW
    end = min(start + max(length, 1), hi)
    head = ("..." if lo > 0 else "") + printable(line[lo:start])
    marked = printable(line[start:end])
    shown = head + marked + printable(line[end:hi]) + ("..." if hi < len(line) else "")
    return shown, len(head) + 1, max(1, len(marked))


# Texts of the files read as specs in this process (parse_file registers them), so the
# renderer shows the bytes that were parsed and never has to open a file by its span.
_SPEC_SOURCES: dict[str, str] = {}
_SPEC_SOURCES_MAX = 4096


def register_spec_source(file: str, text: str) -> None:
    """Remember `text` as the spec read from `file` (as spans name it): a file that parsed
    as a spec, whose lines diagnostics may show."""
    if len(_SPEC_SOURCES) >= _SPEC_SOURCES_MAX:
        _SPEC_SOURCES.pop(next(iter(_SPEC_SOURCES)))
    _SPEC_SOURCES[file] = text


def is_spec_file(file: str) -> bool:
    """Whether diagnostics may quote `file`'s lines: a file named `*.steer` once symlinks are
    resolved. Anything else a spec names (`use "/etc/shadow"`, a symlink `x.steer ->
    ~/.netrc`, a catalogue, a schema) is never echoed into a log: its diagnostics give the
    position only (SECURITY.md)."""
    try:
        return os.path.splitext(os.path.realpath(file))[1] == ".steer"
    except (OSError, ValueError, RuntimeError):
        return False


def _source_line(span: Span, sources: dict[str, str] | None) -> str | None:
    text = (sources or {}).get(span.file) or _SPEC_SOURCES.get(span.file)
    if text is None:
        if not is_spec_file(span.file):
            return None  # never echo a file that was not read as a spec
        from steerc.files import read  # steerc.files imports this module

        try:
            text = read.read_bytes(span.file, read.SPEC).decode("utf-8", errors="replace")
        except DiagnosticError:
            return None
    lines = text.splitlines()
    if 1 <= span.line <= len(lines):
        return lines[span.line - 1]
    return None


def render(diag: Diagnostic, sources: dict[str, str] | None = None) -> str:
    """Render one diagnostic with its source line and caret (when the source is readable)."""
    where = f"{printable(str(diag.span))}: " if diag.span and diag.span.line > 0 else ""
    out = [f"{where}{diag.severity}[{diag.code}]: {printable(diag.message)}"]
    if diag.span and diag.span.line > 0:
        line = _source_line(diag.span, sources)
        if line is not None:
            gutter = str(diag.span.line)
            pad = " " * len(gutter)
            shown, caret_col, caret_len = excerpt(line, diag.span.col, diag.span.length)
            out.append(f"{gutter} | {shown}")
            out.append(f"{pad} | {' ' * (caret_col - 1)}{'^' * caret_len}")
    if diag.hint:
        out.append(f"  = hint: {printable(diag.hint)}")
    return "\n".join(out)


def render_all(diags: Sequence[Diagnostic], sources: dict[str, str] | None = None) -> str:
    """Render every diagnostic, then a one-line summary."""
    body = "\n".join(render(d, sources) for d in diags)
    n_err = sum(d.is_error for d in diags)
    n_warn = len(diags) - n_err
    summary = f"{n_err} error{'s' * (n_err != 1)}, {n_warn} warning{'s' * (n_warn != 1)}"
    return f"{body}\n{summary}" if body else summary
