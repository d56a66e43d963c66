"""The fused hook module equals the naive per-feature math, for every SAE kind."""

from __future__ import annotations

import pytest
import torch

from steerc.arch.registry import adapter_for
from steerc.compiler.ir import Op
from steerc.runtime.build_hooks import build_hooks
from steerc.runtime.modeling_steerc import POSITIONS
from tests.runtime.helpers import iv, program, sae_at, stub_config
from tests.runtime.naive import encode_one, naive_point

HOOK = "blocks.1.hook_resid_post"
D = 32


def _interventions():
    return [
        iv(Op.SET, "s", 1, 3.0, HOOK),
        iv(Op.SET, "s", 5, 2.5, HOOK),
        iv(Op.SET, "s", 7, 0.0, HOOK),                                   # suppress
        iv(Op.SCALE, "s", 9, 0.5, HOOK, positions="generated"),
        iv(Op.ADD, "s", 3, 2.0, HOOK, positions="prompt"),
        iv(Op.ADD, "s", 11, 1.5, HOOK, cond=("c", 10, HOOK, 0.1)),       # condition, other SAE
        iv(Op.SCALE, "s", 12, 3.0, HOOK, cond=("s", 1, HOOK, 0.2)),
        iv(Op.PROJECT_OUT, "s", 20, 0.0, HOOK),
        iv(Op.PROJECT_OUT, "s", 21, 0.0, HOOK),                          # not orthogonal to 20
    ]


CASES = [(arch, norm, b_dec) for arch in ("standard", "jumprelu", "gated", "topk")
         for norm, b_dec in (("none", False), ("constant_norm_rescale", True), ("layer_norm", False))]


@pytest.mark.parametrize("arch,norm,b_dec", CASES)
@pytest.mark.parametrize("phase", ["prompt", "generated"])
def test_fused_equals_naive(tmp_path, arch, norm, b_dec, phase):
    kw = {"k": 8} if arch == "topk" else {}
    saes = {"s": sae_at(tmp_path, "s", HOOK, D, 64, arch, normalize_activations=norm,
                        apply_b_dec_to_input=b_dec, seed=1, **kw),
            "c": sae_at(tmp_path, "c", HOOK, D, 48, "jumprelu", seed=2)}
    ivs = _interventions()
    cfg = stub_config(D)
    hooks = build_hooks(program(*ivs, saes=saes), saes, cfg, adapter_for(cfg))
    assert len(hooks.hooks) == 1
    x = 3.0 * torch.randn(2, 6, D, generator=torch.Generator().manual_seed(0)) + 0.5
    got = hooks.hooks[0](x, POSITIONS[phase])
    want = naive_point(x, ivs, saes, phase)
    torch.testing.assert_close(got.double(), want, rtol=1e-5, atol=1e-5)
    # The test is only meaningful if features fire on some tokens and not on others.
    for idx in (1, 5, 9):
        a, _ = encode_one(x, saes["s"], idx)
        assert (a > 0).any() or arch == "topk"
    a_all = torch.stack([encode_one(x, saes["s"], i)[0] for i in (1, 5, 9, 12)])
    assert (a_all > 0).any() and (a_all == 0).any()
    ca, _ = encode_one(x, saes["c"], 10)
    assert (ca > 0.1).any() and (ca <= 0.1).any()


def test_naive_encode_matches_loader(tmp_path):
    """The naive reference agrees with the SAE loader's own encode (two independent readings)."""
    for arch in ("standard", "jumprelu", "gated", "topk"):
        sae = sae_at(tmp_path, arch, HOOK, D, 64, arch, k=8 if arch == "topk" else None,
                     normalize_activations="layer_norm", apply_b_dec_to_input=True)
        x = 2.0 * torch.randn(3, D)
        f = sae.encode(x).double()
        for i in (0, 3, 17):
            torch.testing.assert_close(f[:, i], encode_one(x, sae, i)[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("arch,norm,b_dec", CASES)
def test_hook_group_computes_the_loaders_activations(tmp_path, arch, norm, b_dec):
    """One copy of the encoder math (modeling_steerc's): a shipped FeatureGroup and
    SAE.encode agree up to the rounding of a matmul over fewer columns, and exactly for TopK
    (whose group carries the full encoder); the scale s is the same factor decode uses."""
    sae = sae_at(tmp_path, "s", HOOK, D, 64, arch, k=8 if arch == "topk" else None,
                 normalize_activations=norm, apply_b_dec_to_input=b_dec, seed=3)
    idx = [1, 5, 9, 12]
    ivs = [iv(Op.SET, "s", i, 1.0, HOOK) for i in idx]
    cfg = stub_config(D)
    hooks = build_hooks(program(*ivs, saes={"s": sae}), {"s": sae}, cfg, adapter_for(cfg))
    x = 3.0 * torch.randn(2, 6, D, generator=torch.Generator().manual_seed(4)) + 0.5
    a, s = hooks.hooks[0].groups[0](x)
    want = sae.encode(x)[..., idx]
    if arch == "topk":
        assert torch.equal(a, want)
    else:
        torch.testing.assert_close(a, want, rtol=1e-6, atol=1e-6)
    # decode(f + e_i) - decode(f) = s * d_i: the factor a hook scales its edits by
    f = sae.encode(x)
    bumped = f.clone()
    bumped[..., idx[0]] += 1.0
    torch.testing.assert_close(sae.decode(bumped, x) - sae.decode(f, x), s * sae.W_dec[idx[0]],
                               rtol=1e-4, atol=1e-4)


def test_only_adds_and_ablations_need_no_encoder(tmp_path):
    saes = {"s": sae_at(tmp_path, "s", HOOK, D)}
    ivs = [iv(Op.ADD, "s", 2, 4.0, HOOK), iv(Op.PROJECT_OUT, "s", 2, 0.0, HOOK)]
    cfg = stub_config(D)
    hooks = build_hooks(program(*ivs, saes=saes), saes, cfg, adapter_for(cfg))
    assert len(hooks.hooks[0].groups) == 0
    x = torch.randn(1, 4, D)
    out = hooks.hooks[0](x)
    torch.testing.assert_close(out.double(), naive_point(x, ivs, saes), rtol=1e-5, atol=1e-5)
    u = saes["s"].W_dec[2] / saes["s"].W_dec[2].norm()
    assert (out @ u).abs().max() < 1e-5
