"""The adapters' weight-edit claims, proven against the hook reference (apply()).

- bias slot: adding alpha*d to the slot equals `add` at resid_post of that layer;
- Mistral/Qwen2 re-targeted as Llama (zero extra biases) give identical logits;
- orthogonalizing every writer and embedding equals `project_out ... everywhere`;
- Gemma-2, Gemma-3 and OLMo-2 claim none of these (and they would indeed be wrong there);
- Qwen3, Phi-3 and Qwen2-MoE claim no bias slot: their writers have no bias parameter.
"""

from __future__ import annotations

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from steerc.arch.registry import adapter_for
from steerc.compiler.ir import Op
from steerc.runtime import apply
from tests.runtime.helpers import iv, program, sae_at
from tests.tinymodels import make_tiny

ALPHA, LAYER, FEAT = 4.0, 1, 5


def _ids(n=9):
    return torch.randint(4, 100, (2, n), generator=torch.Generator().manual_seed(3))


def _logits(model, ids):
    with torch.no_grad():
        return model(ids).logits


def _hook_add(model, saes, ids, point):
    prog = program(iv(Op.ADD, "s", FEAT, ALPHA, point), saes=saes)
    with apply(model, prog, saes):
        return _logits(model, ids)


def _retargeted(model, cfg, slot):
    """A LlamaForCausalLM built from the adapter's re-target config, carrying `model`'s
    tensors; every bias the flags create is zero. Returns it and the keys it added."""
    ad = adapter_for(cfg)
    lcfg = LlamaConfig(**ad.retarget_config(cfg))
    lcfg._attn_implementation = "eager"
    llama = LlamaForCausalLM(lcfg).eval()
    missing, unexpected = llama.load_state_dict(model.state_dict(), strict=False)
    assert not unexpected
    with torch.no_grad():
        for k in missing:
            llama.get_parameter(k).zero_()
    return llama, set(missing)


def _with_mlp_bias(model, cfg):
    lcfg = LlamaConfig(**{**cfg.to_dict(), "mlp_bias": True})
    lcfg._attn_implementation = "eager"
    llama = LlamaForCausalLM(lcfg).eval()
    missing, unexpected = llama.load_state_dict(model.state_dict(), strict=False)
    with torch.no_grad():
        for k in missing:
            llama.get_parameter(k).zero_()
    return llama, set(missing)


NEOX_SEQ = {"use_parallel_residual": False}


@pytest.mark.parametrize("arch,tied,kw", [("gpt2", None, {}), ("llama", False, {}), ("llama", True, {}),
                                          ("mistral", None, {}), ("qwen2", None, {}),
                                          ("gpt_neox", None, {}), ("gpt_neox", None, NEOX_SEQ)])
def test_bias_slot_equals_resid_post_add(tmp_path, arch, tied, kw):
    model, cfg = make_tiny(arch, tied=tied, **kw)
    ad = adapter_for(cfg)
    saes = {"s": sae_at(tmp_path, "s", f"blocks.{LAYER}.hook_resid_post", cfg.hidden_size)}
    ids = _ids()
    want = _hook_add(model, saes, ids, f"blocks.{LAYER}.hook_resid_post")
    slot = ad.bias_slot(LAYER, cfg)
    assert slot is not None
    if arch in ("gpt2", "gpt_neox"):
        edited = model
        assert not slot.config_flags
    elif slot.retarget_model_type:
        edited, added = _retargeted(model, cfg, slot)
        assert added == set(slot.zero_biases) | {slot.bias}
        torch.testing.assert_close(_logits(edited, ids), _logits(model, ids), rtol=0, atol=2e-6)
    else:
        assert slot.config_flags == {"mlp_bias": True}
        edited, added = _with_mlp_bias(model, cfg)
        assert added == set(slot.zero_biases) | {slot.bias}
    d = saes["s"].W_dec[FEAT]
    with torch.no_grad():
        edited.get_parameter(slot.bias).add_(ALPHA * d)
    torch.testing.assert_close(_logits(edited, ids), want, rtol=1e-5, atol=1e-5)


def test_mistral_sliding_window_blocks_retarget():
    model, cfg = make_tiny("mistral", sliding_window=3)
    ad = adapter_for(cfg)
    assert ad.bias_slot(LAYER, cfg) is None and not ad.retarget_ok(cfg)
    llama, _ = _retargeted(model, cfg, None)
    ids = _ids(9)
    assert (_logits(llama, ids) - _logits(model, ids)).abs().max() > 1e-3  # why it is refused


