"""The one in-memory SAE shape every format loader produces (SAELens conventions).

Feature i: encoder column `W_enc[:, i]` (W_enc is [d_in, d_sae]), decoder row `W_dec[i]`
(W_dec is [d_sae, d_in]), `b_enc[i]`, `threshold[i]` (JumpReLU). See docs/saes.md.

Encode, for every architecture, with `x_n = normalize(x)` and
`x' = x_n - b_dec if apply_b_dec_to_input else x_n`:

    standard : f = ReLU(x' @ W_enc + b_enc)
    jumprelu : pre = x' @ W_enc + b_enc;  f = ReLU(pre) * (pre > threshold)
    topk     : pre = x' @ W_enc + b_enc;  keep the k largest, ReLU them, zero the rest
    gated    : f = 1[x' @ W_enc + b_gate > 0] * ReLU(x' @ (W_enc * exp(r_mag)) + b_mag)

Decode: x_hat = denormalize(f @ W_dec + b_dec). The code of this math is the shipped
runtime's (`sae_normalize`, `sae_activate`, `gated_activate` in steerc/runtime/modeling_steerc.py).

`FeatureSlice` is the data a hook module needs for a few selected features; it is plain
tensors so the runtime's self-contained hook code can consume it without importing steerc.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Optional

from steerc.arch.hookpoint import HookPoint

if TYPE_CHECKING:  # plain data here; `steerc check` reads configs without importing torch
    import torch

Architecture = Literal["standard", "jumprelu", "topk", "gated", "linear"]  # linear: a named direction
Normalization = Literal["none", "constant_norm_rescale", "layer_norm"]
# `expected_average_only_in` and Llama Scope's dataset-wise norm are folded into the
# weights at load time (docs/saes.md), so they never reach the runtime.


@dataclass(frozen=True)
class SAEConfig:
    d_in: int
    d_sae: int
    architecture: Architecture
    hook_name: str  # TransformerLens style: blocks.L.hook_resid_post, blocks.L.hook_mlp_out, ...
    k: Optional[int] = None  # topk only
    apply_b_dec_to_input: bool = False
    normalize_activations: Normalization = "none"
    dtype: str = "float32"
    format: str = "saelens"  # which loader produced it
    # Additions (backwards compatible, all defaulted):
    reshape_activations: str = "none"  # "hook_z": flatten [..., n_heads, d_head] to d_in first
    model_name: Optional[str] = None  # as recorded by the SAE file, if any
    neuronpedia_id: Optional[str] = None

    @property
    def layer(self) -> Optional[int]:
        """The block index parsed from `hook_name` (`blocks.{L}.`), None for `hook_embed`."""
        point = HookPoint.read(self.hook_name)
        return point.layer if point else None


@dataclass(frozen=True)
class FeatureSlice:
    """Everything needed to compute a_i(x) and d_i for the selected features (k of them).

    Shapes: W_enc [d_in, k], b_enc [k], W_dec [k, d_in], b_dec [d_in], threshold [k].
    Gated: W_enc/b_enc are the gate path (`b_gate`), `r_mag`/`b_mag` [k] the magnitude path.
    TopK: exact membership in the top k needs every feature's pre-activation, so
    `full_W_enc` [d_in, d_sae] and `full_b_enc` [d_sae] are filled (and `indices` says which
    columns are the selected ones).
    """

    indices: tuple[int, ...]
    architecture: Architecture
    W_enc: torch.Tensor
    b_enc: torch.Tensor
    W_dec: torch.Tensor
    b_dec: torch.Tensor
    apply_b_dec_to_input: bool = False
    normalize_activations: Normalization = "none"
    threshold: Optional[torch.Tensor] = None
    r_mag: Optional[torch.Tensor] = None
    b_mag: Optional[torch.Tensor] = None
    k: Optional[int] = None
    full_W_enc: Optional[torch.Tensor] = None
    full_b_enc: Optional[torch.Tensor] = None
