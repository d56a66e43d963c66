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
from dataclasses import dataclass, field
from pathlib import Path
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


NO_SPAN = Span("<none>", 0, 0)


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
        return Path(file).resolve().suffix == ".steer"
    except (OSError, ValueError, RuntimeError):
        return False


def _source_line(span: Span, sources: dict[str, str] | None) -> str | None:
    text = (sources or {}).get(span.file) or _SPEC_SOURCES.get(span.file)
    if text is None:
        if not is_spec_file(span.file):
            return None  # never echo a file that was not read as a spec
        try:
            text = Path(span.file).read_text(encoding="utf-8", errors="replace")
        except OSError:
            return None
    lines = text.splitlines()
    if 1 <= span.line <= len(lines):
        return lines[span.line - 1]
    return None


def render(diag: Diagnostic, sources: dict[str, str] | None = None) -> str:
    """Render one diagnostic with its source line and caret (when the source is readable)."""
    where = f"{diag.span}: " if diag.span and diag.span.line > 0 else ""
    out = [f"{where}{diag.severity}[{diag.code}]: {diag.message}"]
    if diag.span and diag.span.line > 0:
        line = _source_line(diag.span, sources)
        if line is not None:
            gutter = str(diag.span.line)
            pad = " " * len(gutter)
            shown = line.replace("\t", " ").replace("\x00", "\\0")
            out.append(f"{gutter} | {shown}")
            caret_len = max(1, min(diag.span.length, max(1, len(shown) - diag.span.col + 1)))
            out.append(f"{pad} | {' ' * (diag.span.col - 1)}{'^' * caret_len}")
    if diag.hint:
        out.append(f"  = hint: {diag.hint}")
    return "\n".join(out)


def render_all(diags: Sequence[Diagnostic], sources: dict[str, str] | None = None) -> str:
    """Render every diagnostic, then a one-line summary."""
    body = "\n".join(render(d, sources) for d in diags)
    n_err = sum(d.is_error for d in diags)
    n_warn = len(diags) - n_err
    summary = f"{n_err} error{'s' * (n_err != 1)}, {n_warn} warning{'s' * (n_warn != 1)}"
    return f"{body}\n{summary}" if body else summary
