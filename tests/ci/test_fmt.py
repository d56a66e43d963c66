"""`steerc fmt`: idempotent, never changes the AST, --check/--diff, diagnostics, safety net."""

from __future__ import annotations

import io
import shutil
import sys

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from steerc.diagnostics import DiagnosticError
from steerc.grammar import format_spec, parse, parse_file, strip_spans
import steerc.commands.fmt as fmt_cmd
from steerc.commands.fmt import format_text, same_meaning

from .conftest import REPO, repo_steer_files

MESSY = 'model   "m"   # the base\nsae r="s";suppress r[1]\n\n\n\nsteer r["x"] by 4.0\nwhen r[2] > .5 {scale r[3] by 1E1}\n'


def parseable() -> list:
    out = []
    for p in repo_steer_files():
        try:
            out.append((p, parse_file(p)))
        except DiagnosticError:
            pass
    return out


def test_every_parseable_steer_file_in_the_repo_formats_idempotently_and_keeps_its_ast():
    files = parseable()
    assert len(files) >= 30, [str(p) for p, _ in files]  # goldens, fixtures, examples: not vacuous
    for path, spec in files:
        out = format_spec(spec)
        again = parse(out, str(path))
        assert strip_spans(again.statements) == strip_spans(spec.statements), path
        assert [c for _, c in again.comments] == [c for _, c in spec.comments], path
        assert format_spec(again) == out, path
        assert format_text(out, str(path)) == out  # fmt on formatted text changes nothing


def test_fmt_cli_twice_changes_nothing(tmp_path, run_cli):
    files = [p for p, _ in parseable()]
    for i, p in enumerate(files):
        shutil.copy(p, tmp_path / f"{i:03d}_{p.name}")
    rc, _, _ = run_cli(["fmt", tmp_path])
    assert rc == 0
    first = {p.name: p.read_text() for p in tmp_path.iterdir()}
    rc, _, err = run_cli(["fmt", "--check", tmp_path])
    assert rc == 0 and "0 files would be reformatted" in err
    rc, _, _ = run_cli(["fmt", tmp_path])
    assert {p.name: p.read_text() for p in tmp_path.iterdir()} == first


def test_check_lists_files_that_would_change_and_writes_nothing(tmp_path, run_cli):
    messy, tidy = tmp_path / "messy.steer", tmp_path / "tidy.steer"
    messy.write_text(MESSY)
    tidy.write_text(format_text(MESSY))
    rc, out, err = run_cli(["fmt", "--check", "messy.steer", "tidy.steer"], cwd=tmp_path)
    assert rc == 1
    assert "would reformat messy.steer" in err and "tidy.steer" not in err
    assert "1 file would be reformatted, 1 unchanged" in err
    assert messy.read_text() == MESSY and out == ""


def test_diff_prints_a_unified_diff(tmp_path, run_cli):
    (tmp_path / "messy.steer").write_text(MESSY)
    rc, out, _ = run_cli(["fmt", "--check", "--diff", "messy.steer"], cwd=tmp_path)
    assert rc == 1
    assert out.startswith("--- messy.steer (original)\n+++ messy.steer (formatted)\n@@")
    assert '-sae r="s";suppress r[1]\n' in out and '+sae r = "s"\n+suppress r[1]\n' in out
    assert (tmp_path / "messy.steer").read_text() == MESSY


def test_fmt_writes_the_canonical_layout(tmp_path, run_cli):
    (tmp_path / "messy.steer").write_text(MESSY)
    rc, _, err = run_cli(["fmt", "messy.steer"], cwd=tmp_path)
    assert rc == 0 and "reformatted messy.steer" in err
    assert (tmp_path / "messy.steer").read_text() == (
        'model "m"  # the base\nsae r = "s"\nsuppress r[1]\n\nsteer r["x"] by 4\n'
        "when r[2] > 0.5 {\n  scale r[3] by 10\n}\n")


def test_parse_errors_are_diagnostics_with_exit_1(tmp_path, run_cli):
    (tmp_path / "bad.steer").write_text("model m\n")
    (tmp_path / "ok.steer").write_text(MESSY)
    rc, out, err = run_cli(["fmt", "bad.steer", "ok.steer", "missing.steer"], cwd=tmp_path)
    assert rc == 1
    assert "bad.steer:1:7: error[E024]" in err and "error[E019]: cannot read spec 'missing.steer'" in err
    assert "2 errors, 0 warnings" in err
    assert (tmp_path / "bad.steer").read_text() == "model m\n"
    assert (tmp_path / "ok.steer").read_text() == format_text(MESSY)  # the others still formatted
    rc, out, _ = run_cli(["fmt", "--check", "bad.steer", "--format", "github"], cwd=tmp_path)
    assert rc == 1 and out.startswith("::error file=bad.steer,line=1,col=7,title=E024::")


def test_stdin_to_stdout(run_cli, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO(MESSY))
    rc, out, _ = run_cli(["fmt", "-"])
    assert rc == 0 and out == format_text(MESSY)


def test_no_files_is_a_usage_error(run_cli):
    rc, _, _ = run_cli(["fmt"])
    assert rc == 2


