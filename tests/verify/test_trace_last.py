"""`trace --contrast A B --last`: the features' mean activations at each prompt's last token
equal an independent computation (one prompt at a time, transformers' hidden states, the
SAE's own encoder), and the CLI reproduces the demo's guardrail features in one command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from steerc.hfload import load_model, load_tokenizer
from steerc.saes import load_sae
from steerc.verify.trace import TracedSae, _means

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "demo"
PROMPTS = ["def area(self):\n    return self.w * self.", "for i in range(10):\n    print(",
           "class Point:\n    def __init__(", "x = {'a': 1, 'b': 2}\nprint(x["]

pytestmark = pytest.mark.skipif(not (DEMO / "model" / "config.json").exists(), reason="demo absent")


def test_last_token_means_match_hidden_states():
    model, tok = load_model(DEMO / "model"), load_tokenizer(DEMO / "model")
    sae = load_sae(DEMO / "saes" / "blocks.2.hook_resid_post")
    got, n = _means(model, tok, [TracedSae("res2", sae, None)], PROMPTS, 128, 32, last=True)
    assert n == len(PROMPTS)
    rows = []
    for p in PROMPTS:
        ids = torch.tensor([[tok.bos_token_id] + tok(p, add_special_tokens=False)["input_ids"]])
        with torch.no_grad():
            h = model(input_ids=ids, output_hidden_states=True).hidden_states[3][0, -1]  # block 2's output
        rows.append(sae.encode(h[None].float())[0])
    want = torch.stack(rows).mean(0)
    torch.testing.assert_close(got["res2"].float(), want, rtol=1e-4, atol=1e-4)


def test_cli_finds_the_guardrail_features():
    ex = ROOT / "specs" / "examples"
    r = subprocess.run([sys.executable, "-m", "steerc", "trace", "--contrast",
                        str(ex / "prompts" / "before_self.jsonl"), str(ex / "prompts" / "elsewhere_code.jsonl"),
                        "--spec", str(ex / "no_code.steer"), "--last", "--rank", "activation", "--top", "10",
                        "--format", "json"], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["last"] is True and doc["a"]["tokens"] == 400  # one token per prompt
    found = {f["index"] for f in doc["features"] if f["diff"] > 0}
    shipped = {239, 931, 1421, 63, 1293, 1035, 597, 145, 1000}  # 9 of no_self_rates' 10 features
    assert len(found & shipped) >= 8, found
