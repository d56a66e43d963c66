"""Property: select(idx) equals slicing the full tensors, for any index list (order, repeats)."""

from __future__ import annotations

import torch
from hypothesis import given, settings, strategies as st
from safetensors.torch import save_file

from steerc.saes import SAEConfig, load_sae, save_saelens

D_IN, D_SAE = 5, 23


def _dirs(tmp):
    g = torch.Generator().manual_seed(0)
    t = {"W_enc": torch.randn(D_IN, D_SAE, generator=g), "W_dec": torch.randn(D_SAE, D_IN, generator=g),
         "b_enc": torch.randn(D_SAE, generator=g), "b_dec": torch.randn(D_IN, generator=g),
         "threshold": torch.rand(D_SAE, generator=g)}
    cfg = SAEConfig(d_in=D_IN, d_sae=D_SAE, architecture="jumprelu", hook_name="blocks.0.hook_resid_post")
    a = save_saelens(t, cfg, tmp / "saelens")
    b = tmp / "ls"
    (b / "checkpoints").mkdir(parents=True)
    save_file({"encoder.weight": t["W_enc"].T.contiguous().to(torch.bfloat16),
               "encoder.bias": t["b_enc"], "decoder.weight": t["W_dec"].T.contiguous().to(torch.bfloat16),
               "decoder.bias": t["b_dec"]}, str(b / "checkpoints/final.safetensors"))
    (b / "hyperparams.json").write_text(
        '{"d_model": 5, "d_sae": 23, "act_fn": "relu", "norm_activation": "inference",'
        ' "sparsity_include_decoder_norm": false, "hook_point_in": "blocks.1.hook_resid_post"}')
    return a, b


def test_select_matches_full_slices(tmp_path):
    paths = _dirs(tmp_path)
    full = [load_sae(p) for p in paths]

    @settings(max_examples=60, deadline=None)
    @given(st.lists(st.integers(0, D_SAE - 1), min_size=0, max_size=8))
    def check(idx):
        for p, f in zip(paths, full):
            sl = load_sae(p).select(idx)
            assert torch.equal(sl.W_enc, f.W_enc[:, idx])
            assert torch.equal(sl.W_dec, f.W_dec[idx])
            assert torch.equal(sl.b_enc, f.b_enc[idx])
            assert torch.equal(load_sae(p).decoder_rows(idx), f.W_dec[idx])

    check()
