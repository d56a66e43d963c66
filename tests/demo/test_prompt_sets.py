"""The example prompt files (specs/examples/prompts/) are held out from the text the demo
catalogue was calibrated on (demo/calibration/): a measured rate or a contrast taken on a
file the catalogue already saw would flatter the features it names. Short generic openers
(`import os`, `__all__ = [`) occur in any code, so only prompts of MIN_CHARS or more count."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from steerc.files.prompts import CHECK_KIND, read_prompts

ROOT = Path(__file__).resolve().parents[2]
PROMPTS = ROOT / "specs" / "examples" / "prompts"
CALIBRATION = ROOT / "demo" / "calibration"
MIN_CHARS = 40
FILES = sorted(p for p in PROMPTS.iterdir() if p.suffix in (".jsonl", ".txt"))


@pytest.fixture(scope="module")
def calibration_text() -> str:
    docs = [json.loads(line)["text"] for p in sorted(CALIBRATION.glob("*.jsonl"))
            for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]
    return "\n<|doc|>\n".join(docs)


@pytest.mark.skipif(not CALIBRATION.is_dir(), reason="demo/calibration absent")
@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_prompt_file_is_held_out_from_the_calibration_corpus(path, calibration_text):
    prompts = read_prompts(path, CHECK_KIND).prompts
    seen = [p[:60] for p in prompts if len(p) >= MIN_CHARS and p in calibration_text]
    assert not seen, f"{path.name}: {len(seen)} prompts occur in demo/calibration, e.g. {seen[:3]}"


def test_the_guardrail_sets_are_large_enough_and_disjoint():
    """The guardrail examples' evaluation prompts share no text with the files their
    features were chosen on (docs/guardrail.md)."""
    read = {p.name: read_prompts(p, CHECK_KIND).prompts for p in FILES}
    for evaluated, chosen_on in (("code.jsonl", ("before_self.jsonl", "elsewhere_code.jsonl")),
                                 ("aws_docs.jsonl", ("aws_amazon.jsonl", "aws_no_amazon.jsonl"))):
        assert len(read[evaluated]) >= 50
        pool = "\n".join(x for name in chosen_on for x in read[name])
        both = [p[:60] for p in read[evaluated] if len(p) >= MIN_CHARS and p in pool]
        assert not both, f"{evaluated} prompts inside {chosen_on}: {both[:3]}"
