"""Feature verdicts: a targeted feature that moves against its rule fails `steerc verify`
(exit 1, the rule's span, JSON), `weak` stays a warning, feature-set rules are summarised.

The failing case is built from the math, not mocked: an SAE whose `greeting` decoder row
points along the encoder rows of `alpha topic` and the two `format:json` features. Every
`set`/`add` at a hook reads the incoming x (docs/semantics.md), so `suppress A` + `steer
greeting by 3` writes delta = 3 d_g - a_A d_A and A re-encodes to pre_A + 3 (w_A . d_g) - a_A:
it reads back exactly 1.5 wherever it fired, and pre_A + 1.5 where it did not.
"""

from __future__ import annotations

import json
import os

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file, save_file

from steerc.cli import main
from steerc.compiler.ir import FeatureId
from steerc.diagnostics import Span
from steerc.verify import Options, to_json, verify_checkpoint
from steerc.verify.measure import FeatureStats, RuleRef, Target
from steerc.verify.report import render_text
from steerc.verify.verdicts import ABS_TOL, MAX_FRACTION, REL_TOL, judge, reads_after, tolerance
from tests.verify.conftest import HOOK

HEAD = 'model "model"\nsae res = "sae_leak"\ncatalogue "catalogue.json"\n'
EXPECT = 'expect "ab" not mentions "qqqq"\n'
SPECS = {
    "rising": HEAD + 'suppress res["alpha topic"]\nsteer res["greeting"] by 3\n' + EXPECT,
    "rising_set": HEAD + 'suppress features tagged "format:json"\nsteer res["greeting"] by 3\n' + EXPECT,
    "leak_ok": HEAD + 'suppress res["alpha topic"]\n' + EXPECT,
}


@pytest.fixture(scope="module")
def leaky(tiny):
    """name -> checkpoint compiled against `sae_leak` (the orthonormal SAE, except that the
    decoder row of `greeting` (5) = the normalised sum of encoder columns 0, 1, 2 and 5)."""
    from steerc.compiler.build_checkpoint import compile_program
    from steerc.compiler.load import load_program

    src, dst = tiny / "sae", tiny / "sae_leak"
    dst.mkdir(exist_ok=True)
    (dst / "cfg.json").write_text((src / "cfg.json").read_text())
    t = load_file(str(src / "sae_weights.safetensors"))
    row = t["W_enc"][:, [0, 1, 2, 5]].sum(1)
    t["W_dec"][5] = row / row.norm()
    save_file({k: v.contiguous() for k, v in t.items()}, str(dst / "sae_weights.safetensors"),
              metadata={"format": "pt"})
    out, cwd = {}, os.getcwd()
    os.chdir(tiny)
    try:
        for name, text in SPECS.items():
            (tiny / f"{name}.steer").write_text(text)
            compile_program(load_program(f"{name}.steer"), f"out_{name}", force=True)
            out[name] = tiny / f"out_{name}"
    finally:
        os.chdir(cwd)
    return out


def _verify(capsys, ckpt, tiny, *extra):
    rc = main(["verify", str(ckpt), "--neutral", str(tiny / "neutral.txt"), "--max-windows", "4",
               "--max-new-tokens", "4", *map(str, extra)])
    return rc, capsys.readouterr().out


def test_suppressed_feature_that_rises_fails_with_the_rule_span(leaky, tiny, capsys, tmp_path,
                                                                 monkeypatch):
    monkeypatch.chdir(tiny)  # spans name the spec as seen from where verify runs
    rc, out = _verify(capsys, leaky["rising"], tiny, "--json", tmp_path / "r.json")
    assert rc == 1
    assert "PASS  expect" in out                       # the expects pass: the features fail it
    assert "rising.steer:4:1: error[E540]: 1 of 1 feature(s) this rule targets moved the wrong way" in out
    assert '4 | suppress res["alpha topic"]' in out        # the rule's source line, as diagnostics
    assert "result: FAILED (1/1 expectations passed; 1 targeted feature(s) moved the wrong way)" in out
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["ok"] is False and doc["failed_features"] == 1
    by_label = {f["label"]: f for f in doc["features"]}
    a = by_label["alpha topic"]
    assert a["verdict"] == "failed" and a["where"] == "rising.steer:4:1"
    # where A fired, pre_A + 1.5 - a_A = 1.5 exactly; elsewhere pre_A + 1.5 < 1.5
    assert a["steered"]["max"] == pytest.approx(1.5, abs=1e-4)
    assert a["steered"]["mean"] > 1.2 * a["base"]["mean"] and a["change_pct"] > 20
    assert a["rules"] == [{"where": "rising.steer:4:1", "rule": a["rules"][0]["rule"],
                           "op": "set_activation=0", "measurable": True}]
    assert by_label["greeting"]["verdict"] == "ok" and by_label["greeting"]["where"] == "rising.steer:5:1"
    assert doc["rule_failures"] == [{"where": "rising.steer:4:1", "rule": a["rules"][0]["rule"],
                                     "targeted": 1, "failed": 1, "features": [["res", 0]]}]


def test_failed_features_are_e540_diagnostics_in_machine_formats(leaky, tiny, capsys, monkeypatch):
    monkeypatch.chdir(tiny)
    rc, out = _verify(capsys, leaky["rising"], tiny, "--format", "json")
    diags = json.loads(out)["diagnostics"]
    assert rc == 1 and [(d["code"], d["file"], d["line"], d["col"]) for d in diags] == \
        [("E540", "rising.steer", 4, 1)]


