"""Compiled checkpoints equal the runtime reference (`steerc.runtime.apply` on the unedited
model) to fp32 tolerance: random prompts, a left-padded batch, and generate() with the KV
cache, for every family x scenario (weight edits where exact, hooks elsewhere)."""

from __future__ import annotations

import pytest
import torch
import transformers as tf

from steerc.runtime.apply import apply
from tests.emit.conftest import FAMILIES, SCENARIOS, WEIGHTS

TOL = 1e-4
CASES = [f[0] for f in FAMILIES]
PAIRS = [(c, s) for c in CASES for s in SCENARIOS] + [
    ("gpt2", "hooks_everywhere"), ("llama_tied", "hooks_everywhere")] + [
    (c, "add_embed") for c in ("qwen3", "phi3", "olmo2", "gemma3_text", "qwen2_moe")]


def _inputs(seed: int):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(4, 100, (3, 12), generator=g)
    mask = torch.ones_like(ids)
    mask[0, :4] = 0  # left padding on row 0
    ids_pad = ids.clone()
    ids_pad[0, :4] = 3
    return ids, ids_pad, mask


def _run(model, ids, ids_pad, mask, generate=True):
    out = {"logits": model(ids).logits}
    out["padded"] = model(ids_pad, attention_mask=mask).logits * mask[..., None]
    if not generate:
        return out
    gen = model.generate(ids_pad[:2], attention_mask=mask[:2], max_new_tokens=5, do_sample=False,
                         output_scores=True, return_dict_in_generate=True, pad_token_id=3)
    out["gen_scores"] = torch.stack(gen.scores)
    out["gen_seq"] = gen.sequences
    return out


@pytest.mark.parametrize("case,scenario", PAIRS)
def test_compiled_equals_reference(bases, case, scenario):
    out_dir, res = bases.compile(case, scenario)
    expected = "weights" if scenario in WEIGHTS[case] else "hooks"
    assert res.plan.target == expected, [(lo.kind, lo.reason) for lo in res.plan.lowerings]
    if scenario == "hooks_everywhere":
        assert {lo.kind for lo in res.plan.lowerings} == {"hook"}

    _, base_model = bases.base(case)
    program = bases.program(case, scenario)
    trust = res.plan.target == "hooks"
    compiled = tf.AutoModelForCausalLM.from_pretrained(out_dir, trust_remote_code=trust).eval()
    with torch.no_grad():
        for seed in (0,):
            ids, ids_pad, mask = _inputs(seed)
            got = _run(compiled, ids, ids_pad, mask, generate=seed == 0)
            with apply(base_model, program, {"r": bases.sae}):
                ref = _run(base_model, ids, ids_pad, mask, generate=seed == 0)
            plain = base_model(ids).logits
            for k in got:
                if k != "gen_seq":
                    diff = (got[k] - ref[k]).abs().max().item()
                    assert diff <= TOL, (k, diff)
            if seed == 0:
                assert torch.equal(got["gen_seq"], ref["gen_seq"])
            # the steering is not a no-op on this input
            assert (got["logits"] - plain).abs().max().item() > 1e-2
