"""Difference-of-means directions: the vector equals an independent computation from
transformers' own hidden states, is the same bytes on every run, and reaches the compiled
checkpoint and its manifest."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from steerc.api import compile as compile_spec
from steerc.directions import build
from steerc.directions.meandiff import mean_difference
from steerc.hfload import load_model, load_tokenizer

DEMO = Path(__file__).resolve().parents[2] / "demo" / "model"
A = ["def area(self):\n    return self.w * self.h", "for i in range(10):\n    print(i)",
     "import os\npath = os.path.join(a, b)"]
B = ["The committee met on Tuesday to discuss the budget.", "She walked along the river at dusk."]


def _reference(model, tok, prompts, layer, last=False):
    """mean over content tokens (`last`: each prompt's last one) of hidden_states[layer + 1]
    (the output of block `layer`), one prompt at a time, float64."""
    rows = []
    for p in prompts:
        ids = torch.tensor([[tok.bos_token_id] + tok(p, add_special_tokens=False)["input_ids"]])
        with torch.no_grad():
            h = model(input_ids=ids, output_hidden_states=True).hidden_states[layer + 1][0]
        keep = torch.tensor([i not in tok.all_special_ids for i in ids[0].tolist()])
        rows.append(h[keep].double()[-1:] if last else h[keep].double())
    return torch.cat(rows).mean(0).numpy()


def test_equals_hidden_states_and_is_deterministic():
    model, tok = load_model(DEMO), load_tokenizer(DEMO)
    hooks = ["blocks.1.hook_resid_post", "blocks.2.hook_resid_post"]
    got = mean_difference(model, tok, A, B, hooks)
    for layer, h in ((1, hooks[0]), (2, hooks[1])):
        want = _reference(model, tok, A, layer) - _reference(model, tok, B, layer)
        np.testing.assert_allclose(got[h], want, rtol=1e-4, atol=1e-5)
    again = mean_difference(model, tok, A, B, hooks)
    assert all(got[h].tobytes() == again[h].tobytes() for h in hooks)
    # `mean last`: the last token of each prompt (the batch is right-padded to its longest)
    last = mean_difference(model, tok, A, B, hooks, last=True)
    want = _reference(model, tok, A, 2, last=True) - _reference(model, tok, B, 2, last=True)
    np.testing.assert_allclose(last[hooks[1]], want, rtol=1e-4, atol=1e-5)
    assert not np.allclose(last[hooks[1]], got[hooks[1]])


def test_compiled_checkpoint_records_the_vector(tmp_path):
    (tmp_path / "a.txt").write_text("\n".join(x.replace("\n", " ") for x in A) + "\n")
    (tmp_path / "b.txt").write_text("\n".join(B) + "\n")
    spec = tmp_path / "s.steer"
    spec.write_text(f'model "{DEMO}"\ndirection code = mean "a.txt" - mean "b.txt" at layer 2\n'
                    "ablate code everywhere\n")
    outs = []
    for name in ("o1", "o2"):
        build._MEANS.clear()  # computed afresh each time, not served from the process cache
        res = compile_spec(spec, tmp_path / name)
        assert res.target == "weights"
        outs.append(json.loads((tmp_path / name / "steerc-manifest.json").read_text()))
    rows = [next(s for s in m["saes"] if s["alias"] == "code") for m in outs]
    assert rows[0]["direction"]["kind"] == "mean" and rows[0]["direction"]["norm"] > 0
    assert rows[0] == rows[1]  # the same vector from the same inputs
    for f in sorted((tmp_path / "o1").glob("*.safetensors")):
        assert f.read_bytes() == (tmp_path / "o2" / f.name).read_bytes()


def test_calibrate_a_direction_strength(tmp_path):
    """`steer D by auto` on a difference of means: the unit is one vector, and calibrate
    finds the weakest passing strength within the KL budget."""
    from steerc.api import calibrate, check

    (tmp_path / "a.txt").write_text("\n".join(x.replace("\n", " ") for x in A) + "\n")
    (tmp_path / "b.txt").write_text("\n".join(B) + "\n")
    spec = tmp_path / "s.steer"
    spec.write_text(f'model "{DEMO}"\ndirection code = mean "a.txt" - mean "b.txt" at layer 2\n'
                    'steer code by auto\nexpect kl on "b.txt" below 0.5\n'
                    'expect code up by at least 10% on "a.txt"\n')
    curve = calibrate(spec, grid=[0, 0.25, 1, 4], max_windows=4)
    assert curve.ok and curve.chosen.t == 0.25
    assert curve.chosen.values[0].unit == "1 vector"
    check(spec, locked=True)  # the lock holds the chosen strength, and matches
