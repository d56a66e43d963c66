"""Every example spec compiles against the shipped demo model and verifies: exit 0, except
the `enforce json` examples, whose expects pass but some of whose suppressed features rise
(E540, docs/verify.md "What is weak"): that failure is asserted, so a fix shows up here.

Skipped only when the demo artefacts (demo/model, demo/saes, demo/catalogue.json) are absent.
Small budgets (8 windows, 24 new tokens) keep the whole file well under two minutes.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from steerc.verify import Options, verify_checkpoint
from steerc.verify.report import totals

ROOT = Path(__file__).resolve().parents[2]
# `enforce json format` suppresses 527 prose/code features and scales 346 JSON features x2 in
# one rule; the scaled decoder rows write along some suppressed features' encoder rows, so
# some rise (measured: 53 of 527 with verify's defaults). On this test's 8 windows a scaled
# feature can also come out below its base mean (with the calibrated demo catalogue, some do)
RISING_SUPPRESSIONS = {"json_only": 7, "json_schema": 9}  # name -> line of the enforce rule
DEMO = ROOT / "demo"
# measured over prompt files (60 guarded generations): tests/verify/test_demo_expectations.py
MEASURED = {"json_rates", "json_schema_rates", "no_self_rates", "no_amazon_rates"}
SCALED_DOWN = {"prose_auto": 0.375}  # `scale ... by auto`, calibrated (docs/calibrate.md)
EXAMPLES = sorted(p for p in (ROOT / "specs" / "examples").glob("*.steer") if p.stem not in MEASURED)
REQUIRED = (DEMO / "model" / "config.json", DEMO / "saes" / "blocks.2.hook_resid_post" / "cfg.json",
            DEMO / "catalogue.json")

pytestmark = pytest.mark.skipif(not all(p.exists() for p in REQUIRED),
                                reason="demo artefacts absent (demo/model, demo/saes, demo/catalogue.json)")


def test_the_five_examples_exist():
    names = {p.stem for p in EXAMPLES}
    assert {"suppress_topic", "no_code", "more_json", "conditional", "json_only"} <= names


@pytest.mark.parametrize("spec", EXAMPLES, ids=lambda p: p.stem)
def test_example_compiles_and_verifies(spec, tmp_path):
    from steerc.compiler.build_checkpoint import compile_program
    from steerc.compiler.load import load_program

    cwd = os.getcwd()
    os.chdir(ROOT)  # manifests record paths relative to the compile directory, as demo.sh does
    try:
        program = load_program(spec.relative_to(ROOT))
        out = tmp_path / spec.stem
        compile_program(program, out)
        r = verify_checkpoint(out, Options(max_windows=8, max_new_tokens=24))
    finally:
        os.chdir(cwd)
    assert r.expects, "each example states what it achieves with `expect`"
    assert all(e.passed for e in r.expects), [(e.line, e.steered_text, e.steered.detail)
                                              for e in r.expects if not e.passed]
    if spec.stem in RISING_SUPPRESSIONS:
        assert not r.ok and r.failed_features
        line = RISING_SUPPRESSIONS[spec.stem]
        for f in r.failed_features:
            assert [op.split("=")[0] for op in f.target.ops] in (["set_activation"], ["scale_activation"])
            assert all(x.span.line == line for x in f.target.rules)
    else:
        assert r.ok and not r.failed_features, [(f.target.feature, f.base_mean, f.steered_mean)
                                                for f in r.failed_features]
    # Suppressed features, re-encoded from the edited stream, lose >= 90% of their summed
    # activation (the bar): the demo SAE is trained with encoder rows aligned to its
    # decoder rows (median w_i . d_i 0.998). With JSON features scaled up beside them
    # (enforce json), the others' decoder terms push some back: -84% there (docs/verify.md).
    t = totals(r.features)
    if "down" in t and spec.stem in SCALED_DOWN:  # scaled by k, not suppressed: at least 1 - k
        assert t["down"]["change_pct"] < -(1 - SCALED_DOWN[spec.stem]) * 100, t
    elif "down" in t:
        assert t["down"]["change_pct"] < (-75 if "up" in t else -90), t
    if "up" in t:
        assert t["up"]["change_pct"] > 0, t
    assert 0 <= r.kl.mean < 2.0
