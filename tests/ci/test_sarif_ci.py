"""SARIF for code scanning: every URI relative to `%SRCROOT%` (also for specs outside the
working directory), and every rule with the texts GitHub requires, from the docs' tables."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from urllib.parse import unquote, urljoin

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from steerc.diagnostics import Diagnostic, Span
from steerc.report import sarif_log
from steerc.report.codes import documented_codes
from steerc.report.codes_docs import codes_in_cell, main as codes_main, parse_page, split_row
from steerc.report.sarif_rules import rule
from steerc.report.srcroot import find_root, relative_uri

from .conftest import REPO, git
from .test_formats import validate_sarif

BAD_SPEC = "sae res2 = 'saes/x'\n"  # E001 at 1:12
SOURCE_CODES = sorted({c for p in (REPO / "steerc").rglob("*.py")
                       for c in re.findall(r"\"([EW]\d{3})\"", p.read_text(encoding="utf-8"))})


def check_log(log: dict, files: dict[str, Path]) -> None:
    """Schema-valid; each result's URI is relative, based on %SRCROOT%, and resolves to its file."""
    validate_sarif(log)
    run = log["runs"][0]
    root = run["originalUriBaseIds"]["%SRCROOT%"]["uri"]
    assert root.startswith("file:///") and root.endswith("/")
    for res in run["results"]:
        art = res["locations"][0]["physicalLocation"]["artifactLocation"]
        assert art["uriBaseId"] == "%SRCROOT%"
        uri = art["uri"]
        assert not uri.startswith("/") and ":" not in uri.split("/")[0] and "\\" not in uri
        assert unquote(urljoin(root, uri)) == unquote(files[res["ruleId"]].resolve().as_uri())


def sarif_of(run_cli, spec, cwd) -> dict:
    rc, out, _ = run_cli(["check", spec, "--format", "sarif"], cwd=cwd)
    assert rc == 1
    return json.loads(out)


def test_spec_in_the_working_directory(run_cli, tmp_path):
    (tmp_path / "specs").mkdir()
    spec = tmp_path / "specs" / "bad spec.steer"
    spec.write_text(BAD_SPEC)
    log = sarif_of(run_cli, "specs/bad spec.steer", tmp_path)
    check_log(log, {"E001": spec})
    res = log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]
    assert res["artifactLocation"]["uri"] == "specs/bad%20spec.steer"
    assert res["region"] == {"startLine": 1, "startColumn": 12, "endColumn": 13}


def test_spec_outside_the_working_directory_without_git(run_cli, tmp_path):
    if any((p / ".git").exists() for p in tmp_path.resolve().parents):
        pytest.skip("the temporary directory lies inside a git repository")
    (tmp_path / "cwd").mkdir()
    (tmp_path / "elsewhere").mkdir()
    spec = tmp_path / "elsewhere" / "ü.steer"
    spec.write_text(BAD_SPEC)
    for arg in (spec, Path("..") / "elsewhere" / "ü.steer"):  # absolute and ../ paths alike
        log = sarif_of(run_cli, arg, tmp_path / "cwd")
        check_log(log, {"E001": spec})
        assert log["runs"][0]["results"][0]["locations"][0]["physicalLocation"][
            "artifactLocation"]["uri"] == "%C3%BC.steer"  # relative to the spec's directory


def test_spec_in_another_git_repository(run_cli, tmp_path):
    other = tmp_path / "other-repo"
    (other / "specs" / "deep").mkdir(parents=True)
    git(other, "init", "-q")
    spec = other / "specs" / "deep" / "a.steer"
    spec.write_text(BAD_SPEC)
    (tmp_path / "cwd").mkdir()
    log = sarif_of(run_cli, spec, tmp_path / "cwd")
    check_log(log, {"E001": spec})
    run = log["runs"][0]
    assert run["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "specs/deep/a.steer"
    assert run["originalUriBaseIds"]["%SRCROOT%"]["uri"] == other.resolve().as_uri() + "/"


def test_errors_without_spans_and_without_lines(tmp_path, monkeypatch):
    """A spanless error sits on the spec; a file-only one on its file; both validate."""
    (tmp_path / "cwd").mkdir()
    repo = tmp_path / "r"
    (repo / ".git").mkdir(parents=True)
    spec, used = repo / "s.steer", repo / "lib" / "u.steer"
    monkeypatch.chdir(tmp_path / "cwd")
    diags = [Diagnostic("E222", "resolution differs", None, "run --write-lock"),
             Diagnostic("E019", "cannot read", Span(str(used), 0, 0)),
             Diagnostic("W201", "far above max", Span(str(spec), 3, 2, 5))]
    log = sarif_log(diags, fallback_file=str(spec))
    check_log(log, {"E222": spec, "E019": used, "W201": spec})
    locs = [r["locations"][0]["physicalLocation"] for r in log["runs"][0]["results"]]
    assert ["region" in loc for loc in locs] == [False, False, True]
    assert [loc["artifactLocation"]["uri"] for loc in locs] == ["s.steer", "lib/u.steer", "s.steer"]


def test_root_choice(tmp_path):
    (tmp_path / "wt").mkdir()
    (tmp_path / "wt" / ".git").write_text("gitdir: /elsewhere\n")  # a worktree's .git is a file
    (tmp_path / "wt" / "x").mkdir()
    assert find_root("x/a.steer", str(tmp_path / "wt")).kind == "cwd"
    assert find_root(str(tmp_path / "wt" / "x" / "a.steer"), str(tmp_path)).kind == "cwd"
    r = find_root(str(tmp_path / "wt" / "x" / "a.steer"), str(tmp_path / "wt" / "x" / "sub"))
    assert (r.kind, r.path) == ("git", os.path.realpath(tmp_path / "wt"))
    assert find_root(None, str(tmp_path)).kind == "cwd"


NAMES = st.text(st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="/\\\x00"),
                min_size=1, max_size=12).filter(lambda s: s not in (".", ".."))


