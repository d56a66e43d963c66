"""Per-rule blame on a tiny model: a two-rule spec where one rule is harmless and the other
breaks the KL bound must name the second (and not the first, whichever order they are in),
with each rule's figure left out and alone; the JSON shape; --no-blame; the one-rule case."""

from __future__ import annotations

import json
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from steerc.cli import main
from steerc.verify import Options, verify_checkpoint

HEAD = 'model "model"\nsae res = "sae"\ncatalogue "catalogue.json"\n'
HARMLESS = 'suppress res["alpha topic"]\n'
HEAVY = 'steer res["json key"] by 40\n'
EXPECTS = ('baseline prompt "Answer only in JSON.\\n"\n'
           'expect kl below 0.05\n'
           'expect "ab" not mentions "qqqq"\n')
SPECS = {
    "heavy_second": HEAD + HARMLESS + HEAVY + EXPECTS,   # rules at lines 4 and 5
    "heavy_first": HEAD + HEAVY + HARMLESS + EXPECTS,
    "one_rule": HEAD + HEAVY + EXPECTS,
    "guarded": HEAD + HEAVY + 'enforce json format\nexpect "ab" is json\n',
    "three_rules": HEAD + HARMLESS + HEAVY + 'when res["greeting"] > 0.5 { scale res["city name"] by 2 }\n'
                   + EXPECTS,
}


@pytest.fixture(scope="module")
def built(tiny):
    from steerc.compiler.build_checkpoint import compile_program
    from steerc.compiler.load import load_program

    out, cwd = {}, os.getcwd()
    os.chdir(tiny)
    try:
        for name, text in SPECS.items():
            (tiny / f"b_{name}.steer").write_text(text)
            compile_program(load_program(f"b_{name}.steer"), f"out_b_{name}", force=True)
            out[name] = tiny / f"out_b_{name}"
    finally:
        os.chdir(cwd)
    return out


@pytest.fixture(scope="module")
def report(built, tiny):
    """verify_checkpoint(name, **options), each run once per module."""
    done = {}

    def get(name, **kw):
        key = (name, tuple(sorted(kw.items())))
        if key not in done:
            done[key] = verify_checkpoint(built[name], _opts(tiny, **kw))
        return done[key]

    return get


def _opts(tiny, **kw):
    return Options(**{"neutral": str(tiny / "neutral.txt"), "max_windows": 2, "max_new_tokens": 4, **kw})


def _kl_blame(report):
    [i] = [i for i, e in enumerate(report.expects) if e.expect.kind == "kl_below"]
    return report.expects[i], report.blame_of(i)


@pytest.mark.parametrize("name, heavy_line, harmless_line", [("heavy_second", 5, 4), ("heavy_first", 4, 5)])
def test_blame_names_the_rule_that_breaks_kl(report, name, heavy_line, harmless_line):
    r = report(name)
    kl, b = _kl_blame(r)
    assert not kl.passed and b is not None and b.skipped == 0
    rows = {x.span.line: x for x in b.rules}
    assert sorted(rows) == [4, 5]          # the baseline prompt is not a rule
    heavy, harmless = rows[heavy_line], rows[harmless_line]
    assert b.top == heavy.span
    # left out: the heavy rule's absence passes the bound; the harmless one's changes nothing
    assert heavy.without.passed and heavy.flips and heavy.without.value < 0.05
    assert not harmless.without.passed and not harmless.flips
    assert harmless.without.value == pytest.approx(kl.steered.value, rel=0.02)
    # alone: the heavy rule carries the whole KL, the harmless one next to none
    assert heavy.alone.value == pytest.approx(kl.steered.value, rel=0.02)
    assert harmless.alone.value < 0.05
    assert heavy.verdict.startswith("this rule moved KL from ") and "makes the expectation pass" in heavy.verdict
    assert not harmless.moved and heavy.moved
    assert harmless.verdict == "no effect" or harmless.verdict.startswith("leaving it out changes nothing")
    # passing expectations are not blamed by default
    [single] = [i for i, e in enumerate(r.expects) if e.expect.kind == "not_mentions"]
    assert r.expects[single].passed and r.blame_of(single) is None


def test_two_rule_variants_are_measured_once(report):
    """The two-rule variants are each other's complement: 'without A' is 'B alone'."""
    r = report("heavy_second")
    _, b = _kl_blame(r)
    a, c = b.rules
    assert a.without.value == pytest.approx(c.alone.value, abs=1e-9)
    assert c.without.value == pytest.approx(a.alone.value, abs=1e-9)


def test_blame_all_covers_passing_expectations(report):
    r = report("heavy_second", blame="all")
    assert all(b is not None for b in r.blame)
    [i] = [i for i, e in enumerate(r.expects) if e.expect.kind == "not_mentions"]
    b = r.blame_of(i)
    assert [x.span.line for x in b.rules] == [4, 5] and all(x.without.passed for x in b.rules)
    assert all(x.without.value is None and "qqqq" in x.without.detail for x in b.rules)


def test_one_rule_is_named_without_re_measuring(report):
    r = report("one_rule")
    _, b = _kl_blame(r)
    [row] = b.rules
    assert row.span.line == 4 and row.without is None and row.alone is None and b.top == row.span
    assert "one rule" in b.note


def test_the_enforce_rule_owns_the_json_guard(report):
    """Left out, `enforce json` takes its decode-time guard with it: the JSON check then
    fails; the steer rule, left out, changes nothing the guard does not fix."""
    r = report("guarded", blame="all", max_new_tokens=8)
    [e] = r.expects
    assert e.passed and r.guard
    steer, enforce = r.blame_of(0).rules
    assert enforce.rule.startswith("enforce json") and steer.rule.startswith("steer")
    assert enforce.flips and not enforce.without.passed and enforce.alone.passed
    assert enforce.verdict == "removing it makes the expectation fail"
    assert not steer.flips and steer.without.passed and not steer.alone.passed
    assert r.blame_of(0).top == enforce.span


