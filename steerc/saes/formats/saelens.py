"""SAELens: `cfg.json` + `sae_weights.safetensors` (docs/saes.md).

Config generations: v6 (`metadata` holds hook/model; `metadata.sae_lens_version` >= 6),
flat v3-v5 (`hook_name`, `activation_fn_str`, ...), and v0-v2 runner dumps (`hook_point`,
`activation_fn`, `"dtype": "torch.float32"`). Legacy configs get SAELens's
`handle_pre_6_0_config` defaults: apply_b_dec_to_input=True, architecture="standard",
activation "topk" -> architecture topk with k from activation_fn_kwargs, normalize True ->
expected_average_only_in.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional


from .. import errors
from ..base import SAEConfig
from ..layout import Layout
from ..sae import SAE
from ..store import SafetensorsStore
from ...diagnostics import did_you_mean
from .common import dtype_name, explicit_hook, hook_or_fail, parse_dtype, positive_number, read_json, require, section

NAME = "saelens"
CFG = "cfg.json"
WEIGHTS = "sae_weights.safetensors"
ARCHITECTURES = ("standard", "jumprelu", "topk", "gated")
TRANSCODERS = ("transcoder", "skip_transcoder", "jumprelu_transcoder")
NORMALISATIONS = ("none", "expected_average_only_in", "constant_norm_rescale", "layer_norm")
NEWER_NORMALISATIONS = ("covariance_whitening",)  # later SAELens releases; not read yet


def _folder(path: Path) -> Path:
    return path.parent if os.path.isfile(path) else path


def sniff(path: Path) -> bool:
    """A folder (or a file in one) holding cfg.json and sae_weights.safetensors."""
    d = _folder(Path(path))
    return os.path.isfile(d / CFG) and os.path.isfile(d / WEIGHTS)


def _version(cfg: dict, path: Path) -> tuple[int, ...]:
    v = cfg.get("sae_lens_version") or section(cfg, "metadata", path).get("sae_lens_version")
    if not v:
        return (0,)
    head = str(v).split("-")[0].split("+")[0]
    try:
        return tuple(int(p) for p in head.split(".") if p.isdigit())
    except ValueError:
        return (0,)


def normalise_config(raw: dict, path: Path) -> dict:
    """Any SAELens cfg.json generation -> one flat v6-style dict (hook_name at top level)."""
    cfg = dict(raw)
    meta = section(cfg, "metadata", path)
    cfg.pop("metadata", None)
    if _version(raw, path) >= (6,):
        cfg = {**meta, **cfg}
        # SAELens 6 SAEConfig / TopKSAEConfig dataclass defaults
        cfg.setdefault("architecture", "standard")
        cfg.setdefault("apply_b_dec_to_input", True)
        if cfg["architecture"] == "topk":
            cfg.setdefault("k", 100)
    else:
        cfg = {**meta, **cfg}
        renames = {"hook_point": "hook_name", "hook_point_head_index": "hook_head_index",
                   "activation_fn_str": "activation_fn"}
        for old, new in renames.items():
            if old in cfg and new not in cfg:
                cfg[new] = cfg.pop(old)
        cfg.setdefault("apply_b_dec_to_input", True)
        cfg.setdefault("architecture", "standard")
        if str(cfg.get("activation_fn") or "").lower() == "topk":
            cfg["architecture"] = "topk"
            kw = section(cfg, "activation_fn_kwargs", path)
            if "k" not in kw and "k" not in cfg:
                errors.fail(errors.BAD_CONFIG, path, "topk activation without 'activation_fn_kwargs.k'")
            cfg.setdefault("k", kw.get("k"))
        if "hook_name" in cfg and "hook_z" in str(cfg["hook_name"]):
            cfg.setdefault("reshape_activations", "hook_z")
    norm = cfg.get("normalize_activations")
    if norm is True:
        cfg["normalize_activations"] = "expected_average_only_in"
    elif norm in (None, False):
        cfg["normalize_activations"] = "none"
    return cfg


def load(path: Path, *, device: str = "cpu", hook_name: Optional[str] = None,
         norm_scaling_factor: Optional[float] = None, **_: object) -> SAE:
    """Load a SAELens folder. `norm_scaling_factor` (SAELens registry value) is folded into
    the weights for `expected_average_only_in` SAEs; the config key of the same name is
    also honoured."""
    folder = _folder(Path(path))
    cfg_path, w_path = folder / CFG, folder / WEIGHTS
    if not os.path.isfile(w_path):
        errors.fail(errors.MISSING_FILE, w_path, "file not found", "a SAELens SAE folder holds cfg.json and sae_weights.safetensors")
    cfg = normalise_config(read_json(cfg_path), cfg_path)

    arch = str(require(cfg, "architecture", cfg_path, str))
    if arch in TRANSCODERS:
        errors.fail(errors.UNSUPPORTED, cfg_path, f"architecture '{arch}' is a transcoder; steerc reads SAEs only")
    if arch not in ARCHITECTURES:
        errors.fail(errors.UNKNOWN_ARCH, cfg_path, f"unknown architecture '{arch}' (config key 'architecture')",
                    did_you_mean(arch, ARCHITECTURES) or f"expected one of {list(ARCHITECTURES)}")
    act = cfg.get("activation_fn")
    if act is not None and str(act).lower() not in ("relu", "topk", "jumprelu"):
        errors.fail(errors.UNKNOWN_ARCH, cfg_path, f"unknown activation '{act}' (config key 'activation_fn')",
                    "expected relu or topk")
    d_in = require(cfg, "d_in", cfg_path, int)
    d_sae = require(cfg, "d_sae", cfg_path, int)
    hook = explicit_hook(hook_name, cfg_path) or hook_or_fail(cfg.get("hook_name"), cfg_path, "hook_name")
    if cfg.get("hook_head_index") is not None:
        errors.fail(errors.UNSUPPORTED, cfg_path, "per-head SAEs (hook_head_index) are not supported")
    dtype = parse_dtype(cfg.get("dtype", "float32"), cfg_path)
    reshape = str(cfg.get("reshape_activations") or "none")
    if reshape not in ("none", "hook_z"):
        errors.fail(errors.UNKNOWN_ARCH, cfg_path, f"unknown reshape_activations '{reshape}'")
    k = require(cfg, "k", cfg_path, int) if arch == "topk" else None

    norm = str(cfg["normalize_activations"])
    if norm in NEWER_NORMALISATIONS:
        errors.fail(errors.UNSUPPORTED, cfg_path, f"normalize_activations '{norm}' is not supported")
    if norm not in NORMALISATIONS:
        errors.fail(errors.UNKNOWN_ARCH, cfg_path, f"unknown normalize_activations '{norm}'",
                    did_you_mean(norm, NORMALISATIONS) or f"expected one of {list(NORMALISATIONS)}")
    scale = 1.0
    if norm == "expected_average_only_in":
        factor = norm_scaling_factor if norm_scaling_factor is not None else cfg.get("norm_scaling_factor")
        if factor is None:
            errors.fail(errors.BAD_CONFIG, cfg_path,
                        "normalize_activations is 'expected_average_only_in' but no norm_scaling_factor is given",
                        "pass norm_scaling_factor= (the SAELens registry value) to load_sae, or add it to cfg.json")
        scale = positive_number(factor, cfg_path, "norm_scaling_factor")
        norm = "none"  # folded: W_enc *= s, W_dec /= s, b_dec /= s (SAELens fold_activation_norm_scaling_factor)

    store = SafetensorsStore(w_path)
    if "scaling_factor" in store.keys() or "finetuning_scaling_factor" in store.keys():
        key = "scaling_factor" if "scaling_factor" in store.keys() else "finetuning_scaling_factor"
        if not bool((store.get(key) == 1).all()):
            errors.fail(errors.UNSUPPORTED, w_path, f"tensor '{key}' is not all ones (finetuning scaling factor)")
    gated = arch == "gated"
    layout = Layout(
        W_enc="W_enc", W_dec="W_dec", b_dec="b_dec",
        b_enc="b_gate" if gated else "b_enc",
        threshold="threshold" if arch == "jumprelu" else None,
        r_mag="r_mag" if gated else None, b_mag="b_mag" if gated else None,
        W_enc_scale=scale, W_dec_scale=1.0 / scale, b_dec_scale=1.0 / scale,
        fold_decoder_norm=bool(arch == "topk" and cfg.get("rescale_acts_by_decoder_norm")),
        dtype=dtype,
    )
    sae_cfg = SAEConfig(
        d_in=d_in, d_sae=d_sae, architecture=arch, hook_name=hook, k=k,
        apply_b_dec_to_input=bool(cfg.get("apply_b_dec_to_input")), normalize_activations=norm,
        dtype=dtype_name(dtype), format=NAME, reshape_activations=reshape,
        model_name=cfg.get("model_name"), neuronpedia_id=cfg.get("neuronpedia_id"),
    )
    return SAE(sae_cfg, store, layout, path=folder, device=device)
