"""Goodfire: a torch-pickled state dict, no config (docs/saes.md).

Keys: encoder_linear.weight [d_sae, d_in], encoder_linear.bias [d_sae],
decoder_linear.weight [d_in, d_sae], decoder_linear.bias [d_in]. f = ReLU(x W^T + b), no
pre-bias, no normalisation. The hook is the output of `model.layers[L]` with L read from
the file name (`...-SAE-l19.pth`), or given as hook_name.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Optional

from steerc.arch.hookpoint import HookPoint

from .. import errors
from ..base import SAEConfig
from ..layout import Layout
from ..sae import SAE
from ..store import DictStore
from .common import explicit_hook
from .pickled import SUFFIXES, load_state_dict, mentions, tensors_of

NAME = "goodfire"
KEYS = ("encoder_linear.weight", "encoder_linear.bias", "decoder_linear.weight", "decoder_linear.bias")


def _file(path: Path) -> Optional[Path]:
    if os.path.isfile(path):
        return path
    if os.path.isdir(path):
        found = [p for p in sorted(path.iterdir()) if p.suffix in SUFFIXES and mentions(p, "encoder_linear")]
        return found[0] if len(found) == 1 else None
    return None


def sniff(path: Path) -> bool:
    """A .pt/.pth whose pickle names `encoder_linear` and `decoder_linear`."""
    f = _file(Path(path))
    return f is not None and mentions(f, "encoder_linear", "decoder_linear")


def hook_from_name(path: Path) -> Optional[str]:
    """`Llama-3.1-8B-Instruct-SAE-l19.pth` -> blocks.19.hook_resid_post."""
    m = re.search(r"-l([0-9]+)(?:\.|$)", path.name) or re.search(r"-l([0-9]+)", path.parent.name)
    return HookPoint(int(m.group(1)), "hook_resid_post").name if m else None


def load(path: Path, *, device: str = "cpu", allow_pickle: bool = False,
         hook_name: Optional[str] = None, **_: object) -> SAE:
    """Load a Goodfire .pth/.pt (needs allow_pickle)."""
    f = _file(Path(path)) or Path(path)
    tensors = tensors_of(load_state_dict(f, allow_pickle))
    store = DictStore(f, tensors)
    for key in KEYS:
        if key not in tensors:
            errors.fail(errors.MISSING_KEY, f, f"missing tensor '{key}'", f"keys present: {sorted(tensors)}")
    d_sae, d_in = store.shape("encoder_linear.weight")
    hook = explicit_hook(hook_name, f) or hook_from_name(f)
    if hook is None:
        errors.fail(errors.NO_HOOK, f, "cannot tell the layer from the file name (expected '...-l<L>.pth')",
                    "pass hook_name= (e.g. blocks.19.hook_resid_post)")
    layout = Layout(W_enc="encoder_linear.weight", enc_transposed=True, b_enc="encoder_linear.bias",
                    W_dec="decoder_linear.weight", dec_transposed=True, b_dec="decoder_linear.bias")
    cfg = SAEConfig(d_in=d_in, d_sae=d_sae, architecture="standard", hook_name=hook,
                    dtype=store.dtype_name("encoder_linear.weight"), format=NAME)
    return SAE(cfg, store, layout, path=f, device=device)