def test_qwen2_sliding_window_blocks_retarget():
    _, cfg = make_tiny("qwen2", use_sliding_window=True, sliding_window=3)
    assert adapter_for(cfg).bias_slot(LAYER, cfg) is None


def _param(model, key: str):
    """A writer's parameter by checkpoint key; per-expert keys (`mlp.experts.E.down_proj.weight`)
    are rows of the fused [E, d, I] tensor transformers 5 holds in memory."""
    head, sep, tail = key.partition(".experts.")
    if sep:
        e = int(tail.split(".")[0])
        return model.get_parameter(f"{head}.experts.down_proj")[e]
    return model.get_parameter(key)


def _orthogonalize(model, cfg, u):
    """The weight edit the adapter's writers/embeddings describe, done in place."""
    ad = adapter_for(cfg)
    P = torch.eye(u.shape[0]) - torch.outer(u, u)
    with torch.no_grad():
        for e in ad.embeddings(cfg):
            if e.tied_to:  # untie: the head keeps the original matrix
                model.lm_head.weight = torch.nn.Parameter(model.get_parameter(e.weight).detach().clone())
                model.config.tie_word_embeddings = False
        for w in ad.writers(cfg):
            W = _param(model, w.weight)
            W.copy_(P @ W if w.layout == "linear" else W @ P)
            if w.bias:
                b = model.get_parameter(w.bias)
                b.copy_(P @ b)
        for e in ad.embeddings(cfg):
            E = model.get_parameter(e.weight)
            E.copy_(E @ P)


@pytest.mark.parametrize("arch,tied,kw", [("gpt2", None, {}), ("llama", False, {}), ("llama", True, {}),
                                          ("mistral", None, {}), ("qwen2", None, {}), ("qwen2", True, {}),
                                          ("qwen3", None, {}), ("qwen3", True, {}), ("phi3", None, {}),
                                          ("gpt_neox", None, {}), ("gpt_neox", True, NEOX_SEQ),
                                          ("qwen2_moe", None, {})])
def test_orthogonalized_writers_equal_everywhere_ablation(tmp_path, arch, tied, kw):
    model, cfg = make_tiny(arch, tied=tied, **kw)
    saes = {"s": sae_at(tmp_path, "s", "blocks.1.hook_resid_post", cfg.hidden_size)}
    ids = _ids()
    prog = program(iv(Op.PROJECT_OUT, "s", FEAT, 0.0, "blocks.1.hook_resid_post", everywhere=True),
                   saes=saes)
    with apply(model, prog, saes):
        want = _logits(model, ids)
    assert (want - _logits(model, ids)).abs().max() > 1e-3
    d = saes["s"].W_dec[FEAT]
    _orthogonalize(model, cfg, d / d.norm())
    torch.testing.assert_close(_logits(model, ids), want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("arch", ["gemma2", "gemma3_text", "olmo2"])
def test_post_norm_families_claim_no_exact_residual_edit(tmp_path, arch):
    model, cfg = make_tiny(arch)
    ad = adapter_for(cfg)
    assert not ad.exact_residual_edits and ad.bias_slot(LAYER, cfg) is None
    emb = ad.embeddings(cfg)[0]
    # Gemma scales its tied embedding by sqrt(d); OLMo-2's is plain (an add folds into it).
    assert (emb.scale_by_sqrt_d, bool(emb.tied_to)) == ((False, False) if arch == "olmo2" else (True, True))
    saes = {"s": sae_at(tmp_path, "s", "blocks.1.hook_resid_post", cfg.hidden_size)}
    ids = _ids()
    prog = program(iv(Op.PROJECT_OUT, "s", FEAT, 0.0, "blocks.1.hook_resid_post", everywhere=True),
                   saes=saes)
    with apply(model, prog, saes):
        want = _logits(model, ids)
    d = saes["s"].W_dec[FEAT]
    _orthogonalize(model, cfg, d / d.norm())
    assert (_logits(model, ids) - want).abs().max() > 1e-3  # post-norms undo the edit


@pytest.mark.parametrize("arch,tied", [("qwen3", None), ("qwen3", True), ("phi3", None), ("qwen2_moe", None)])
def test_no_bias_slot_where_no_writer_has_a_bias(arch, tied):
    model, cfg = make_tiny(arch, tied=tied)
    ad = adapter_for(cfg)
    assert ad.bias_slot(LAYER, cfg) is None and ad.why_no_bias_slot
    names = {n for n, _ in model.named_parameters()}
    mlp_biases = {n for n in names if ".mlp." in n and n.endswith("bias")}
    assert not mlp_biases and not any(w.bias for w in ad.writers(cfg) if ".mlp." in w.weight)
