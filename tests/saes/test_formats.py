"""The five non-SAELens layouts, each written by the test in its real on-disk form."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

import sae_reference as ref
from steerc.diagnostics import DiagnosticError
from steerc.saes import detect_format, load_sae

D_IN, D_SAE = 10, 36
G = torch.Generator().manual_seed(1)
X = torch.randn(4, 3, D_IN, generator=G) * 1.5


def rnd(*s):
    return torch.randn(*s, generator=G)


def close(a, b):
    # fp32 against a float64 reference: the absolute error grows with the size of the terms
    # summed (inputs are scaled x10 below, outputs reach ~200), so atol follows that scale.
    b = b.double()
    scale = max(1.0, float(b.abs().max()))
    torch.testing.assert_close(a.double(), b, rtol=1e-5, atol=1e-5 * scale)


# ---- Gemma Scope ------------------------------------------------------------------------
def gemma_params():
    return {"W_enc": rnd(D_IN, D_SAE) / 2, "W_dec": rnd(D_SAE, D_IN), "b_enc": 0.2 * rnd(D_SAE),
            "b_dec": 0.3 * rnd(D_IN), "threshold": 0.4 * torch.rand(D_SAE, generator=G)}


def write_npz(path, t, compressed=False):
    path.parent.mkdir(parents=True, exist_ok=True)
    (np.savez_compressed if compressed else np.savez)(path, **{k: v.numpy() for k, v in t.items()})
    return path


def jumprelu(x, t):
    pre = ref.d(x) @ ref.d(t["W_enc"]) + ref.d(t["b_enc"])
    return torch.where(pre > ref.d(t["threshold"]), pre, torch.zeros_like(pre)).clamp(min=0)


@pytest.mark.parametrize("compressed", [False, True])
def test_gemma_scope_res(tmp_path, compressed):
    t = gemma_params()
    p = write_npz(tmp_path / "gemma-scope-2b-pt-res/layer_7/width_16k/average_l0_50/params.npz", t, compressed)
    assert detect_format(p.parent) == "gemma_scope"
    sae = load_sae(p.parent)
    assert (sae.hook_name, sae.cfg.architecture, sae.cfg.apply_b_dec_to_input) == \
        ("blocks.7.hook_resid_post", "jumprelu", False)
    f = sae.encode(X)
    close(f, jumprelu(X, t))
    close(sae.decode(f), jumprelu(X, t) @ ref.d(t["W_dec"]) + ref.d(t["b_dec"]))
    sl = load_sae(p).select([4, 0, 35])
    assert torch.equal(sl.W_enc, t["W_enc"][:, [4, 0, 35]]) and torch.equal(sl.threshold, t["threshold"][[4, 0, 35]])
    assert torch.equal(sl.W_dec, t["W_dec"][[4, 0, 35]])


def test_gemma_scope_mlp_att_and_explicit_hook(tmp_path):
    t = gemma_params()
    m = write_npz(tmp_path / "gemma-scope-9b-pt-mlp/layer_3/width_16k/average_l0_9/params.npz", t)
    assert load_sae(m).hook_name == "blocks.3.hook_mlp_out"
    a = write_npz(tmp_path / "gemma-scope-2b-pt-att/layer_2/width_16k/average_l0_9/params.npz", t)
    sae = load_sae(a)
    assert sae.hook_name == "blocks.2.attn.hook_z" and sae.cfg.reshape_activations == "hook_z"
    bare = write_npz(tmp_path / "copy/params.npz", t)
    with pytest.raises(DiagnosticError, match=r"E311.*params.npz.*holds no hook name"):
        load_sae(bare)
    assert load_sae(bare, hook_name="blocks.5.hook_resid_post").hook_name == "blocks.5.hook_resid_post"


def test_gemma_scope_embedding_rescaled_for_tl_hook_embed(tmp_path):
    t = gemma_params()
    p = write_npz(tmp_path / "gemma-scope-2b-pt-res/embedding/width_4k/average_l0_6/params.npz", t)
    sae = load_sae(p)
    assert sae.hook_name == "hook_embed"
    s = math.sqrt(D_IN)
    x_tl = X * s  # TL hook_embed = HF embed_tokens output * sqrt(d_model)
    f = sae.encode(x_tl)
    close(f, jumprelu(X, t))  # the raw params expect the unscaled HF embedding
    close(sae.decode(f), s * (jumprelu(X, t) @ ref.d(t["W_dec"]) + ref.d(t["b_dec"])))


def test_gemma_scope_lowercase_keys(tmp_path):
    t = gemma_params()
    t["w_enc"], t["w_dec"] = t.pop("W_enc"), t.pop("W_dec")
    sae = load_sae(write_npz(tmp_path / "gemma-scope-2b-pt-res/layer_1/w/params.npz", t))
    assert torch.equal(sae.W_enc, t["w_enc"])


# ---- sparsify ---------------------------------------------------------------------------
def write_sparsify(folder, k=5, **cfg_extra):
    t = {"encoder.weight": rnd(D_SAE, D_IN) / 2, "encoder.bias": 0.2 * rnd(D_SAE),
         "W_dec": rnd(D_SAE, D_IN), "b_dec": 0.3 * rnd(D_IN)}
    folder.mkdir(parents=True)
    save_file(t, str(folder / "sae.safetensors"))
    cfg = {"activation": "topk", "expansion_factor": 32, "normalize_decoder": True,
           "num_latents": D_SAE, "k": k, "multi_topk": False, "skip_connection": False,
           "transcode": False, "d_in": D_IN, **cfg_extra}
    (folder / "cfg.json").write_text(json.dumps(cfg))
    return t


def sparsify_ref(x, t, k):
    pre = ((ref.d(x) - ref.d(t["b_dec"])) @ ref.d(t["encoder.weight"]).T + ref.d(t["encoder.bias"])).clamp(min=0)
    f = torch.where(ref.topk_mask(pre, k), pre, torch.zeros_like(pre))
    return f, f @ ref.d(t["W_dec"]) + ref.d(t["b_dec"])


def test_sparsify_layers_n_is_resid_post(tmp_path):
    (tmp_path / "config.json").write_text("{}")  # RunConfig at the root
    t = write_sparsify(tmp_path / "layers.4", k=5)
    assert detect_format(tmp_path / "layers.4") == "sparsify"
    sae = load_sae(tmp_path / "layers.4")
    assert (sae.hook_name, sae.cfg.k, sae.cfg.architecture) == ("blocks.4.hook_resid_post", 5, "topk")
    f_ref, xhat_ref = sparsify_ref(X, t, 5)
    f = sae.encode(X)
    close(f, f_ref)
    close(sae.decode(f), xhat_ref)
    sl = sae.select([7, 1])
    assert torch.equal(sl.W_enc, t["encoder.weight"][[7, 1]].T) and torch.equal(sl.W_dec, t["W_dec"][[7, 1]])


def test_sparsify_mlp_seed_folder_and_expansion_factor(tmp_path):
    write_sparsify(tmp_path / "layers.2.mlp" / "seed1", num_latents=0, expansion_factor=D_SAE // D_IN + 0)
    # num_latents 0 means d_in * expansion_factor; 10 * 3 = 30 != 36 -> shape error names the file
    with pytest.raises(DiagnosticError, match=r"E304.*sae.safetensors.*encoder.weight.*\[36, 10\].*\[30, 10\]"):
        load_sae(tmp_path / "layers.2.mlp" / "seed1")
    write_sparsify(tmp_path / "h.1.mlp")
    assert load_sae(tmp_path / "h.1.mlp").hook_name == "blocks.1.hook_mlp_out"


def test_sparsify_groupmax_and_transcoder_refused(tmp_path):
    write_sparsify(tmp_path / "layers.1", activation="groupmax")
    with pytest.raises(DiagnosticError, match=r"E310.*cfg.json.*groupmax"):
        load_sae(tmp_path / "layers.1")
    write_sparsify(tmp_path / "layers.3", transcode=True)
    with pytest.raises(DiagnosticError, match=r"E310.*transcode"):
        load_sae(tmp_path / "layers.3")


# ---- OpenAI -----------------------------------------------------------------------------
def write_openai(path, activation="TopK", k=4):
    t = {"pre_bias": 0.3 * rnd(D_IN), "encoder.weight": rnd(D_SAE, D_IN) / 2,
         "latent_bias": 0.2 * rnd(D_SAE), "decoder.weight": rnd(D_IN, D_SAE),
         "stats_last_nonzero": torch.zeros(D_SAE, dtype=torch.int64),
         "latents_activation_frequency": torch.rand(D_SAE, generator=G),
         "latents_mean_square": torch.rand(D_SAE, generator=G)}
    obj = dict(t, activation=activation, activation_state_dict={"k": k, "postact_fn": "ReLU"})
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(obj, path)
    return t


def openai_ref(x, t, topk, k):
    x = ref.d(x)
    if topk:
        x, mu, sd = ref.layer_norm(x)
    pre = (x - ref.d(t["pre_bias"])) @ ref.d(t["encoder.weight"]).T + ref.d(t["latent_bias"])
    z = torch.where(ref.topk_mask(pre, k), pre, torch.zeros_like(pre)).clamp(min=0) if topk else pre.clamp(min=0)
    out = z @ ref.d(t["decoder.weight"]).T + ref.d(t["pre_bias"])
    return z, (out * sd + mu if topk else out)


@pytest.mark.parametrize("activation", ["TopK", "ReLU"])
def test_openai_topk_layernorm_and_relu(tmp_path, activation):
    p = tmp_path / "resid_post_mlp_v5_32k/autoencoders/6.pt"
    t = write_openai(p, activation)
    assert detect_format(p) == "openai"
    with pytest.raises(DiagnosticError, match=r"E307.*6.pt.*--allow-pickle"):
        load_sae(p)
    sae = load_sae(p, allow_pickle=True)
    topk = activation == "TopK"
    assert sae.hook_name == "blocks.6.hook_resid_post"
    assert sae.cfg.normalize_activations == ("layer_norm" if topk else "none")
    z_ref, xhat_ref = openai_ref(X, t, topk, 4)
    close(sae.encode(X), z_ref)
    close(sae.forward(X), xhat_ref)
    sl = sae.select([3, 9])
    assert torch.equal(sl.W_dec, t["decoder.weight"][:, [3, 9]].T) and torch.equal(sl.b_enc, t["latent_bias"][[3, 9]])


def test_openai_locations_map_to_tl_hooks(tmp_path):
    for loc, hook in [("resid_delta_attn_v5_128k", "blocks.2.hook_attn_out"),
                      ("resid_post_attn_v5_32k", "blocks.2.hook_resid_mid"),
                      ("resid_delta_mlp_v4", "blocks.2.hook_mlp_out")]:
        p = tmp_path / loc / "autoencoders" / "2.pt"
        write_openai(p, "ReLU")
        assert load_sae(p, allow_pickle=True).hook_name == hook


# ---- Llama Scope ------------------------------------------------------------------------
def write_llama_scope(folder, *, norm_in=29.125, norm_out=29.125, act="jumprelu", theta=0.3, dtype=torch.float32, **extra):
    t = {"encoder.weight": rnd(D_SAE, D_IN) / 2, "encoder.bias": 0.5 * rnd(D_SAE),
         "decoder.weight": rnd(D_IN, D_SAE) * (0.3 + torch.rand(1, D_SAE, generator=G)),
         "decoder.bias": 0.3 * rnd(D_IN)}
    t = {k: v.to(dtype) for k, v in t.items()}
    (folder / "checkpoints").mkdir(parents=True)
    save_file(t, str(folder / "checkpoints/final.safetensors"))
    hp = {"d_model": D_IN, "d_sae": D_SAE, "use_decoder_bias": True, "apply_decoder_bias_to_pre_encoder": False,
          "act_fn": act, "jump_relu_threshold": theta, "norm_activation": "dataset-wise",
          "dataset_average_activation_norm": {"in": norm_in, "out": norm_out},
          "hook_point_in": "blocks.9.hook_resid_post", "hook_point_out": "blocks.9.hook_resid_post", "top_k": 50,
          **extra}
    (folder / "hyperparams.json").write_text(json.dumps(hp))
    return t, hp


def lm_saes_reference(x, t, hp):
    """lm_saes: standardize_parameters_of_dataset_norm, then encode with decoder norms in the
    sparsity score, mask = score > theta, f = hidden_pre * mask, x_hat = decoder(f)."""
    s_in = math.sqrt(hp["d_model"]) / hp["dataset_average_activation_norm"]["in"]
    s_out = math.sqrt(hp["d_model"]) / hp["dataset_average_activation_norm"]["out"]
    W_e, b_e = ref.d(t["encoder.weight"]), ref.d(t["encoder.bias"]) / s_in
    W_d, b_d = ref.d(t["decoder.weight"]) * s_in / s_out, ref.d(t["decoder.bias"]) / s_out
    hidden_pre = ref.d(x) @ W_e.T + b_e
    score = hidden_pre * W_d.norm(dim=0)
    f = hidden_pre * (score > hp["jump_relu_threshold"])
    return f, score * (score > hp["jump_relu_threshold"]), f @ W_d.T + b_d


@pytest.mark.parametrize("norms", [(29.125, 29.125), (64.0, 3.390625)])
def test_llama_scope_matches_lm_saes_reference(tmp_path, norms):
    t, hp = write_llama_scope(tmp_path / "L9R", norm_in=norms[0], norm_out=norms[1], theta=0.05)
    assert detect_format(tmp_path / "L9R") == "llama_scope"
    sae = load_sae(tmp_path / "L9R")
    assert (sae.hook_name, sae.cfg.architecture) == ("blocks.9.hook_resid_post", "jumprelu")
    f_lm, score_lm, xhat_lm = lm_saes_reference(X * 10, t, hp)
    f = sae.encode(X * 10)
    assert (f > 0).any() and (f == 0).any()
    close(f, score_lm)  # steerc's folded activation = lm_saes activation * |decoder column|
    close(sae.decode(f), xhat_lm)
    torch.testing.assert_close(sae.W_dec.norm(dim=1), torch.ones(D_SAE))
    sl = load_sae(tmp_path / "L9R").select([2, 30])
    torch.testing.assert_close(sl.W_enc, sae.W_enc[:, [2, 30]])
    torch.testing.assert_close(sl.W_dec, sae.W_dec[[2, 30]])
    torch.testing.assert_close(sl.b_enc, sae.b_enc[[2, 30]])


def test_llama_scope_transcoder_refused_and_bf16_read(tmp_path):
    write_llama_scope(tmp_path / "tc", hook_point_in="blocks.8.ln2.hook_normalized",
                      hook_point_out="blocks.8.hook_mlp_out")
    with pytest.raises(DiagnosticError, match=r"E310.*hyperparams.json.*transcoder"):
        load_sae(tmp_path / "tc")
    t, hp = write_llama_scope(tmp_path / "bf", dtype=torch.bfloat16, theta=0.05)
    sae = load_sae(tmp_path / "bf")
    _, score_lm, xhat_lm = lm_saes_reference(X * 10, t, hp)
    close(sae.encode(X * 10), score_lm)
    # x_hat sums O(100)-sized fp32 terms to O(1) values: fp32 rounding there is ~1e-5 absolute
    # and varies with the SIMD path (seen 2.1e-5 depending on which tests ran first)
    torch.testing.assert_close(sae.forward(X * 10).double(), xhat_lm.double(), rtol=1e-5, atol=1e-4)


def test_llama_scope_decoder_norm_report(tmp_path):
    from steerc.saes.formats.llama_scope import decoder_norm_report

    write_llama_scope(tmp_path / "a")
    assert decoder_norm_report(load_sae(tmp_path / "a")) > 0.01  # random decoder: not unit-norm


# ---- Goodfire ---------------------------------------------------------------------------
def test_goodfire_pth(tmp_path):
    t = {"encoder_linear.weight": rnd(D_SAE, D_IN), "encoder_linear.bias": 0.2 * rnd(D_SAE),
         "decoder_linear.weight": rnd(D_IN, D_SAE), "decoder_linear.bias": 0.3 * rnd(D_IN)}
    p = tmp_path / "Llama-3.1-8B-Instruct-SAE-l19" / "Llama-3.1-8B-Instruct-SAE-l19.pth"
    p.parent.mkdir()
    torch.save(t, p)
    assert detect_format(p) == "goodfire" and detect_format(p.parent) == "goodfire"
    with pytest.raises(DiagnosticError, match=r"E307.*SAE-l19.pth.*--allow-pickle"):
        load_sae(p)
    sae = load_sae(p.parent, allow_pickle=True)
    assert (sae.hook_name, sae.d_in, sae.d_sae) == ("blocks.19.hook_resid_post", D_IN, D_SAE)
    f_ref = (ref.d(X) @ ref.d(t["encoder_linear.weight"]).T + ref.d(t["encoder_linear.bias"])).clamp(min=0)
    close(sae.encode(X), f_ref)
    close(sae.decode(sae.encode(X)), f_ref @ ref.d(t["decoder_linear.weight"]).T + ref.d(t["decoder_linear.bias"]))
    assert torch.equal(sae.decoder_rows([4]), t["decoder_linear.weight"][:, [4]].T)
