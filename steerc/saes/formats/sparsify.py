"""EleutherAI sparsify (formerly `sae`): one folder per hookpoint (docs/saes.md).

`<hookpoint>/cfg.json` + `<hookpoint>/sae.safetensors` (or `<hookpoint>/seed<N>/...`), the
folder named by the module path under `model.base_model`: `layers.10` is the output of
block 10 = `blocks.10.hook_resid_post`. Keys: encoder.weight [d_sae, d_in],
encoder.bias [d_sae], W_dec [d_sae, d_in] (already row-per-latent: NOT transposed, unlike
SAELens 6.18's sparsify loader), b_dec [d_in]. Encode: ReLU((x - b_dec) W^T + b) then top-k.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Optional

from .. import errors
from ..base import SAEConfig
from ..hooks import normalize_hook_name
from ..layout import Layout
from ..sae import SAE
from ..store import SafetensorsStore
from .common import explicit_hook, read_json, require

NAME = "sparsify"
CFG = "cfg.json"
WEIGHTS = "sae.safetensors"


def _folder(path: Path) -> Path:
    return path.parent if os.path.isfile(path) else path


def sniff(path: Path) -> bool:
    """A folder holding cfg.json and sae.safetensors."""
    d = _folder(Path(path))
    return os.path.isfile(d / CFG) and os.path.isfile(d / WEIGHTS)


def hook_from_folder(folder: Path) -> Optional[str]:
    """`.../layers.10` or `.../layers.10/seed1` -> blocks.10.hook_resid_post."""
    name = folder.name
    if re.fullmatch(r"seed[0-9]+", name):
        name = folder.parent.name
    return normalize_hook_name(name)


def load(path: Path, *, device: str = "cpu", hook_name: Optional[str] = None, **_: object) -> SAE:
    """Load one sparsify hookpoint folder."""
    folder = _folder(Path(path))
    cfg_path, w_path = folder / CFG, folder / WEIGHTS
    if not os.path.isfile(w_path):
        errors.fail(errors.MISSING_FILE, w_path, "file not found")
    cfg = read_json(cfg_path)
    d_in = require(cfg, "d_in", cfg_path, int)
    d_sae = (require(cfg, "num_latents", cfg_path, int) if cfg.get("num_latents")
             else d_in * require(cfg, "expansion_factor", cfg_path, int))
    activation = str(cfg.get("activation", "topk"))
    if activation == "groupmax":
        errors.fail(errors.UNSUPPORTED, cfg_path, "activation 'groupmax' is not supported (config key 'activation')")
    if activation != "topk":
        errors.fail(errors.UNKNOWN_ARCH, cfg_path, f"unknown activation '{activation}' (config key 'activation')",
                    "expected topk")
    for flag in ("transcode", "skip_connection", "signed"):
        if cfg.get(flag):
            errors.fail(errors.UNSUPPORTED, cfg_path, f"'{flag}: true' SAEs are not supported")
    k = require(cfg, "k", cfg_path, int)
    hook = explicit_hook(hook_name, cfg_path) or hook_from_folder(folder)
    if hook is None:
        errors.fail(errors.NO_HOOK, folder, f"cannot map hookpoint folder '{folder.name}' to a hook",
                    "folders are named by module path (layers.10, layers.10.mlp); or pass hook_name=")
    store = SafetensorsStore(w_path)
    if "W_skip" in store.keys():
        errors.fail(errors.UNSUPPORTED, w_path, "tensor 'W_skip' (skip connection) is not supported")
    layout = Layout(W_enc="encoder.weight", enc_transposed=True, b_enc="encoder.bias",
                    W_dec="W_dec", b_dec="b_dec")
    sae_cfg = SAEConfig(d_in=d_in, d_sae=d_sae, architecture="topk", hook_name=hook, k=k,
                        apply_b_dec_to_input=True, dtype=store.dtype_name("W_dec") if store.has("W_dec") else "float32",
                        format=NAME)
    return SAE(sae_cfg, store, layout, path=folder, device=device)
