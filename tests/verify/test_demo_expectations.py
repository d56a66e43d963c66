"""Measured expectations and the prompting baseline on the shipped demo (real model, SAE and
catalogue): a loose bound passes and an impossible one fails, for rates, KL and a feature's
change; specs/examples/json_rates.steer resolves. Small budgets keep it to a minute or two.

Skipped only when the demo artefacts are absent.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from steerc.verify import Options, to_json, verify_checkpoint

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "demo"
REQUIRED = (DEMO / "model" / "config.json", DEMO / "saes" / "blocks.2.hook_resid_post" / "cfg.json",
            DEMO / "catalogue.json")
pytestmark = pytest.mark.skipif(not all(p.exists() for p in REQUIRED),
                                reason="demo artefacts absent (demo/model, demo/saes, demo/catalogue.json)")

CODE = ["import os\n", "class Foo:\n    def get(self):\n        return self.", "import sys\nimport os\n\n",
        "def main():\n    ", "class Reader:\n    def __init__(self, path):\n        "]
SPEC = f'''model "{DEMO / 'model'}"
sae res2 = "{DEMO / 'saes' / 'blocks.2.hook_resid_post'}"
catalogue "{DEMO / 'catalogue.json'}"
suppress res2[1221]
baseline prompt "# Python without methods\\n"
expect at least 60% of "code.jsonl" not mentions "self"
expect at least 100% of "code.jsonl" mentions "self"
expect kl on "neutral.txt" below 0.05
expect kl on "neutral.txt" below 1e-9
expect res2[1221] down by at least 90% on "code.jsonl"
expect res2[1221] up by at least 1%
'''


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    from steerc.compiler.build_checkpoint import compile_program
    from steerc.compiler.load import load_program

    d = tmp_path_factory.mktemp("demo_expect")
    (d / "code.jsonl").write_text("".join(json.dumps({"text": c}) + "\n" for c in CODE))
    (d / "neutral.txt").write_text((ROOT / "specs" / "examples" / "prompts" / "neutral.txt").read_text())
    (d / "s.steer").write_text(SPEC)
    compile_program(load_program(d / "s.steer"), d / "out")
    return verify_checkpoint(d / "out", Options(max_windows=4, max_new_tokens=16))


def test_loose_bounds_pass_and_impossible_ones_fail_on_the_demo(report):
    got = [(e.expect.kind, e.passed) for e in report.expects]
    assert got == [("not_mentions", True), ("mentions", False), ("kl_below", True), ("kl_below", False),
                   ("down", True), ("up", False)], [(e.line, e.steered.detail) for e in report.expects]
    assert not report.ok
    rate = report.expects[0]
    assert rate.count == 5 and rate.base.value <= rate.steered.value   # suppressing `self` helps
    assert report.expects[4].steered.value <= -90


def test_the_demo_baseline_is_reported_beside_base_and_steered(report):
    doc = to_json(report)
    assert doc["baseline"] == "# Python without methods\n"
    for e in doc["expects"]:
        assert e["prompted"] is not None and e["prompted"]["detail"]
    kl = doc["expects"][2]
    assert kl["prompted"]["value"] > 0 and kl["steered"]["value"] < 0.05


def test_the_json_rates_example_resolves():
    from steerc.compiler.load import load_program

    p = load_program(ROOT / "specs" / "examples" / "json_rates.steer")
    rate, down, kl = p.expects
    assert (rate.kind, rate.percent) == ("is_json", 95.0) and rate.texts.endswith("requests.txt")
    assert down.kind == "down" and len(down.features) > 50 and kl.kind == "kl_below"
    assert {e.baseline for e in p.expects} == {"Answer only in JSON.\n"}
    assert sum(1 for ln in Path(rate.texts).read_text().splitlines() if ln.strip()) >= 50


def test_the_json_schema_rates_example_resolves():
    from steerc.compiler.load import load_program

    p = load_program(ROOT / "specs" / "examples" / "json_schema_rates.steer")
    rate, kl = p.expects
    assert (rate.kind, rate.percent) == ("matches_schema", 95.0) and rate.arg.endswith("ticket.json")
    assert p.json is not None and p.json.schema_path.endswith("ticket.json") and kl.kind == "kl_below"


def test_the_guardrail_example_resolves_with_its_held_out_code_prompts():
    from steerc.compiler.load import load_program

    p = load_program(ROOT / "specs" / "examples" / "no_self_rates.steer")
    rate, down, kl = p.expects
    assert (rate.kind, rate.arg, rate.percent) == ("not_mentions", "self", 90.0)
    assert (down.kind, [f.index for f in down.features]) == ("down", [239])
    assert len(p.interventions) == 10 and {iv.op.value for iv in p.interventions} == {"set_activation"}
    assert sum(1 for ln in Path(rate.texts).read_text().splitlines() if ln.strip()) >= 50


def test_the_entity_guardrail_example_resolves_with_its_held_out_aws_prompts():
    from steerc.compiler.load import load_program

    p = load_program(ROOT / "specs" / "examples" / "no_amazon_rates.steer")
    rate, down, kl = p.expects
    assert (rate.kind, rate.arg, rate.percent) == ("not_mentions", "Amazon", 90.0)
    assert down.kind == "down" and kl.kind == "kl_below"
    assert len(p.interventions) == 30
    assert sum(1 for ln in Path(rate.texts).read_text().splitlines() if ln.strip()) >= 50