def test_feature_set_rule_is_summarised_per_rule(leaky, tiny, monkeypatch):
    monkeypatch.chdir(tiny)
    r = verify_checkpoint(leaky["rising_set"], Options(neutral=str(tiny / "neutral.txt"),
                                                        max_windows=4, max_new_tokens=4))
    assert not r.ok and len(r.failed_features) == 2
    text = render_text(r)
    assert text.count("rising_set.steer:4:1: error[E540]: 2 of 2 feature(s)") == 1
    doc = to_json(r)
    [row] = doc["rule_failures"]
    assert row["where"] == "rising_set.steer:4:1" and row["failed"] == 2 \
        and sorted(i for _, i in row["features"]) == [1, 2]


def test_normal_suppression_on_the_same_sae_passes(leaky, tiny, capsys):
    # w_A . d_A = 1 still, so suppressing A alone reads back 0: exit 0
    rc, out = _verify(capsys, leaky["leak_ok"], tiny)
    assert rc == 0 and "result: OK (1/1 expectations passed)" in out and "FAILED" not in out


# --- the verdict rule itself, over its input space ---------------------------------------

def _stats(op: str, value: float, base: float, steered: float, measurable: bool = True,
           max_activation: float | None = None):
    rule = RuleRef(op, value, Span("s.steer", 3, 1), "rule", measurable)
    t = Target(FeatureId("res", 0), HOOK, (f"{op}={value:g}",), (rule,), max_activation)
    return FeatureStats(t, base, base, steered, steered, 0.5, 0.5)


acts = st.floats(0, 50, allow_nan=False)


@settings(max_examples=300, deadline=None)
@given(op=st.sampled_from([("set_activation", 0.0), ("project_out", 0.0), ("scale_activation", 0.5),
                           ("add", -2.0)]), base=acts, steered=acts)
def test_down_rules_fail_exactly_when_the_feature_rises_beyond_tolerance(op, base, steered):
    v = judge(_stats(*op, base, steered))
    assert v.failed == (steered - base > max(REL_TOL * base, ABS_TOL))
    assert v.spans == ("s.steer:3:1",)
    if not v.failed and base > 0 and steered < base:
        assert v.status in ("ok", "weak")           # moved the right way: never fails


@settings(max_examples=300, deadline=None)
@given(op=st.sampled_from([("add", 3.0), ("scale_activation", 2.0)]), base=acts, steered=acts)
def test_up_rules_fail_exactly_when_the_feature_falls_beyond_tolerance(op, base, steered):
    v = judge(_stats(*op, base, steered))
    assert v.failed == (base - steered > max(REL_TOL * base, ABS_TOL))


@settings(max_examples=300, deadline=None)
@given(target=st.floats(0.1, 20), base=acts, steered=acts)
def test_clamp_to_a_value_fails_when_it_moves_away(target, base, steered):
    v = judge(_stats("set_activation", target, base, steered))
    assert v.failed == (abs(steered - target) > abs(base - target) + max(REL_TOL * base, ABS_TOL))


def test_weak_is_a_warning_and_downstream_adds_are_not_measurable():
    assert judge(_stats("set_activation", 0, 1.0, 0.5)).status == "weak"     # -50%: not failed
    assert judge(_stats("set_activation", 0, 1.0, 1.03)).status == "weak"    # within 5%
    assert judge(_stats("add", 3, 1.0, 0.2, measurable=False)).status == "not measurable"
    assert reads_after("blocks.0.hook_resid_post", "blocks.1.hook_resid_post")
    assert reads_after("blocks.1.hook_resid_pre", "blocks.1.hook_resid_post")
    assert not reads_after("blocks.2.hook_resid_post", "blocks.1.hook_resid_post")
    assert not reads_after("blocks.1.hook_resid_post", "blocks.1.hook_resid_mid")


@settings(max_examples=300, deadline=None)
@given(base=st.floats(0, 2, allow_nan=False), rise=st.floats(0, 1, allow_nan=False),
       max_activation=st.floats(0.5, 500, allow_nan=False))
def test_the_floor_scales_with_the_catalogue_max_activation(base, rise, max_activation):
    """A suppressed feature fails exactly when it rises by more than 5% of its base mean and
    0.1% of its catalogue max: the same move is noise for a feature whose max is 500 and a
    failure for one whose max is 0.5 (an absolute 0.01 floor judged both alike)."""
    v = judge(_stats("set_activation", 0.0, base, base + rise, max_activation=max_activation))
    assert v.failed == (rise > max(REL_TOL * base, MAX_FRACTION * max_activation))
    assert tolerance(base, max_activation) == max(REL_TOL * base, MAX_FRACTION * max_activation)


def test_trivial_moves_of_strong_features_no_longer_fail_and_weak_features_now_do():
    # max 110 (the demo's largest): a mean rise of 0.05 is 0.05% of its range -> weak, not failed
    assert judge(_stats("set_activation", 0.0, 0.0001, 0.05, max_activation=110)).status == "weak"
    assert judge(_stats("set_activation", 0.0, 0.0001, 0.05)).failed          # was: 0.01 floor
    # max 4: a rise of 0.008 is 0.2% of its range -> fails (under the old 0.01 floor it passed)
    assert judge(_stats("set_activation", 0.0, 0.0001, 0.008, max_activation=4)).failed
    assert not judge(_stats("set_activation", 0.0, 0.0001, 0.008)).failed
    assert tolerance(0.0, None) == ABS_TOL and tolerance(0.0, 0.0) == ABS_TOL
