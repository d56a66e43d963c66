"""apply(): everywhere ablation, positions under generate() with a KV cache, exact restore,
and the registered form (buffers in the state dict, reloaded by from_pretrained)."""

from __future__ import annotations

import pytest
import torch
from safetensors import safe_open
from transformers import LlamaForCausalLM

from steerc.arch.registry import adapter_for
from steerc.compiler.ir import Op
from steerc.runtime import SteercHooks, apply, build_hooks, install
from tests.runtime.helpers import iv, program, sae_at
from tests.tinymodels import make_tiny

POINT = "blocks.1.hook_resid_post"


def _ids(n=6, seed=0):
    return torch.randint(4, 100, (1, n), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("arch,tied", [("gpt2", None), ("llama", True), ("mistral", None),
                                       ("qwen2", None), ("gemma2", None), ("qwen3", None),
                                       ("gemma3_text", None), ("phi3", None), ("olmo2", None),
                                       ("qwen2_moe", None)])
def test_everywhere_leaves_no_component_anywhere(tmp_path, arch, tied):
    model, cfg = make_tiny(arch, tied=tied)
    saes = {"s": sae_at(tmp_path, "s", POINT, cfg.hidden_size)}
    u = saes["s"].W_dec[5] / saes["s"].W_dec[5].norm()
    prog = program(iv(Op.PROJECT_OUT, "s", 5, 0.0, POINT, everywhere=True),
                   iv(Op.ADD, "s", 5, 7.0, POINT),                    # steerc's own delta
                   iv(Op.ADD, "s", 5, 3.0, "blocks.0.hook_resid_mid"),
                   iv(Op.SET, "s", 9, 4.0, POINT), saes=saes)
    ad = adapter_for(cfg)
    seen = []
    with torch.no_grad():
        plain = model(_ids(), output_hidden_states=True).hidden_states
        with apply(model, prog, saes):
            # registered after apply's hooks, so they see each write as the stream gets it
            probes = [model.get_submodule(p).register_forward_hook(
                lambda m, a, o: seen.append(o[0] if isinstance(o, tuple) else o))
                for p in ad.write_sites(cfg)]
            hs = model(_ids(), output_hidden_states=True).hidden_states
            for p in probes:
                p.remove()
    assert max(float((h @ u).abs().max()) for h in plain[:-1]) > 0.1
    for h in hs[:-1]:  # the last one carries the final norm
        assert float((h @ u).abs().max()) < 1e-5
    assert len(seen) == len(ad.write_sites(cfg))
    for w in seen:
        assert float((w @ u).abs().max()) < 1e-5


def _greedy_logits(model, ids, steps):
    with torch.no_grad():
        out = model.generate(ids, max_new_tokens=steps, do_sample=False, output_logits=True,
                             return_dict_in_generate=True, pad_token_id=3)
    return out.sequences, torch.stack(out.logits, 1)


def _manual(model, ids, steps, prefill_ctx, decode_ctx):
    """Greedy decoding by hand: prefill under one context, each decode step under another."""
    logits = []
    with torch.no_grad():
        with prefill_ctx():
            out = model(ids, use_cache=True)
        cache = out.past_key_values
        for _ in range(steps):
            logits.append(out.logits[:, -1])
            nxt = out.logits[:, -1].argmax(-1, keepdim=True)
            with decode_ctx():
                out = model(nxt, cache=cache, use_cache=True)
            cache = out.past_key_values
    return torch.stack(logits, 1)


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_positions_with_generate_and_kv_cache(tmp_path, arch):
    from contextlib import nullcontext

    model, cfg = make_tiny(arch)
    saes = {"s": sae_at(tmp_path, "s", POINT, cfg.hidden_size)}
    ids, steps = _ids(5), 4
    every = program(iv(Op.ADD, "s", 3, 6.0, POINT), iv(Op.SET, "s", 7, 2.0, POINT), saes=saes)
    on = lambda: apply(model, every, saes)  # noqa: E731
    off = nullcontext
    for scope, pre_ctx, dec_ctx in (("prompt", on, off), ("generated", off, on), ("all", on, on)):
        prog = program(iv(Op.ADD, "s", 3, 6.0, POINT, positions=scope),
                       iv(Op.SET, "s", 7, 2.0, POINT, positions=scope), saes=saes)
        with apply(model, prog, saes):
            _, got = _greedy_logits(model, ids, steps)
        want = _manual(model, ids, steps, pre_ctx, dec_ctx)
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    _, plain = _greedy_logits(model, ids, steps)
    gen = program(iv(Op.ADD, "s", 3, 6.0, POINT, positions="generated"), saes=saes)
    with apply(model, gen, saes):
        _, g = _greedy_logits(model, ids, steps)
    torch.testing.assert_close(g[:, 0], plain[:, 0])          # the prompt pass is untouched
    assert (g[:, 1:] - plain[:, 1:]).abs().max() > 1e-3       # generated tokens are steered


def test_apply_restores_model_exactly(tmp_path):
    model, cfg = make_tiny("gpt2")
    saes = {"s": sae_at(tmp_path, "s", "blocks.0.hook_resid_mid", cfg.hidden_size)}
    prog = program(iv(Op.PROJECT_OUT, "s", 2, 0.0, "blocks.0.hook_resid_mid", everywhere=True),
                   iv(Op.SET, "s", 4, 1.0, "blocks.0.hook_resid_mid"),
                   iv(Op.PROJECT_OUT, "s", 6, 0.0, "blocks.0.hook_resid_mid"), saes=saes)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        base = model(_ids()).logits
        with apply(model, prog, saes):
            steered = model(_ids()).logits
        after = model(_ids()).logits
    assert (steered - base).abs().max() > 1e-3
    assert torch.equal(base, after)
    sd = model.state_dict()
    assert sd.keys() == before.keys() and all(torch.equal(sd[k], before[k]) for k in sd)
    assert not hasattr(model, "steerc")
    for m in model.modules():
        assert not m._forward_hooks and not m._forward_pre_hooks


class _SteeredLlama(LlamaForCausalLM):
    """What a compiled checkpoint's wrapper does: install hooks built from config.steerc."""

    def __init__(self, config):
        super().__init__(config)
        install(self, SteercHooks(config.steerc))


def test_registered_hooks_round_trip_through_from_pretrained(tmp_path):
    model, cfg = make_tiny("llama")
    hook = "blocks.1.hook_resid_post"
    saes = {"s": sae_at(tmp_path, "s", hook, cfg.hidden_size, architecture="topk", k=8)}
    prog = program(iv(Op.SET, "s", 3, 2.0, hook), iv(Op.SCALE, "s", 8, 0.0, hook),
                   iv(Op.PROJECT_OUT, "s", 1, 0.0, hook, everywhere=True),
                   iv(Op.ADD, "s", 3, 1.0, hook, positions="generated"), saes=saes)
    with torch.no_grad(), apply(model, prog, saes):
        want = model(_ids()).logits
    hooks = build_hooks(prog, saes, cfg, adapter_for(cfg))
    cfg.steerc = hooks.spec
    steered = _SteeredLlama(cfg).eval()
    steered.load_state_dict({**model.state_dict(),
                             **hooks.checkpoint_tensors()})
    steered.save_pretrained(tmp_path / "ckpt")
    with safe_open(str(tmp_path / "ckpt" / "model.safetensors"), "pt") as f:
        keys = set(f.keys())
    assert {"steerc.Q_everywhere", "steerc.hooks.0.W_dec", "steerc.hooks.0.op_code",
            "steerc.hooks.0.groups.0.W_enc", "steerc.hooks.0.groups.0.cols"} <= keys
    loaded = _SteeredLlama.from_pretrained(tmp_path / "ckpt", attn_implementation="eager").eval()
    with torch.no_grad():
        got = loaded(_ids()).logits
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
