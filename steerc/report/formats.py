"""The text, json and github renderers (SARIF has its own file: steerc/report/sarif.py).

Each renderer is a pure function `(diagnostics, cwd) -> str` holding the whole report.
"""

from __future__ import annotations

import json
from typing import Sequence

from steerc import __version__
from steerc.diagnostics import Diagnostic, printable, render_all
from steerc.report.records import counts, to_records

JSON_SCHEMA_VERSION = 1  # bump on any change that is not a pure addition (specs/schemas/diagnostics.schema.json)


def render_text(diags: Sequence[Diagnostic], cwd: str | None = None) -> str:
    """Today's human rendering: source line, caret and hint per diagnostic, then a summary."""
    return render_all(diags) + "\n"


def json_document(diags: Sequence[Diagnostic], cwd: str | None = None) -> dict:
    """The `--format json` document (schema: specs/schemas/diagnostics.schema.json)."""
    records = to_records(diags, cwd)
    return {
        "version": JSON_SCHEMA_VERSION,
        "tool": {"name": "steerc", "version": __version__},
        "diagnostics": [{
            "code": r.code, "severity": r.severity, "message": r.message, "file": r.file,
            "line": r.line, "col": r.col, "end_col": r.end_col, "hint": r.hint,
        } for r in records],
        "summary": counts(records),
    }


def render_json(diags: Sequence[Diagnostic], cwd: str | None = None) -> str:
    """`json_document` as indented JSON with a trailing newline."""
    return json.dumps(json_document(diags, cwd), indent=2, ensure_ascii=False) + "\n"


def escape_data(s: str) -> str:
    """A workflow command's message: `%`, CR and LF are percent-encoded (GitHub's rules)."""
    return s.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(s: str) -> str:
    """A workflow command's property value: as `escape_data`, plus `:` and `,`."""
    return escape_data(s).replace(":", "%3A").replace(",", "%2C")


def render_github(diags: Sequence[Diagnostic], cwd: str | None = None) -> str:
    """GitHub Actions workflow commands, one `::error`/`::warning` line per diagnostic
    (the runner turns them into annotations on the pull request), then a plain summary."""
    records = to_records(diags, cwd)
    lines = []
    for r in records:
        props = []
        if r.file is not None:
            props.append(f"file={escape_property(r.file)}")
        if r.line is not None:
            props += [f"line={r.line}", f"col={r.col}"]
        props.append(f"title={escape_property(r.code)}")
        message = r.message + (f"\nhint: {r.hint}" if r.hint else "")
        # a CI log is a terminal too: no ESC or bidi override from an input reaches it
        # (CR and LF are safe: escape_data encodes them as the protocol requires)
        message = escape_data(printable(message, keep="\r\n"))
        lines.append(f"::{r.severity} {','.join(props)}::{message}")
    c = counts(records)
    lines.append(f"{c['errors']} error{'s' * (c['errors'] != 1)}, {c['warnings']} warning{'s' * (c['warnings'] != 1)}")
    return "\n".join(lines) + "\n"
