"""steerc.report: diagnostics as text, JSON, SARIF 2.1.0 or GitHub workflow commands.

Commands add `--format` with `add_format_argument(parser)`, report warnings with
`warn(args, diags)` and print their human summary to `human_stream(args)`; the CLI's
`main` reports a `DiagnosticError` through the same `reporter(args)` and closes it, so a
machine format writes exactly one document. `emit`/`render_report` are the one-shot form.
docs/ci.md documents the formats; specs/schemas/diagnostics.schema.json the JSON one.
"""

from steerc.report.formats import json_document, render_github, render_json, render_text
from steerc.report.records import Record, to_record, to_records
from steerc.report.reporter import (
    FORMATS, Reporter, add_format_argument, emit, human_stream, render_report, reporter, warn,
)
from steerc.report.sarif import sarif_log, render_sarif

__all__ = [
    "FORMATS", "Record", "Reporter", "add_format_argument", "emit", "human_stream", "json_document",
    "render_github", "render_json", "render_report", "render_sarif", "render_text", "reporter",
    "sarif_log", "to_record", "to_records", "warn",
]
