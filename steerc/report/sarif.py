"""`--format sarif`: a SARIF 2.1.0 log (GitHub code scanning reads it via upload-sarif).

One run; `tool.driver.rules` holds one rule per diagnostic code that occurs (sorted), and
each result points at its rule by `ruleId` and `ruleIndex`. Locations are relative URIs
against `%SRCROOT%` (the checkout), regions in Unicode code points (`columnKind`), with
the exclusive `endColumn` SARIF defines. A diagnostic without a file gets the spec named
on the command line (`fallback_file`) as its location when one is given: code scanning
drops results that have no location.
"""

from __future__ import annotations

import json
from typing import Sequence

from steerc import __version__
from steerc.diagnostics import Diagnostic
from steerc.report.records import Record, area, rel_path, to_records

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA_URI = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
LEVELS = {"error": "error", "warning": "warning"}


def _rule(code: str, severity: str) -> dict:
    kind = area(code)
    return {
        "id": code,
        "name": f"steerc{kind.title().replace(' ', '')}{code}",
        "shortDescription": {"text": f"steerc {kind} {severity} {code}"},
        "defaultConfiguration": {"level": LEVELS[severity]},
        "properties": {"tags": ["steerc", kind]},
    }


def _location(r: Record, fallback_file: str | None) -> list[dict]:
    file = r.file if r.file is not None else (rel_path(fallback_file) if fallback_file else None)
    if file is None:
        return []
    phys: dict = {"artifactLocation": {"uri": _uri(file), "uriBaseId": "%SRCROOT%"}}
    if r.line is not None:
        phys["region"] = {"startLine": r.line, "startColumn": r.col, "endColumn": r.end_col}
    return [{"physicalLocation": phys}]


def _uri(path: str) -> str:
    """A relative URI reference for a `/`-separated path (percent-encodes what URIs forbid)."""
    from urllib.parse import quote

    return quote(path, safe="/.-_~!$&'()*+,;=@")


def sarif_log(diags: Sequence[Diagnostic], cwd: str | None = None, fallback_file: str | None = None) -> dict:
    """The SARIF log object for `diags`."""
    records = to_records(diags, cwd)
    codes = sorted({(r.code, r.severity) for r in records})
    index = {code: i for i, (code, _) in enumerate(codes)}
    results = []
    for r in records:
        text = r.message + (f"\nhint: {r.hint}" if r.hint else "")
        res = {"ruleId": r.code, "ruleIndex": index[r.code], "level": LEVELS[r.severity],
               "message": {"text": text}}
        locs = _location(r, fallback_file)
        if locs:
            res["locations"] = locs
        results.append(res)
    driver = {"name": "steerc", "version": __version__, "semanticVersion": __version__,
              "rules": [_rule(code, sev) for code, sev in codes]}
    return {
        "$schema": SARIF_SCHEMA_URI,
        "version": SARIF_VERSION,
        "runs": [{"tool": {"driver": driver}, "columnKind": "unicodeCodePoints", "results": results}],
    }


def render_sarif(diags: Sequence[Diagnostic], cwd: str | None = None, fallback_file: str | None = None) -> str:
    """`sarif_log` as indented JSON with a trailing newline."""
    return json.dumps(sarif_log(diags, cwd, fallback_file), indent=2, ensure_ascii=False) + "\n"