@settings(max_examples=200, deadline=None)
@given(parts=st.lists(NAMES, min_size=1, max_size=3), outside=st.booleans())
def test_uri_is_a_percent_encoded_relative_reference(tmp_path_factory, parts, outside):
    base = Path(os.path.realpath(tmp_path_factory.getbasetemp()))
    root = find_root("x.steer", str(base / "root"))
    target = (base / "elsewhere" if outside else base / "root").joinpath(*parts)
    uri = relative_uri(str(target), root, str(base / "root"))
    assert re.fullmatch(r"[A-Za-z0-9\-._~!$&'()*+,;=@/%]+", uri)  # RFC 3986 path characters only
    assert ":" not in uri.split("/")[0]
    assert unquote(uri) == os.path.relpath(target, base / "root").replace(os.sep, "/")
    assert unquote(urljoin(root.uri(), uri)) == unquote(target.as_uri())  # ";" may stay unencoded


# --- rules -----------------------------------------------------------------------------------


def test_shipped_codes_json_is_up_to_date_with_the_docs():
    """Regenerate with `python -m steerc.report.codes_docs` after editing a docs table of codes."""
    assert codes_main(["--check", "--docs", str(REPO / "docs")]) == 0


def test_every_code_row_in_the_docs_is_in_the_table():
    rows = {c for p in (REPO / "docs").glob("*.md") for line in p.read_text(encoding="utf-8").splitlines()
            if line.startswith("| ") for c in codes_in_cell(split_row(line)[0])}
    assert rows == set(documented_codes()) and len(rows) >= 150


def test_parser_cases():
    assert codes_in_cell("E120-E124") == ["E120", "E121", "E122", "E123", "E124"]
    assert codes_in_cell("E601 / E602 / E607") == ["E601", "E602", "E607"]
    assert codes_in_cell("`W100`") == ["W100"] and codes_in_cell("0") == [] and codes_in_cell("E1") == []
    assert split_row("| E1 | a `x|y` b \\| c | fix |") == ["E1", "a `x|y` b | c", "fix"]
    page = "\n".join([
        "# T", "## Errs (E1)", "", "| code | meaning | example message |", "|---|---|---|",
        "| E900 | bad | `x: y` |", "", "```", "| code | meaning |", "| E901 | in a fence |", "```",
        "## Errs (E1)", "| code | when |", "|--|--|", "| E902 | two |", ""])
    got = parse_page(page, "p.md")
    assert got == {"E900": {"summary": "bad", "example": "`x: y`", "page": "docs/p.md",
                            "section": "Errs (E1)", "anchor": "errs-e1"},
                   "E902": {"summary": "two", "page": "docs/p.md", "section": "Errs (E1)", "anchor": "errs-e1-1"}}


@pytest.mark.parametrize("url", [None, "https://example.org/steerc"])
def test_every_rule_has_what_code_scanning_requires(url):
    """Every code steerc can report, documented or not, gets a schema-valid, complete rule."""
    assert len(SOURCE_CODES) >= 100
    rules = [rule(c, "warning" if c[0] == "W" else "error", url or "") for c in SOURCE_CODES]
    for r in rules:
        for key in ("shortDescription", "fullDescription"):
            assert r[key]["text"].strip(), (r["id"], key)
        assert r["help"]["text"].strip() and r["help"]["markdown"].strip(), r["id"]
        assert len(r["shortDescription"]["text"]) <= 120
        if r["id"] in documented_codes():
            assert ("helpUri" in r) == bool(url)
            if url:
                page, anchor = r["helpUri"].removeprefix(url + "/blob/main/").split("#")
                assert (REPO / page).is_file() and anchor == documented_codes()[r["id"]]["anchor"]
    log = {"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "steerc", "rules": rules}}, "results": []}]}
    validate_sarif(log)


def test_documented_rule_texts_come_from_the_docs():
    r = rule("E201", "error", "")
    assert r["fullDescription"]["text"] == "unknown SAE alias in a feature reference (did-you-mean hint)"
    assert r["shortDescription"]["text"] == "unknown SAE alias in a feature reference"
    assert "Fix: declare it with sae NAME = \"path\" or fix the name" in r["help"]["text"]
    assert "`sae NAME = \"path\"`" in r["help"]["markdown"] and "docs/language.md" in r["help"]["markdown"]
