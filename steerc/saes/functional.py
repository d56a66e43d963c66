"""The SAE forward math as plain functions on tensors (see base.py's docstring).

Kept free of steerc imports so hook code can reuse the same formulas. Shapes: x [..., d_in],
W_enc [d_in, d_sae], W_dec [d_sae, d_in], pre/f [..., d_sae].
"""

from __future__ import annotations

import math
from typing import Optional

import torch

LN_EPS = 1e-5  # SAELens and OpenAI sparse_autoencoder both use 1e-5


def normalize(x: torch.Tensor, kind: str) -> tuple[torch.Tensor, tuple]:
    """Apply the run-time input normalisation; returns (x_n, state for `denormalize`)."""
    if kind == "none":
        return x, ()
    if kind == "constant_norm_rescale":
        # SAELens: x * sqrt(d_in) / |x| per token, inverted on the output
        scale = math.sqrt(x.shape[-1]) / x.norm(dim=-1, keepdim=True)
        return x * scale, (scale,)
    if kind == "layer_norm":
        # SAELens / OpenAI: (x - mu) / (std_unbiased + eps); output * std + mu
        mu = x.mean(dim=-1, keepdim=True)
        xc = x - mu
        std = xc.std(dim=-1, keepdim=True)
        return xc / (std + LN_EPS), (mu, std)
    raise ValueError(f"unknown normalisation {kind!r}")


def denormalize(x_hat: torch.Tensor, kind: str, state: tuple) -> torch.Tensor:
    """Invert `normalize` on a reconstruction."""
    if kind == "none":
        return x_hat
    if kind == "constant_norm_rescale":
        return x_hat / state[0]
    if kind == "layer_norm":
        mu, std = state
        return x_hat * std + mu
    raise ValueError(f"unknown normalisation {kind!r}")


def topk_relu(pre: torch.Tensor, k: int) -> torch.Tensor:
    """Keep the k largest pre-activations per token (torch.topk), ReLU them, zero the rest."""
    top = pre.topk(min(k, pre.shape[-1]), dim=-1)
    return torch.zeros_like(pre).scatter(-1, top.indices, top.values.relu())


def activate(pre: torch.Tensor, architecture: str, *, threshold: Optional[torch.Tensor] = None,
             k: Optional[int] = None) -> torch.Tensor:
    """f from pre for standard / jumprelu / topk (gated has two paths: see `gated_encode`)."""
    if architecture == "standard":
        return pre.relu()
    if architecture == "jumprelu":
        return pre.relu() * (pre > threshold)
    if architecture == "topk":
        return topk_relu(pre, int(k))
    raise ValueError(f"activate() does not handle {architecture!r}")


def gated_encode(xp: torch.Tensor, W_enc: torch.Tensor, b_gate: torch.Tensor,
                 r_mag: torch.Tensor, b_mag: torch.Tensor) -> torch.Tensor:
    """Gated SAE: 1[x'W + b_gate > 0] * ReLU(x'(W * exp(r_mag)) + b_mag)."""
    gate = (xp @ W_enc + b_gate) > 0
    mag = xp @ (W_enc * r_mag.exp()) + b_mag
    return gate * mag.relu()
