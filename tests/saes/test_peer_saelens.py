"""Peer check against the real `sae_lens` package, when it is importable (it is not a
dependency: it pins other torch/transformers versions, so this test is normally skipped)."""

from __future__ import annotations

import pytest
import torch

from steerc.saes import SAEConfig, load_sae, save_saelens

sae_lens = pytest.importorskip("sae_lens")


@pytest.mark.parametrize("arch", ["standard", "jumprelu", "topk", "gated"])
@pytest.mark.parametrize("norm", ["none", "layer_norm", "constant_norm_rescale"])
def test_matches_sae_lens(tmp_path, arch, norm):
    g = torch.Generator().manual_seed(0)
    d_in, d_sae = 8, 24
    t = {"W_enc": torch.randn(d_in, d_sae, generator=g), "W_dec": torch.randn(d_sae, d_in, generator=g),
         "b_dec": torch.randn(d_in, generator=g)}
    if arch == "gated":
        t.update(b_gate=torch.randn(d_sae, generator=g), r_mag=0.1 * torch.randn(d_sae, generator=g),
                 b_mag=torch.randn(d_sae, generator=g))
    else:
        t["b_enc"] = torch.randn(d_sae, generator=g)
    if arch == "jumprelu":
        t["threshold"] = torch.rand(d_sae, generator=g)
    cfg = SAEConfig(d_in=d_in, d_sae=d_sae, architecture=arch, hook_name="blocks.0.hook_resid_post",
                    k=5 if arch == "topk" else None, apply_b_dec_to_input=True, normalize_activations=norm)
    save_saelens(t, cfg, tmp_path)
    theirs = sae_lens.SAE.load_from_disk(str(tmp_path), device="cpu")
    ours = load_sae(tmp_path)
    x = torch.randn(5, d_in, generator=g)
    with torch.no_grad():
        torch.testing.assert_close(ours.encode(x), theirs.encode(x), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(ours.forward(x), theirs(x), rtol=1e-5, atol=1e-5)
