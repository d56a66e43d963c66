"""Every E3xx diagnostic: the code, the file and the key appear in the message."""

from __future__ import annotations

import json
import struct

import pytest
import torch
from safetensors.torch import save_file

from steerc.diagnostics import DiagnosticError
from steerc.saes import check_d_model, load_sae

D_IN, D_SAE = 6, 16


def saelens_dir(tmp_path, arch="jumprelu", drop=(), tweak=None, cfg_edit=None):
    g = torch.Generator().manual_seed(0)
    t = {"W_enc": torch.randn(D_IN, D_SAE, generator=g), "W_dec": torch.randn(D_SAE, D_IN, generator=g),
         "b_enc": torch.randn(D_SAE, generator=g), "b_dec": torch.randn(D_IN, generator=g),
         "threshold": torch.rand(D_SAE, generator=g)}
    if tweak:
        tweak(t)
    for k in drop:
        t.pop(k)
    cfg = {"d_in": D_IN, "d_sae": D_SAE, "dtype": "float32", "architecture": arch,
           "apply_b_dec_to_input": False, "normalize_activations": "none",
           "metadata": {"sae_lens_version": "6.18.0", "hook_name": "blocks.1.hook_resid_post"}}
    if cfg_edit:
        cfg_edit(cfg)
    tmp_path.mkdir(parents=True, exist_ok=True)
    save_file(t, str(tmp_path / "sae_weights.safetensors"))
    (tmp_path / "cfg.json").write_text(json.dumps(cfg))
    return tmp_path


def fails(code, pattern, fn, *a, **kw):
    with pytest.raises(DiagnosticError) as e:
        fn(*a, **kw)
    d = e.value.diagnostics[0]
    assert d.code == code, d
    assert pytest.importorskip("re").search(pattern, d.message), d.message
    return d


def test_missing_path_and_missing_weights(tmp_path):
    fails("E300", r"nope.*no such file", load_sae, tmp_path / "nope")
    d = saelens_dir(tmp_path / "a")
    (d / "sae_weights.safetensors").unlink()
    fails("E300", r"a/sae_weights.safetensors: file not found", load_sae, d, format="saelens")


def test_unrecognised_folder_and_unknown_format_name(tmp_path):
    (tmp_path / "x.txt").write_text("hi")
    fails("E301", r"not a recognised SAE layout.*x.txt", load_sae, tmp_path)
    d = saelens_dir(tmp_path / "s")
    diag = fails("E301", r"unknown SAE format 'saelen'", load_sae, d, format="saelen")
    assert "saelens" in diag.hint


def test_missing_tensor_key(tmp_path):
    d = fails("E302", r"sae_weights.safetensors: missing tensor 'threshold'", load_sae,
              saelens_dir(tmp_path, drop=("threshold",)))
    assert "W_enc" in d.hint


def test_missing_config_key_and_bad_json(tmp_path):
    d = saelens_dir(tmp_path / "a", cfg_edit=lambda c: c.pop("d_sae"))
    fails("E303", r"a/cfg.json: missing config key 'd_sae'", load_sae, d)
    d = saelens_dir(tmp_path / "b")
    (d / "cfg.json").write_text("{not json")
    fails("E303", r"b/cfg.json: not valid JSON", load_sae, d)


@pytest.mark.parametrize("key,shape,msg", [
    ("W_enc", (D_IN, D_SAE + 1), r"'W_enc' has shape \[6, 17\], expected \[6, 16\]"),
    ("W_dec", (D_SAE, D_IN + 2), r"'W_dec' has shape \[16, 8\], expected \[16, 6\]"),
    ("b_dec", (D_IN - 1,), r"'b_dec' has shape \[5\], expected \[6\]"),
    ("threshold", (3,), r"'threshold' has shape \[3\], expected \[16\]"),
])
def test_shape_mismatches(tmp_path, key, shape, msg):
    d = saelens_dir(tmp_path, tweak=lambda t: t.__setitem__(key, torch.zeros(shape)))
    fails("E304", r"sae_weights.safetensors: tensor " + msg, load_sae, d)


def test_config_d_in_disagrees_with_tensors(tmp_path):
    d = saelens_dir(tmp_path, cfg_edit=lambda c: c.__setitem__("d_in", 7))
    fails("E304", r"'W_enc' has shape \[6, 16\], expected \[7, 16\] \(d_in=7, d_sae=16\)", load_sae, d)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_nan_inf_reported_on_read(tmp_path, bad):
    def poison(t):
        t["W_dec"][5, 2] = bad

    sae = load_sae(saelens_dir(tmp_path, tweak=poison))
    fails("E305", r"sae_weights.safetensors: tensor 'W_dec'.*NaN or Inf", lambda: sae.W_dec)
    assert sae.select([1, 2]).W_dec.shape == (2, D_IN)  # lazily: clean rows are fine
    fails("E305", r"'W_dec'.*selected features \[5\]", sae.select, [5])


