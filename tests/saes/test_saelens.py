"""SAELens folders: every architecture and normalisation, three config generations."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from steerc.saes import SAEConfig, load_sae, save_saelens
import sae_reference as ref

D_IN, D_SAE = 12, 40


def tensors(arch, seed=0):
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g)  # noqa: E731
    t = {"W_enc": r(D_IN, D_SAE) / 3, "W_dec": r(D_SAE, D_IN) * (0.5 + torch.rand(D_SAE, 1, generator=g)),
         "b_dec": 0.3 * r(D_IN)}
    if arch == "gated":
        t.update(b_gate=0.2 * r(D_SAE), r_mag=0.3 * r(D_SAE), b_mag=0.2 * r(D_SAE))
    else:
        t["b_enc"] = 0.2 * r(D_SAE)
    if arch == "jumprelu":
        t["threshold"] = 0.3 * torch.rand(D_SAE, generator=g)
    return t


def write(folder, t, cfg):
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in t.items()}, str(folder / "sae_weights.safetensors"))
    (folder / "cfg.json").write_text(json.dumps(cfg))
    return folder


def v6_cfg(arch, norm="none", apply_b_dec=True, k=None, rescale=False, hook="blocks.3.hook_resid_post"):
    c = {"d_in": D_IN, "d_sae": D_SAE, "dtype": "float32", "device": "cpu",
         "apply_b_dec_to_input": apply_b_dec, "normalize_activations": norm,
         "reshape_activations": "none", "architecture": arch,
         "metadata": {"sae_lens_version": "6.18.0", "model_name": "m", "hook_name": hook,
                      "hook_head_index": None}}
    if arch == "topk":
        c.update(k=k, rescale_acts_by_decoder_norm=rescale)
    return c


X = torch.randn(3, 5, D_IN, generator=torch.Generator().manual_seed(9)) * 2


def check(sae, t, arch, **kw):
    f_ref, xhat_ref = ref.saelens(X, t, arch, **kw)
    f = sae.encode(X)
    assert f.shape == (3, 5, D_SAE)
    torch.testing.assert_close(f.double(), f_ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(sae.decode(f, X).double(), xhat_ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(sae.forward(X).double(), xhat_ref, rtol=1e-5, atol=1e-5)
    assert (f > 0).any() and (f == 0).any()  # features fire and some do not


@pytest.mark.parametrize("arch", ["standard", "jumprelu", "gated", "topk"])
@pytest.mark.parametrize("norm", ["none", "constant_norm_rescale", "layer_norm"])
@pytest.mark.parametrize("apply_b_dec", [False, True])
def test_v6_every_arch_and_norm(tmp_path, arch, norm, apply_b_dec):
    t = tensors(arch)
    k = 7 if arch == "topk" else None
    write(tmp_path, t, v6_cfg(arch, norm, apply_b_dec, k=k))
    sae = load_sae(tmp_path)
    assert (sae.cfg.architecture, sae.cfg.normalize_activations) == (arch, norm)
    check(sae, t, arch, apply_b_dec=apply_b_dec, norm=norm, k=k)
    if arch == "topk":
        assert int((sae.encode(X) > 0).sum(-1).max()) <= k


def test_topk_rescale_acts_by_decoder_norm_is_folded_exactly(tmp_path):
    t = tensors("topk")
    write(tmp_path, t, v6_cfg("topk", k=5, rescale=True))
    sae = load_sae(tmp_path)
    check(sae, t, "topk", apply_b_dec=True, k=5, rescale=True)
    torch.testing.assert_close(sae.W_dec.norm(dim=1), torch.ones(D_SAE))  # folded to unit rows


def test_expected_average_only_in_folds_the_scaling_factor(tmp_path):
    t = tensors("jumprelu")
    write(tmp_path, t, v6_cfg("jumprelu", "expected_average_only_in"))
    sae = load_sae(tmp_path, norm_scaling_factor=0.37)
    assert sae.cfg.normalize_activations == "none"  # folded into the weights
    check(sae, t, "jumprelu", apply_b_dec=True, norm="expected_average_only_in", scale=0.37)


def test_legacy_flat_v5_config_topk(tmp_path):
    t = tensors("topk")
    cfg = {"architecture": "standard", "d_in": D_IN, "d_sae": D_SAE, "dtype": "float32",
           "device": "cpu", "model_name": "gpt2", "hook_name": "blocks.8.hook_resid_pre",
           "hook_layer": 8, "hook_head_index": None, "activation_fn_str": "topk",
           "activation_fn_kwargs": {"k": 6}, "apply_b_dec_to_input": False,
           "finetuning_scaling_factor": False, "sae_lens_training_version": "5.10.0",
           "normalize_activations": "none", "neuronpedia_id": None}
    sae = load_sae(write(tmp_path, t, cfg))
    assert (sae.cfg.architecture, sae.cfg.k, sae.hook_name) == ("topk", 6, "blocks.8.hook_resid_pre")
    check(sae, t, "topk", apply_b_dec=False, k=6)


def test_legacy_v2_hook_point_and_torch_dtype_string(tmp_path):
    t = tensors("standard")
    cfg = {"d_in": D_IN, "d_sae": D_SAE, "dtype": "torch.float32", "hook_point": "blocks.2.hook_resid_pre",
           "hook_point_layer": 2, "hook_point_head_index": None, "activation_fn": "relu",
           "expansion_factor": 4, "lr": 4e-4, "normalize_activations": None}
    sae = load_sae(write(tmp_path, t, cfg))
    # legacy default: apply_b_dec_to_input = True, architecture standard
    assert sae.cfg.apply_b_dec_to_input and sae.hook_name == "blocks.2.hook_resid_pre"
    check(sae, t, "standard", apply_b_dec=True)


def test_legacy_normalize_true_means_expected_average(tmp_path):
    t = tensors("standard")
    cfg = {"d_in": D_IN, "d_sae": D_SAE, "dtype": "float32", "hook_name": "blocks.2.hook_resid_pre",
           "normalize_activations": True, "norm_scaling_factor": 2.5}
    sae = load_sae(write(tmp_path, t, cfg))
    check(sae, t, "standard", apply_b_dec=True, norm="expected_average_only_in", scale=2.5)


def test_bf16_dtype_string_casts(tmp_path):
    t = tensors("standard")
    cfg = v6_cfg("standard")
    cfg["dtype"] = "bfloat16"
    sae = load_sae(write(tmp_path, t, cfg))
    assert sae.W_enc.dtype == torch.bfloat16 and sae.cfg.dtype == "bfloat16"
    assert torch.equal(sae.W_enc, t["W_enc"].to(torch.bfloat16))


@pytest.mark.parametrize("arch", ["standard", "jumprelu", "gated", "topk"])
def test_select_equals_slicing_full_tensors(tmp_path, arch):
    t = tensors(arch)
    write(tmp_path, t, v6_cfg(arch, k=4 if arch == "topk" else None))
    idx = [17, 3, 39, 0]
    lazy = load_sae(tmp_path).select(idx)  # nothing loaded yet: lazy path
    full = load_sae(tmp_path)
    _ = full.W_enc  # full tensors cached: slicing path
    for sl in (lazy, full.select(idx)):
        assert sl.indices == tuple(idx) and sl.architecture == arch
        assert torch.equal(sl.W_enc, t["W_enc"][:, idx])
        assert torch.equal(sl.W_dec, t["W_dec"][idx])
        assert torch.equal(sl.b_dec, t["b_dec"])
        assert torch.equal(sl.b_enc, t["b_gate" if arch == "gated" else "b_enc"][idx])
        if arch == "jumprelu":
            assert torch.equal(sl.threshold, t["threshold"][idx])
        if arch == "gated":
            assert torch.equal(sl.r_mag, t["r_mag"][idx]) and torch.equal(sl.b_mag, t["b_mag"][idx])
        if arch == "topk":
            assert torch.equal(sl.full_W_enc, t["W_enc"]) and sl.k == 4
        else:
            assert sl.full_W_enc is None
    assert torch.equal(load_sae(tmp_path).decoder_rows([5, 2]), t["W_dec"][[5, 2]])


def test_select_reads_no_whole_tensor(tmp_path, monkeypatch):
    t = tensors("jumprelu")
    write(tmp_path, t, v6_cfg("jumprelu"))
    sae = load_sae(tmp_path)
    read = []
    orig = type(sae.store).get
    monkeypatch.setattr(type(sae.store), "get", lambda self, k: read.append(k) or orig(self, k))
    sl = sae.select([1, 2, 3])
    assert set(read) <= {"b_dec"}  # only the [d_in] bias is read whole
    assert torch.equal(sl.W_enc, t["W_enc"][:, [1, 2, 3]])


def test_pre_activation(tmp_path):
    t = tensors("jumprelu")
    write(tmp_path, t, v6_cfg("jumprelu", apply_b_dec=True))
    sae = load_sae(tmp_path)
    want = (X.double() - ref.d(t["b_dec"])) @ ref.d(t["W_enc"]) + ref.d(t["b_enc"])
    torch.testing.assert_close(sae.pre_activation(X).double(), want, rtol=1e-5, atol=1e-5)


def test_sha256_is_content_addressed(tmp_path):
    t = tensors("jumprelu")
    a = load_sae(write(tmp_path / "a", t, v6_cfg("jumprelu"))).sha256()
    b = load_sae(write(tmp_path / "b", dict(reversed(list(t.items()))), v6_cfg("jumprelu"))).sha256()
    assert a == b and len(a) == 64
    t2 = dict(t, threshold=t["threshold"].clone())
    t2["threshold"][0] += 1e-3
    assert load_sae(write(tmp_path / "c", t2, v6_cfg("jumprelu"))).sha256() != a
    assert load_sae(write(tmp_path / "d", t, v6_cfg("jumprelu", hook="blocks.4.hook_resid_post"))).sha256() != a


def test_save_saelens_round_trip(tmp_path):
    t = tensors("gated")
    sae = load_sae(write(tmp_path / "src", t, v6_cfg("gated", "layer_norm")))
    out = save_saelens(sae, None, tmp_path / "out")
    cfg = json.loads((out / "cfg.json").read_text())
    assert cfg["metadata"]["sae_lens_version"].startswith("6.") and cfg["architecture"] == "gated"
    again = load_sae(out)
    assert again.cfg == sae.cfg
    torch.testing.assert_close(again.encode(X), sae.encode(X))


def test_save_saelens_from_raw_tensors(tmp_path):
    t = tensors("topk")
    cfg = SAEConfig(d_in=D_IN, d_sae=D_SAE, architecture="topk", hook_name="blocks.1.hook_resid_post", k=3)
    sae = load_sae(save_saelens(t, cfg, tmp_path))
    assert sae.cfg.k == 3 and not sae.cfg.apply_b_dec_to_input
    check(sae, t, "topk", apply_b_dec=False, k=3)


def test_v6_defaults_follow_sae_lens_dataclasses(tmp_path):
    t = tensors("topk")
    cfg = v6_cfg("topk", k=None)
    for key in ("apply_b_dec_to_input", "k", "rescale_acts_by_decoder_norm"):
        cfg.pop(key)
    sae = load_sae(write(tmp_path, t, cfg))
    assert sae.cfg.apply_b_dec_to_input is True and sae.cfg.k == 100  # SAELens 6 defaults
