"""OpenAI sparse_autoencoder (GPT-2 small): a torch-pickled dict (docs/saes.md).

Keys: pre_bias [d_in], encoder.weight [n, d_in] (no bias), latent_bias [n],
decoder.weight [d_in, n], stats buffers, "activation" ("TopK" | "ReLU"),
"activation_state_dict" ({"k": 32, "postact_fn": "ReLU"}).
Forward: TopK implies a per-token layer norm of the input (undone on the output);
z = act((x - pre_bias) @ enc^T + latent_bias); x_hat = z @ dec^T + pre_bias.
Hook from the path `{location}[_v4|_v5_32k|_v5_128k]/autoencoders/{layer}.pt`, or hook_name.
"""

from __future__ import annotations

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
from .pickled import load_state_dict, mentions, tensors_of

NAME = "openai"
KEYS = ("pre_bias", "encoder.weight", "latent_bias", "decoder.weight")
LOCATIONS = {  # OpenAI README: location -> TransformerLens hook suffix
    "resid_delta_attn": "hook_attn_out", "resid_delta_mlp": "hook_mlp_out",
    "resid_post_attn": "hook_resid_mid", "resid_post_mlp": "hook_resid_post",
    "mlp_post_act": "mlp.hook_post",
}


def sniff(path: Path) -> bool:
    """A .pt whose pickle names `pre_bias` and `latent_bias`."""
    return mentions(Path(path), "pre_bias", "latent_bias")


def hook_from_path(path: Path) -> Optional[str]:
    """`resid_post_mlp_v5_32k/autoencoders/6.pt` -> blocks.6.hook_resid_post."""
    if not path.stem.isdigit():
        return None
    for part in reversed(path.parts[:-1]):
        m = re.match(r"^(" + "|".join(LOCATIONS) + r")(_v[0-9]+.*)?$", part)
        if m:
            return HookPoint(int(path.stem), LOCATIONS[m.group(1)]).name
    return None


def load(path: Path, *, device: str = "cpu", allow_pickle: bool = False,
         hook_name: Optional[str] = None, **_: object) -> SAE:
    """Load an OpenAI autoencoder .pt (needs allow_pickle)."""
    f = Path(path)
    raw = load_state_dict(f, allow_pickle)
    tensors = tensors_of(raw)
    for key in KEYS:
        if key not in tensors:
            errors.fail(errors.MISSING_KEY, f, f"missing tensor '{key}'", f"keys present: {sorted(tensors)}")
    act = raw.get("activation", "ReLU")
    state = raw.get("activation_state_dict") or {}
    if act == "TopK":
        if "k" not in state:
            errors.fail(errors.MISSING_KEY, f, "TopK activation without 'activation_state_dict.k'")
        if str(state.get("postact_fn", "ReLU")) != "ReLU":
            errors.fail(errors.UNKNOWN_ARCH, f, f"unknown postact_fn '{state.get('postact_fn')}'", "expected ReLU")
        arch, k, norm = "topk", int(state["k"]), "layer_norm"
    elif act == "ReLU":
        arch, k, norm = "standard", None, "none"
    else:
        errors.fail(errors.UNKNOWN_ARCH, f, f"unknown activation '{act}' (key 'activation')", "expected TopK or ReLU")
    store = DictStore(f, tensors)
    d_sae, d_in = store.shape("encoder.weight")
    hook = explicit_hook(hook_name, f) or hook_from_path(f)
    if hook is None:
        errors.fail(errors.NO_HOOK, f, "cannot tell the hook from the path "
                    "(expected '<location>_v5_32k/autoencoders/<layer>.pt')",
                    "pass hook_name= (e.g. blocks.6.hook_resid_post)")
    layout = Layout(W_enc="encoder.weight", enc_transposed=True, b_enc="latent_bias",
                    W_dec="decoder.weight", dec_transposed=True, b_dec="pre_bias")
    cfg = SAEConfig(d_in=d_in, d_sae=d_sae, architecture=arch, hook_name=hook, k=k,
                    apply_b_dec_to_input=True, normalize_activations=norm,
                    dtype=store.dtype_name("encoder.weight"), format=NAME)
    return SAE(cfg, store, layout, path=f, device=device,
               hash_extra={"activation": str(act), "activation_state_dict": {k_: str(v) for k_, v in state.items()}})