def test_cap_counts_the_rules_not_blamed(report):
    r = report("three_rules", blame_rules=2)
    _, b = _kl_blame(r)
    assert [x.span.line for x in b.rules] == [4, 5] and b.skipped == 1 and b.top.line == 5
    r3 = report("three_rules")
    _, b3 = _kl_blame(r3)
    assert [x.span.line for x in b3.rules] == [4, 5, 6] and b3.skipped == 0   # a `when` rule counts


def test_text_json_and_card(built, tiny, tmp_path, capsys, monkeypatch):
    from steerc.compiler.modelcard import VERIFY_END, VERIFY_START

    monkeypatch.chdir(tiny)
    out = tmp_path / "r.json"
    rc = main(["verify", str(built["heavy_second"]), "--neutral", "neutral.txt", "--max-windows", "2",
               "--max-new-tokens", "4", "--json", str(out), "--card"])
    text = capsys.readouterr().out
    assert rc == 1
    assert "blame (the expectation re-measured with each rule left out, and alone):" in text
    assert "* b_heavy_second.steer:5:1  steer res[\"json key\"] by 40" in text
    assert ('= hint: blame: `steer res["json key"] by 40` at b_heavy_second.steer:5:1: this rule moved KL '
            "from ") in text   # the E550 names the rule (CI annotations)
    doc = json.loads(out.read_text())
    assert doc["version"] == 4
    kl = next(e for e in doc["expects"] if e["kind"] == "kl_below")
    single = next(e for e in doc["expects"] if e["kind"] == "not_mentions")
    assert single["blame"] is None
    b = kl["blame"]
    assert set(b) == {"rules", "skipped", "top", "note"} and b["top"] == "b_heavy_second.steer:5:1"
    assert b["skipped"] == 0 and [x["where"] for x in b["rules"]] == ["b_heavy_second.steer:4:1",
                                                                        "b_heavy_second.steer:5:1"]
    for x in b["rules"]:
        assert set(x) == {"where", "rule", "interventions", "without", "alone", "effect", "moved", "flips",
                          "verdict"}
        assert set(x["without"]) == set(x["alone"]) == {"value", "passed", "detail"}
        assert isinstance(x["effect"], float) and x["interventions"] == 1
    assert b["rules"][1]["flips"] is True and b["rules"][0]["flips"] is False
    # the model card: the KL row (no base figure) and the rule that moved it
    card = (built["heavy_second"] / "README.md").read_text(encoding="utf-8")
    section = card.split(VERIFY_START, 1)[1].split(VERIFY_END, 1)[0]
    assert "| ` expect kl below 0.05 ` | FAIL | n/a |" in section
    [line] = [x for x in section.splitlines() if x.startswith("- ")]
    assert line.startswith('- ` expect kl below 0.05 `: ` steer res["json key"] by 40 ` (../b_heavy_second.steer')
    assert ":5:1): this rule moved KL from " in line and "removing it makes the expectation pass" in line
    assert str(tiny) not in section


def test_no_blame(built, tiny, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tiny)
    out = tmp_path / "r.json"
    rc = main(["verify", str(built["heavy_second"]), "--neutral", "neutral.txt", "--max-windows", "2",
               "--max-new-tokens", "4", "--no-blame", "--json", str(out)])
    assert rc == 1 and "blame" not in capsys.readouterr().out
    assert all(e["blame"] is None for e in json.loads(out.read_text())["expects"])


def test_bad_blame_options_are_e570(built):
    from steerc.diagnostics import DiagnosticError
    from steerc.verify.blame import check_options

    for mode, n in (("some", 8), ("all", 0), ("failing", True)):
        with pytest.raises(DiagnosticError) as e:
            check_options(mode, n)
        assert e.value.diagnostics[0].code == "E570"
    rc = main(["verify", str(built["heavy_second"]), "--blame", "--no-blame"])
    assert rc == 2



@settings(max_examples=200, deadline=None)
@given(st.floats(0, 5), st.floats(0, 5), st.floats(0, 5), st.floats(0.001, 5))
def test_kl_verdict_says_what_the_figures_say(full, without, alone, bound):
    """Property: the verdict follows the figures, whatever they are: a flip is named as
    one (and only then), a move beyond noise is reported with both figures in order."""
    from steerc.compiler.ir import ExpectCheck
    from steerc.diagnostics import Span
    from steerc.verify.blame import Rule, _row, _top
    from steerc.verify.expectations import Figure, MeasuredResult

    fig = lambda v: Figure(v, v < bound, "")  # noqa: E731
    res = MeasuredResult(ExpectCheck("", "kl_below", None, bound=bound), "t", 10, "nats/token",
                         fig(full), None, None)
    row = _row(Rule(Span("x.steer", 4, 1), "steer r[1] by 4", ()), res, (fig(without), None), (fig(alone), None))
    assert row.flips == ((without < bound) != (full < bound))
    assert ("makes the expectation pass" in row.verdict) == (row.flips and full >= bound)
    assert ("makes the expectation fail" in row.verdict) == (row.flips and full < bound)
    if abs(full - without) > max(1e-4, 0.01 * max(full, without)):
        assert row.moved and row.verdict.startswith(f"this rule moved KL from {without:.4f} to {full:.4f}")
    elif not row.flips:
        assert not row.moved and row.verdict.split(";")[0] in ("no effect", "leaving it out changes nothing")
    assert (_top([row]) == row.span) == row.moved
