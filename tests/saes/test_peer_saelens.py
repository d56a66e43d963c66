"""Peer check against the real `sae_lens` package, when it is importable (it is not a
dependency: it pins other torch/transformers versions, so this test is normally skipped)."""

from __future__ import annotations

import pytest
import torch

from steerc.saes import SAEConfig, load_sae, save_saelens

sae_lens = pytest.importorskip("sae_lens")


def assert_same(ours, theirs, x) -> None:
    """steerc's SAE and SAELens's encode and reconstruct x [n, d_in] alike."""
    with torch.no_grad():
        torch.testing.assert_close(ours.encode(x), theirs.encode(x), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(ours.forward(x), theirs(x), rtol=1e-5, atol=1e-5)


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
    assert_same(ours, theirs, x)


# ---- SAELens's own converters for the other layouts, fed local files -----------------------
def _sl_from_loader(monkeypatch, root, loader_name, repo_id, folder, overrides, fold=None):
    """Run a sae_lens.loading conversion loader with hf_hub_download redirected to `root`."""
    from sae_lens.loading import pretrained_sae_loaders as L
    from sae_lens.loading.pretrained_sae_loaders import handle_config_defaulting

    def fake_download(repo_id, filename=None, *, subfolder=None, **_):
        return str(root / (subfolder or "") / filename)

    monkeypatch.setattr(L, "hf_hub_download", fake_download)
    cfg, state, _ = getattr(L, loader_name)(repo_id, folder, device="cpu", cfg_overrides=overrides)
    cfg = handle_config_defaulting(cfg)
    sae = sae_lens.SAE.from_dict(cfg)
    sae.process_state_dict_for_loading(state)
    sae.load_state_dict(state)
    if fold is not None:
        sae.fold_activation_norm_scaling_factor(fold)
    return sae


def test_gemma_scope_res_and_embedding_match_sae_lens(tmp_path, monkeypatch):
    import numpy as np

    g = torch.Generator().manual_seed(1)
    d_in, d_sae = 8, 24
    for folder in ("layer_3/width_16k/average_l0_50", "embedding/width_4k/average_l0_6"):
        p = tmp_path / "gemma-scope-2b-pt-res" / folder / "params.npz"
        p.parent.mkdir(parents=True)
        t = {"W_enc": torch.randn(d_in, d_sae, generator=g), "W_dec": torch.randn(d_sae, d_in, generator=g),
             "b_enc": torch.randn(d_sae, generator=g), "b_dec": torch.zeros(d_in),  # SAELens leaves b_dec unscaled
             "threshold": torch.rand(d_sae, generator=g)}
        np.savez(p, **{k: v.numpy() for k, v in t.items()})
        theirs = _sl_from_loader(monkeypatch, tmp_path / "gemma-scope-2b-pt-res", "gemma_2_sae_huggingface_loader",
                                 "google/gemma-scope-2b-pt-res", folder, {"d_in": d_in, "d_sae": d_sae})
        ours = load_sae(p)
        assert ours.hook_name == theirs.cfg.metadata.hook_name
        x = 3 * torch.randn(5, d_in, generator=g)
        assert_same(ours, theirs, x)


def test_goodfire_matches_sae_lens(tmp_path, monkeypatch):
    g = torch.Generator().manual_seed(2)
    d_in, d_sae = 8, 24
    name = "Llama-3.1-8B-Instruct-SAE-l19.pth"
    torch.save({"encoder_linear.weight": torch.randn(d_sae, d_in, generator=g),
                "encoder_linear.bias": torch.randn(d_sae, generator=g),
                "decoder_linear.weight": torch.randn(d_in, d_sae, generator=g),
                "decoder_linear.bias": torch.randn(d_in, generator=g)}, tmp_path / name)
    theirs = _sl_from_loader(monkeypatch, tmp_path, "get_goodfire_huggingface_loader",
                             "Goodfire/Llama-3.1-8B-Instruct-SAE-l19", name, {"d_in": d_in, "d_sae": d_sae})
    ours = load_sae(tmp_path / name, allow_pickle=True)
    assert ours.hook_name == theirs.cfg.metadata.hook_name
    x = torch.randn(5, d_in, generator=g)
    assert_same(ours, theirs, x)


def test_llama_scope_agrees_with_sae_lens_when_decoder_is_unit_norm(tmp_path, monkeypatch):
    """SAELens ignores decoder norms and reports activations in the s_in-scaled space; with
    unit-norm decoder columns the reconstructions agree and activations differ by s_in."""
    import json
    import math

    from safetensors.torch import save_file

    g = torch.Generator().manual_seed(3)
    d_in, d_sae, norm, theta = 16, 40, 2.5, 0.05
    dec = torch.randn(d_in, d_sae, generator=g)
    folder = "Llama3_1-8B-Base-L9R-8x"
    (tmp_path / folder / "checkpoints").mkdir(parents=True)
    save_file({"encoder.weight": torch.randn(d_sae, d_in, generator=g) / 2,
               "encoder.bias": 0.3 * torch.randn(d_sae, generator=g),
               "decoder.weight": dec / dec.norm(dim=0, keepdim=True),
               "decoder.bias": 0.3 * torch.randn(d_in, generator=g)},
              str(tmp_path / folder / "checkpoints/final.safetensors"))
    hp = {"d_model": d_in, "d_sae": d_sae, "act_fn": "jumprelu", "jump_relu_threshold": theta,
          "norm_activation": "dataset-wise", "dataset_average_activation_norm": {"in": norm, "out": norm},
          "hook_point_in": "blocks.9.hook_resid_post", "hook_point_out": "blocks.9.hook_resid_post",
          "use_decoder_bias": True, "apply_decoder_bias_to_pre_encoder": False}
    (tmp_path / folder / "hyperparams.json").write_text(json.dumps(hp))
    s_in = math.sqrt(d_in) / norm
    theirs = _sl_from_loader(monkeypatch, tmp_path, "llama_scope_sae_huggingface_loader",
                             "fnlp/Llama3_1-8B-Base-LXR-8x", folder, {"dtype": "float32"}, fold=s_in)
    ours = load_sae(tmp_path / folder)
    x = 2 * torch.randn(6, d_in, generator=g)
    with torch.no_grad():
        f = ours.encode(x)
        assert (f > 0).any() and (f == 0).any()
        torch.testing.assert_close(theirs.encode(x), s_in * f, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(ours.forward(x), theirs(x), rtol=1e-4, atol=1e-5)


def test_legacy_v5_topk_and_rescaled_topk_match_sae_lens(tmp_path):
    import json

    from safetensors.torch import save_file

    g = torch.Generator().manual_seed(4)
    d_in, d_sae = 8, 24
    t = {"W_enc": torch.randn(d_in, d_sae, generator=g), "W_dec": torch.randn(d_sae, d_in, generator=g) * 3,
         "b_enc": torch.randn(d_sae, generator=g), "b_dec": torch.randn(d_in, generator=g)}
    cfgs = {
        "v5": {"architecture": "standard", "d_in": d_in, "d_sae": d_sae, "dtype": "torch.float32",
               "hook_name": "blocks.2.hook_resid_pre", "hook_layer": 2, "hook_head_index": None,
               "activation_fn_str": "topk", "activation_fn_kwargs": {"k": 4}, "apply_b_dec_to_input": True,
               "normalize_activations": "none", "model_name": "gpt2", "sae_lens_training_version": "5.10.0"},
        "rescale": {"d_in": d_in, "d_sae": d_sae, "dtype": "float32", "architecture": "topk", "k": 4,
                    "rescale_acts_by_decoder_norm": True, "apply_b_dec_to_input": True,
                    "normalize_activations": "none",
                    "metadata": {"sae_lens_version": "6.18.0", "hook_name": "blocks.2.hook_resid_pre"}},
    }
    for name, cfg in cfgs.items():
        d = tmp_path / name
        d.mkdir()
        save_file(t, str(d / "sae_weights.safetensors"))
        (d / "cfg.json").write_text(json.dumps(cfg))
        theirs = sae_lens.SAE.load_from_disk(str(d), device="cpu")
        ours = load_sae(d)
        x = torch.randn(5, d_in, generator=g)
        assert_same(ours, theirs, x)