def test_unknown_architecture_activation_dtype_normalisation(tmp_path):
    fails("E306", r"cfg.json: unknown architecture 'jumprelux'", load_sae, saelens_dir(tmp_path / "a", "jumprelux"))
    d = saelens_dir(tmp_path / "b", cfg_edit=lambda c: c.__setitem__("dtype", "torch.float8"))
    fails("E306", r"cfg.json: unknown dtype 'torch.float8' in config key 'dtype'", load_sae, d)
    d = saelens_dir(tmp_path / "c", cfg_edit=lambda c: c.__setitem__("normalize_activations", "layernorm"))
    fails("E306", r"unknown normalize_activations 'layernorm'", load_sae, d)
    d = saelens_dir(tmp_path / "d", cfg_edit=lambda c: c.__setitem__("architecture", "transcoder"))
    fails("E310", r"'transcoder' is a transcoder", load_sae, d)


def test_expected_average_without_factor(tmp_path):
    d = saelens_dir(tmp_path, cfg_edit=lambda c: c.__setitem__("normalize_activations", "expected_average_only_in"))
    diag = fails("E303", r"cfg.json: normalize_activations is 'expected_average_only_in' but no norm_scaling_factor", load_sae, d)
    assert "norm_scaling_factor=" in diag.hint


def test_pickle_refused_names_flag(tmp_path):
    p = tmp_path / "Model-SAE-l3.pth"
    torch.save({"encoder_linear.weight": torch.zeros(4, 2), "encoder_linear.bias": torch.zeros(4),
                "decoder_linear.weight": torch.zeros(2, 4), "decoder_linear.bias": torch.zeros(2)}, p)
    d = fails("E307", r"Model-SAE-l3.pth: is a Python pickle.*refused without --allow-pickle", load_sae, p)
    assert "--allow-pickle" in d.hint
    assert load_sae(p, allow_pickle=True).hook_name == "blocks.3.hook_resid_post"


def test_pickle_with_arbitrary_objects_refused_even_when_allowed(tmp_path):
    import argparse

    p = tmp_path / "Model-SAE-l3.pth"
    torch.save({"encoder_linear.weight": torch.zeros(4, 2), "decoder_linear.weight": torch.zeros(2, 4),
                "evil": argparse.Namespace(a=1)}, p)  # a non-allowlisted global
    fails("E308", r"Model-SAE-l3.pth: pickle holds objects other than tensors", load_sae, p, allow_pickle=True)


def test_truncated_safetensors(tmp_path):
    d = saelens_dir(tmp_path)
    w = d / "sae_weights.safetensors"
    w.write_bytes(w.read_bytes()[:-40])
    fails("E308", r"sae_weights.safetensors: tensor '.*' ends at byte \d+ but the data section has \d+ bytes", load_sae, d)


def test_safetensors_header_claims_huge_size(tmp_path):
    d = saelens_dir(tmp_path)
    w = d / "sae_weights.safetensors"
    w.write_bytes(struct.pack("<Q", 1 << 60) + w.read_bytes()[8:])
    fails("E308", r"sae_weights.safetensors: safetensors header claims 1152921504606846976 bytes", load_sae, d)


def test_safetensors_entry_claims_huge_shape(tmp_path):
    d = saelens_dir(tmp_path)
    w = d / "sae_weights.safetensors"
    raw = w.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8 : 8 + n])
    header["W_enc"]["shape"] = [1 << 40, 1 << 20]
    new = json.dumps(header).encode()
    w.write_bytes(struct.pack("<Q", len(new)) + new + raw[8 + n :])
    fails("E308", r"tensor 'W_enc' claims shape \[1099511627776, 1048576\]", load_sae, d)


def test_garbage_safetensors_and_npz(tmp_path):
    d = saelens_dir(tmp_path / "a")
    (d / "sae_weights.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}")
    fails("E308", r"safetensors header is not valid JSON", load_sae, d)
    bad = tmp_path / "gemma-scope-2b-pt-res/layer_1/params.npz"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"PK\x03\x04 this is not a zip")
    fails("E308", r"params.npz: not a readable .npz archive", load_sae, bad)


def test_check_d_model_and_bad_index(tmp_path):
    sae = load_sae(saelens_dir(tmp_path))
    check_d_model(sae, D_IN)
    fails("E309", r"SAE d_in is 6 but the model's hidden size is 768 \(hook blocks.1.hook_resid_post\)",
          check_d_model, sae, 768)
    fails("E312", r"feature index 16 out of range \(d_sae=16\)", sae.select, [0, 16])


def test_unknown_hook_name(tmp_path):
    d = saelens_dir(tmp_path, cfg_edit=lambda c: c["metadata"].__setitem__("hook_name", "blocks.1.resid"))
    fails("E311", r"cfg.json: unrecognised hook point 'blocks.1.resid'", load_sae, d)
