"""`steerc.arch.logitlens`: a direction's lens logits are what the model's own final norm and
head make of it, for every supported family (a missed norm, gain, centring or head fails)."""

from __future__ import annotations

import functools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from steerc.arch.logitlens import Lens
from steerc.arch.registry import adapter_for
from tests.tinymodels import ARCHS, HIDDEN, make_tiny


def _final_logits(model, X: torch.Tensor) -> torch.Tensor:
    """Logits when the last layer's output (the last residual stream) is replaced by X (B, T, d)
    (no final soft-capping: configs below turn it off, it is not linear)."""
    L = model.config.num_hidden_layers
    site = adapter_for(model.config).edit_site(f"blocks.{L - 1}.hook_resid_post", model.config)
    mod = model.get_submodule(site.path)
    if site.where == "in":
        h = mod.register_forward_pre_hook(lambda m, a, kw: ((X,) + tuple(a[1:]), kw) if a else
                                          (a, {**kw, "hidden_states": X}), with_kwargs=True)
    else:
        h = mod.register_forward_hook(lambda m, a, out: (X,) + tuple(out[1:]) if isinstance(out, tuple) else X)
    try:
        with torch.no_grad():
            return model(input_ids=torch.tensor([[5] * X.shape[1]]), use_cache=False).logits[0]
    finally:
        h.remove()


@pytest.mark.parametrize("arch", ARCHS)
def test_lens_is_the_final_norm_and_head_up_to_a_positive_factor(arch):
    overrides = {"final_logit_softcapping": None} if arch.startswith("gemma") else {}
    model, cfg = make_tiny(arch, tied=False, **overrides)
    gen = torch.Generator().manual_seed(3)
    gemma = cfg.model_type.startswith("gemma")
    with torch.no_grad():  # gains far from 1, so a lens without the gain is far off
        for name, p in model.named_parameters():
            if name.endswith("weight") and p.ndim == 1:
                p.copy_(torch.rand(p.shape, generator=gen) * 2.8 + 0.2 - (1.0 if gemma else 0.0))
    lens = Lens.of(model)
    D = torch.randn(4, HIDDEN, generator=gen) + 0.5   # a mean component: LayerNorm centres it
    X = torch.cat([torch.zeros(1, HIDDEN), D])[None]   # position 0: the residual 0
    got = _final_logits(model, X)
    for k in range(4):
        change = got[k + 1] - got[0]      # head(norm(d)) - head(norm(0)): norm biases drop out
        lens_k = lens.logits(D[k:k + 1])[0]
        ratio = (change @ lens_k) / (lens_k @ lens_k)
        assert ratio > 0, arch
        assert torch.allclose(change, ratio * lens_k, atol=1e-4 * float(change.abs().max())), arch


def test_top_tokens_skip_specials_and_are_ordered():
    model, _ = make_tiny("llama", tied=False)
    lens = Lens.of(model)
    D = torch.randn(3, HIDDEN, generator=torch.Generator().manual_seed(0))
    logits = lens.logits(D)
    up, down = lens.top_tokens(D, 5, skip=[int(logits[0].argmax())])
    assert int(logits[0].argmax()) not in up[0].tolist()
    for k in range(3):
        assert logits[k, up[k]].tolist() == sorted(logits[k, up[k]].tolist(), reverse=True)
        assert logits[k, down[k]].tolist() == sorted(logits[k, down[k]].tolist())
    up2, _ = lens.top_tokens(D, 5, chunk=1)   # chunking changes nothing
    assert torch.equal(up2[1:], lens.top_tokens(D, 5)[0][1:])


@functools.cache
def _llama_lens() -> Lens:
    return Lens.of(make_tiny("llama", tied=False)[0])


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), scale=st.floats(0.01, 100.0))
def test_promoted_of_minus_d_are_suppressed_of_d_and_scale_changes_nothing(seed, scale):
    lens = _llama_lens()
    d = torch.randn(1, HIDDEN, generator=torch.Generator().manual_seed(seed), dtype=torch.float64).float()
    up, down = lens.top_tokens(d, 5)
    up_neg, down_neg = lens.top_tokens(-d, 5)
    up_scaled, down_scaled = lens.top_tokens(scale * d, 5)
    assert torch.equal(up, down_neg) and torch.equal(down, up_neg)
    # ties aside (none in random float logits), a positive factor keeps the order
    assert torch.equal(up, up_scaled) and torch.equal(down, down_scaled)

