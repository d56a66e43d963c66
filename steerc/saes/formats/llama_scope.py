"""Llama Scope (OpenMOSS lm_saes): hyperparams.json + checkpoints/final.safetensors (docs/saes.md).

Keys: encoder.weight [d_sae, d_in], encoder.bias [d_sae], decoder.weight [d_in, d_sae],
decoder.bias [d_in]. Inference follows the lm_saes reference, folded into the weights
(s_in = sqrt(d_model) / norm["in"], s_out likewise for "out"):
  1. dataset-wise norm:  b_enc /= s_in, b_dec /= s_out, W_dec *= s_in / s_out
  2. sparsity_include_decoder_norm (default true): n_i = |W_dec[i]| after 1;
     W_dec[i] /= n_i, W_enc[:, i] *= n_i, b_enc[i] *= n_i
  3. JumpReLU with the scalar `jump_relu_threshold` on that pre-activation, raw x in.
SAELens instead folds s_in into W_enc (threshold compared in the normalised space) and
ignores n_i; see docs/saes.md and `decoder_norm_report`.
"""

from __future__ import annotations

import os
import math
from pathlib import Path
from typing import Optional

from .. import errors
from ..base import SAEConfig
from ..layout import Layout
from ..sae import SAE
from ..store import SafetensorsStore
from .common import dtype_name, explicit_hook, hook_or_fail, positive_number, read_json, require

NAME = "llama_scope"
CFG = "hyperparams.json"
WEIGHTS_CANDIDATES = ("checkpoints/final.safetensors", "final.safetensors", "sae_weights.safetensors")


def _folder(path: Path) -> Path:
    if os.path.isfile(path):
        return path.parent.parent if path.parent.name == "checkpoints" else path.parent
    return path


def sniff(path: Path) -> bool:
    """A folder with hyperparams.json and checkpoints/final.safetensors."""
    d = _folder(Path(path))
    return os.path.isfile(d / CFG) and any(os.path.isfile(d / w) for w in WEIGHTS_CANDIDATES)


def load(path: Path, *, device: str = "cpu", hook_name: Optional[str] = None, **_: object) -> SAE:
    """Load a Llama Scope SAE folder, folding the dataset-wise norm and decoder norms."""
    folder = _folder(Path(path))
    cfg_path = folder / CFG
    w_path = next((folder / w for w in WEIGHTS_CANDIDATES if os.path.isfile(folder / w)), None)
    if w_path is None:
        errors.fail(errors.MISSING_FILE, folder / WEIGHTS_CANDIDATES[0], "file not found")
    hp = read_json(cfg_path)
    d_in = require(hp, "d_model", cfg_path, int)
    d_sae = require(hp, "d_sae", cfg_path, int)
    hook_in = hook_or_fail(hp.get("hook_point_in"), cfg_path, "hook_point_in")
    hook_out = hook_or_fail(hp.get("hook_point_out", hp.get("hook_point_in")), cfg_path, "hook_point_out")
    if hook_in != hook_out:
        errors.fail(errors.UNSUPPORTED, cfg_path,
                    f"transcoder (hook_point_in {hook_in} != hook_point_out {hook_out}) is not supported")
    hook = explicit_hook(hook_name, cfg_path) or hook_in

    act = str(hp.get("act_fn", "relu")).lower()
    threshold: Optional[float] = None
    k = None
    if act == "jumprelu":
        arch = "jumprelu"
        threshold = float(require(hp, "jump_relu_threshold", cfg_path, (int, float)))
        if not math.isfinite(threshold):
            errors.fail(errors.BAD_CONFIG, cfg_path, "config key 'jump_relu_threshold' should be finite")
    elif act == "relu":
        arch = "standard"
    elif act == "topk":
        arch, k = "topk", require(hp, "top_k", cfg_path, int)
    else:
        errors.fail(errors.UNKNOWN_ARCH, cfg_path, f"unknown act_fn '{act}' (config key 'act_fn')",
                    "expected jumprelu, relu or topk")

    norm = str(hp.get("norm_activation", "inference"))
    s_in = s_out = 1.0
    if norm == "dataset-wise":
        norms = require(hp, "dataset_average_activation_norm", cfg_path, dict)
        for side in ("in", "out"):
            positive_number(norms.get(side), cfg_path, f"dataset_average_activation_norm.{side}")
        s_in, s_out = math.sqrt(d_in) / norms["in"], math.sqrt(d_in) / norms["out"]
    elif norm != "inference":
        errors.fail(errors.UNSUPPORTED, cfg_path, f"norm_activation '{norm}' is not supported "
                    "(only dataset-wise and inference can be folded into weights)")

    use_dec_bias = bool(hp.get("use_decoder_bias", True))
    store = SafetensorsStore(w_path)
    layout = Layout(
        W_enc="encoder.weight", enc_transposed=True, b_enc="encoder.bias",
        W_dec="decoder.weight", dec_transposed=True, b_dec="decoder.bias" if use_dec_bias else None,
        threshold=threshold, b_enc_scale=1.0 / s_in, b_dec_scale=1.0 / s_out, W_dec_scale=s_in / s_out,
        fold_decoder_norm=bool(hp.get("sparsity_include_decoder_norm", True)),
        dtype="float32",
    )
    cfg = SAEConfig(d_in=d_in, d_sae=d_sae, architecture=arch, hook_name=hook, k=k,
                    apply_b_dec_to_input=bool(hp.get("apply_decoder_bias_to_pre_encoder", False)) and use_dec_bias,
                    dtype=dtype_name(layout.dtype), format=NAME)
    return SAE(cfg, store, layout, path=folder, device=device)


def decoder_norm_report(sae: SAE) -> float:
    """max_i | |W_dec_raw[i]| * s_in/s_out - 1 |: 0 means SAELens's reading (which ignores
    decoder norms) agrees with lm_saes's. Reads the whole decoder."""
    import torch

    raw = sae.store.get(sae.layout.W_dec).to(torch.float32) * sae.layout.W_dec_scale  # [d_in, d_sae]
    return float((raw.norm(dim=0) - 1).abs().max())
