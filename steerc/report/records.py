"""One diagnostic as a flat, format-neutral record: what every machine format is built from.

Columns are 1-based and count Unicode code points (the parser's columns); `end_col` is
exclusive, one past the last character (SARIF's `endColumn` convention), so a span of
`length` n starting at `col` has `end_col = col + n`. Paths are made relative to the
working directory when they lie under it and always use `/`, so reports from CI name
files the way the repository does.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Sequence

from steerc.diagnostics import Diagnostic

# Code ranges per area (see steerc/diagnostics.py and docs/): a rule's short description.
AREAS = (
    (0, 99, "syntax"),
    (100, 199, "catalogue"),
    (200, 299, "resolve"),
    (300, 399, "SAE file"),
    (400, 499, "lowering"),
    (500, 599, "verify"),
    (600, 699, "checkpoint"),
    (700, 719, "command line"),
)


@dataclass(frozen=True)
class Record:
    """A diagnostic with its location resolved; None where the diagnostic has no such part."""

    code: str
    severity: str  # "error" | "warning"
    message: str
    file: str | None
    line: int | None
    col: int | None
    end_col: int | None
    hint: str | None


def area(code: str) -> str:
    """The area a code belongs to ("resolve" for E201), or "other" for an unknown range."""
    try:
        n = int(code[1:])
    except ValueError:
        return "other"
    return next((name for lo, hi, name in AREAS if lo <= n <= hi), "other")


def rel_path(file: str, cwd: str | None = None) -> str:
    """`file` relative to `cwd` (default: the working directory) when inside it, with `/`."""
    p = Path(file)
    if p.is_absolute():
        base = Path(os.path.realpath(cwd or os.getcwd()))
        try:  # realpath, not resolve(): a symlink loop or a NUL in a reported path is no error
            p = Path(os.path.realpath(p)).relative_to(base)
        except (ValueError, OSError):
            pass
    return PurePath(p).as_posix()


def to_record(d: Diagnostic, cwd: str | None = None) -> Record:
    """Flatten `d`; a span with line 0 names a whole file (no line/column)."""
    s = d.span
    if s is None or s.file == "<none>":
        return Record(d.code, d.severity, d.message, None, None, None, None, d.hint)
    file = rel_path(s.file, cwd)
    if s.line <= 0:
        return Record(d.code, d.severity, d.message, file, None, None, None, d.hint)
    col = max(1, s.col)
    return Record(d.code, d.severity, d.message, file, s.line, col, col + max(1, s.length), d.hint)


def to_records(diags: Sequence[Diagnostic], cwd: str | None = None) -> list[Record]:
    """Records in the order the diagnostics were reported."""
    return [to_record(d, cwd) for d in diags]


def counts(records: Sequence[Record]) -> dict[str, int]:
    """{"errors": n, "warnings": m}."""
    n_err = sum(r.severity == "error" for r in records)
    return {"errors": n_err, "warnings": len(records) - n_err}
