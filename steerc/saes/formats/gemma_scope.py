"""Gemma Scope: `params.npz` (docs/saes.md).

Path `<repo>/{layer_L|embedding}/width_16k/average_l0_N/params.npz`; keys W_enc [d_in, d_sae],
W_dec [d_sae, d_in], b_enc, b_dec, threshold (SAELens also accepts lowercase w_enc/w_dec).
JumpReLU, apply_b_dec_to_input false, no normalisation. The file holds no hook name: it
comes from hook_name=, else from the path (layer from `layer_L`, site from the repo folder
`gemma-scope-2b-pt-{res,mlp,att}`; a path without the repo folder is refused, E311).
Embedding SAEs expect HF's unscaled `embed_tokens` output while TL's `hook_embed` is
scaled by sqrt(d_model), so W_enc /= sqrt(d_in) and W_dec, b_dec *= sqrt(d_in).
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Optional

from steerc.arch.hookpoint import HookPoint

from .. import errors
from ..base import SAEConfig
from ..layout import Layout
from ..sae import SAE
from ..store import NpzStore
from .common import explicit_hook

NAME = "gemma_scope"
FILE = "params.npz"
SITES = {"res": "hook_resid_post", "mlp": "hook_mlp_out", "att": "attn.hook_z"}


def _file(path: Path) -> Path:
    return path / FILE if os.path.isdir(path) else path


def sniff(path: Path) -> bool:
    """A params.npz (or a folder holding one)."""
    f = _file(Path(path))
    return os.path.isfile(f) and f.suffix == ".npz"


def hook_from_path(f: Path) -> Optional[str]:
    """`gemma-scope-2b-pt-res/layer_12/width_16k/average_l0_82/params.npz` -> blocks.12.hook_resid_post.

    The path as named is read first: in the Hugging Face cache the file is a symlink into
    `blobs/`, and only the unresolved path (`models--google--gemma-scope-2b-pt-res/snapshots/
    <commit>/layer_12/...`) says where it came from; then the resolved one (a symlinked copy)."""
    return _hook_from_parts(Path(os.path.abspath(f)).parts) or _hook_from_parts(f.resolve().parts)


def _hook_from_parts(parts: tuple[str, ...]) -> Optional[str]:
    site = None
    for part in parts:
        if "transcoder" in part and "gemma-scope" in part:
            return "transcoder"
        m = re.search(r"gemma-scope-.*-(res|mlp|att)(?:$|[-_])", part)
        if m:
            site = m.group(1)
    if "embedding" in parts:
        return "hook_embed"
    layer = next((int(m.group(1)) for p in parts if (m := re.fullmatch(r"layer_([0-9]+)", p))), None)
    if layer is None or site is None:
        return None
    return HookPoint(layer, SITES[site]).name


def load(path: Path, *, device: str = "cpu", hook_name: Optional[str] = None, **_: object) -> SAE:
    """Load a Gemma Scope params.npz."""
    f = _file(Path(path))
    if not os.path.isfile(f):
        errors.fail(errors.MISSING_FILE, f, "file not found")
    store = NpzStore(f)
    hook = explicit_hook(hook_name, f) or hook_from_path(f)
    if hook == "transcoder":
        errors.fail(errors.UNSUPPORTED, f, "Gemma Scope transcoders are not supported")
    if hook is None:
        errors.fail(errors.NO_HOOK, f, "params.npz holds no hook name and the path does not say it",
                    "keep the repo layout (gemma-scope-2b-pt-res/layer_12/...) or pass hook_name=")
    w_enc = "W_enc" if store.has("W_enc") or not store.has("w_enc") else "w_enc"
    w_dec = "W_dec" if store.has("W_dec") or not store.has("w_dec") else "w_dec"
    if not store.has(w_enc):
        errors.fail(errors.MISSING_KEY, f, f"missing array '{w_enc}'", f"arrays present: {sorted(store.keys())}")
    d_in, d_sae = store.shape(w_enc)
    s = math.sqrt(d_in) if hook == "hook_embed" else 1.0
    layout = Layout(W_enc=w_enc, W_dec=w_dec, b_enc="b_enc", b_dec="b_dec", threshold="threshold",
                    W_enc_scale=1.0 / s, W_dec_scale=s, b_dec_scale=s)
    cfg = SAEConfig(d_in=d_in, d_sae=d_sae, architecture="jumprelu", hook_name=hook,
                    normalize_activations="none", apply_b_dec_to_input=False,
                    reshape_activations="hook_z" if HookPoint.read(hook).kind == "attn.hook_z" else "none",
                    dtype=store.dtype_name(w_enc), format=NAME)
    return SAE(cfg, store, layout, path=f, device=device)