def test_a_formatter_that_changes_meaning_is_caught_and_nothing_is_written(tmp_path, run_cli, monkeypatch):
    (tmp_path / "a.steer").write_text(MESSY)
    drop_last = lambda spec: format_spec(spec).rsplit("when", 1)[0]  # noqa: E731
    monkeypatch.setattr(fmt_cmd, "format_spec", drop_last)
    rc, _, err = run_cli(["fmt", "a.steer"], cwd=tmp_path)
    assert rc == 1 and "error[E099]" in err and "meaning" in err
    assert (tmp_path / "a.steer").read_text() == MESSY


def test_same_meaning_sees_comments_and_statements():
    a = parse('model "m"  # x\n')
    assert same_meaning(a, parse('model   "m" # x'))
    assert not same_meaning(a, parse('model "m"  # y\n'))
    assert not same_meaning(a, parse('model "n"  # x\n'))


# --- generated specs: messy spacing, separators, comments, number spellings --------------

ALIASES = st.sampled_from(["res2", "mlp1", "_a", "R9"])
STRINGS = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=8).map(
    lambda s: '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"')
NUMBERS = st.sampled_from(["4", "-0.5", ".25", "+2", "-1.5e-3", "1E6", "3.0", "0", "007"])
INTS = st.integers(0, 99).map(str)
SP = st.sampled_from([" ", "  ", "\t", " \t "])


@st.composite
def targets(draw):
    a = draw(ALIASES)
    kind = draw(st.sampled_from(["index", "label", "search", "tagged", "matching"]))
    if kind == "index":
        return f"{a}[{draw(INTS)}]"
    if kind == "label":
        return f"{a}[{draw(STRINGS)}]"
    if kind == "search":
        return f"{a}[search {draw(STRINGS)}]"
    tail = draw(st.sampled_from(["", f" in {a}", f" limit {draw(INTS)}", f" in {a} limit 3"]))
    return f"features {kind} {draw(STRINGS)}{tail}"


@st.composite
def rules(draw):
    t, n, sp = draw(targets()), draw(NUMBERS), draw(SP)
    scope = draw(st.sampled_from(["", " on prompt", " on generated", " on all"]))
    layer = draw(st.sampled_from(["", " at layer 1", " at layers 0..2"]))
    return draw(st.sampled_from([
        f"suppress{sp}{t}{scope}", f"ablate {t}{draw(st.sampled_from(['', ' everywhere', layer]))}{scope}",
        f"steer {t} by{sp}{n}{layer}{scope}", f"amplify {t} by {n}", f"clamp {t} to {n}{scope}",
        f"clamp {t} to {n}x max", f"scale {t}{sp}by {n}{scope}{layer}"]))


@st.composite
def statements(draw):
    kind = draw(st.sampled_from(["decl", "rule", "rule", "when", "enforce", "expect"]))
    if kind == "decl":
        return draw(st.sampled_from([f"model {draw(STRINGS)}", f"sae {draw(ALIASES)}={draw(STRINGS)}",
                                     f"catalogue {draw(STRINGS)}", f"use {draw(STRINGS)}"]))
    if kind == "when":
        body = draw(st.lists(rules(), min_size=1, max_size=3))
        sep = draw(st.sampled_from(["; ", "\n  ", "\n\n"]))
        if sep != "; ":  # comments inside the block: trailing and on their own line
            body = [b + draw(st.sampled_from(["", "  # k", "\n  # own"])) for b in body]
        a = draw(ALIASES)
        return f"when {a}[{draw(INTS)}] >{draw(SP)}{draw(NUMBERS)} {{{sep.lstrip(';') if sep != '; ' else ' '}{sep.join(body)}\n}}"
    if kind == "enforce":
        return draw(st.sampled_from(["enforce json format", f"enforce json schema {draw(STRINGS)} strength {draw(NUMBERS)}"]))
    if kind == "expect":
        p = draw(STRINGS)
        return draw(st.sampled_from([f"expect {p} is json", f"expect {p} mentions {draw(STRINGS)}",
                                     f"expect {p} not mentions {draw(STRINGS)}", f"expect {p} matches schema {draw(STRINGS)}"]))
    return draw(rules())


@st.composite
def spec_texts(draw):
    out = []
    for s in draw(st.lists(statements(), max_size=8)):
        if draw(st.booleans()):
            out.append("# " + draw(st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=6)))
        comment = draw(st.sampled_from(["", "  # note", "#x"]))
        out.append(draw(st.sampled_from(["", " ", "\t"])) + s + comment)
        out.append(draw(st.sampled_from(["", "", "\n", "\n\n\n"])))
    return "\n".join(out)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec_texts())
def test_generated_specs_format_idempotently_without_changing_the_ast(text):
    try:
        spec = parse(text)
    except DiagnosticError:  # e.g. a generated `when` body the language rejects
        return
    out = format_text(text)  # raises E099 if the AST or comments change or it is unstable
    again = parse(out)
    assert strip_spans(again.statements) == strip_spans(spec.statements)
    assert format_text(out) == out
