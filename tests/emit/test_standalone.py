"""Compiled checkpoints load and generate in a fresh interpreter where `import steerc` fails,
and hook checkpoints refuse to load without trust_remote_code (fail closed).

One subprocess per target loads every family's checkpoint (subprocesses are slow)."""

from __future__ import annotations


import pytest
import torch

from steerc.runtime.apply import apply
from tests.emit.conftest import FAMILIES, WEIGHTS
from tests.shipped import NO_STEERC, run_without_steerc

SCRIPT = NO_STEERC + r'''
import torch
import transformers as tf
cases = torch.load(sys.argv[2])
for c in cases:
    if c["hooks"]:
        try:
            tf.AutoModelForCausalLM.from_pretrained(c["dir"])
            raise SystemExit("loaded a hook checkpoint without trust_remote_code: " + c["dir"])
        except ValueError as e:
            assert "trust_remote_code" in str(e), e
    m = tf.AutoModelForCausalLM.from_pretrained(c["dir"], trust_remote_code=c["hooks"]).eval()
    assert "steerc" not in sys.modules
    with torch.no_grad():
        diff = (m(c["ids"]).logits - c["ref"]).abs().max().item()
        assert diff <= 1e-4, (c["dir"], diff)
        seq = m.generate(c["ids"], max_new_tokens=4, do_sample=False, pad_token_id=3)
        assert torch.equal(seq, c["gen"]), (c["dir"], seq, c["gen"])
    print("ok", c["dir"], diff)
'''


@pytest.mark.parametrize("target", ["weights", "hooks"])
def test_loads_without_steerc(bases, tmp_path, target):
    cases = []
    ids = torch.randint(4, 100, (2, 9), generator=torch.Generator().manual_seed(5))
    for case, _, _ in FAMILIES:
        scenario = "hooks"
        if target == "weights":  # the widest scenario each family compiles to weights
            scenario = next((s for s in ("add_ablate", "ablate", "add_embed") if s in WEIGHTS[case]), None)
            if scenario is None:
                continue  # no exact weight edits on Gemma-2 / Gemma-3
        out, res = bases.compile(case, scenario)
        assert res.plan.target == target
        _, model = bases.base(case)
        with torch.no_grad(), apply(model, bases.program(case, scenario), {"r": bases.sae}):
            ref = model(ids).logits
            gen = model.generate(ids, max_new_tokens=4, do_sample=False, pad_token_id=3)
        cases.append({"dir": str(out), "hooks": target == "hooks", "ids": ids, "ref": ref, "gen": gen})
    run_without_steerc(tmp_path, SCRIPT, cases, HF_MODULES_CACHE=str(tmp_path / "hf_modules"))
