"""`--format sarif`: a SARIF 2.1.0 log (GitHub code scanning reads it via upload-sarif).

One run; `tool.driver.rules` holds one rule per diagnostic code that occurs (sorted), with
the texts the docs give for it (steerc/report/sarif_rules.py), and each result points at
its rule by `ruleId` and `ruleIndex`. Every location is a URI relative to `%SRCROOT%`
(steerc/report/srcroot.py says which directory that is; `run.originalUriBaseIds` gives it
as an absolute `file:` URI), regions in Unicode code points (`columnKind`), with the
exclusive `endColumn` SARIF defines. A diagnostic without a file gets the spec named on
the command line (`fallback_file`) as its location when one is given: code scanning drops
results that have no location.
"""

from __future__ import annotations

import json
from typing import Sequence

from steerc import __version__
from steerc.diagnostics import Diagnostic
from steerc.report.records import Record, to_records
from steerc.report.sarif_rules import LEVELS, rule
from steerc.report.srcroot import SrcRoot, find_root, relative_uri

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA_URI = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
SRCROOT = "%SRCROOT%"


def _location(r: Record, root: SrcRoot, cwd: str | None, fallback_file: str | None) -> list[dict]:
    file = r.file if r.file is not None else fallback_file
    if file is None:
        return []
    phys: dict = {"artifactLocation": {"uri": relative_uri(file, root, cwd), "uriBaseId": SRCROOT}}
    if r.line is not None:
        phys["region"] = {"startLine": r.line, "startColumn": r.col, "endColumn": r.end_col}
    return [{"physicalLocation": phys}]


def sarif_log(diags: Sequence[Diagnostic], cwd: str | None = None, fallback_file: str | None = None) -> dict:
    """The SARIF log object for `diags`."""
    records = to_records(diags, cwd)
    # One root per report, chosen by the spec on the command line (else the first file named).
    anchor = fallback_file or next((r.file for r in records if r.file is not None), None)
    root = find_root(anchor, cwd)
    codes = sorted({(r.code, r.severity) for r in records})
    index = {code: i for i, (code, _) in enumerate(codes)}
    results = []
    for r in records:
        text = r.message + (f"\nhint: {r.hint}" if r.hint else "")
        res = {"ruleId": r.code, "ruleIndex": index[r.code], "level": LEVELS[r.severity],
               "message": {"text": text}}
        locs = _location(r, root, cwd, fallback_file)
        if locs:
            res["locations"] = locs
        results.append(res)
    driver = {"name": "steerc", "version": __version__, "semanticVersion": __version__,
              "rules": [rule(code, sev) for code, sev in codes]}
    return {
        "$schema": SARIF_SCHEMA_URI,
        "version": SARIF_VERSION,
        "runs": [{"tool": {"driver": driver},
                  "originalUriBaseIds": {SRCROOT: {"uri": root.uri()}},
                  "columnKind": "unicodeCodePoints", "results": results}],
    }


def render_sarif(diags: Sequence[Diagnostic], cwd: str | None = None, fallback_file: str | None = None) -> str:
    """`sarif_log` as indented JSON with a trailing newline."""
    return json.dumps(sarif_log(diags, cwd, fallback_file), indent=2, ensure_ascii=False) + "\n"
