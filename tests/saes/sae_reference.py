"""Direct SAE math on raw tensors, written from the formats' reference code independently of steerc.saes.

Each helper takes tensors exactly as a test wrote them to disk (in that format's own
orientation) and returns activations / reconstructions in float64.
"""

from __future__ import annotations

import math

import torch


def d(t):
    return t.detach().to(torch.float64)


def topk_mask(scores, k):
    """1 where a score is among the k largest of its row (sort-based, not torch.topk)."""
    kth = scores.sort(dim=-1, descending=True).values[..., k - 1 : k]
    return scores >= kth


def layer_norm(x):
    mu = x.mean(-1, keepdim=True)
    sd = (x - mu).std(-1, keepdim=True)  # unbiased
    return (x - mu) / (sd + 1e-5), mu, sd


def saelens(x, t, arch, *, apply_b_dec=False, norm="none", k=None, rescale=False, scale=None):
    """SAELens semantics (§1). t: W_enc [d_in,d_sae], W_dec [d_sae,d_in], b_enc/b_dec/...;
    returns (f, x_hat). `scale`: expected_average_only_in factor s (x is multiplied by s)."""
    x = d(x)
    W_enc, W_dec, b_dec = d(t["W_enc"]), d(t["W_dec"]), d(t["b_dec"])
    if norm == "constant_norm_rescale":
        c = math.sqrt(x.shape[-1]) / x.norm(dim=-1, keepdim=True)
        xn = x * c
    elif norm == "layer_norm":
        xn, mu, sd = layer_norm(x)
    elif norm == "expected_average_only_in":
        xn = x * scale
    else:
        xn = x
    xp = xn - b_dec if apply_b_dec else xn
    if arch == "gated":
        gate = (xp @ W_enc + d(t["b_gate"])) > 0
        mag = (xp @ (W_enc * d(t["r_mag"]).exp()) + d(t["b_mag"])).clamp(min=0)
        f = gate * mag
    else:
        pre = xp @ W_enc + d(t["b_enc"])
        if arch == "standard":
            f = pre.clamp(min=0)
        elif arch == "jumprelu":
            f = torch.where(pre > d(t["threshold"]), pre, torch.zeros_like(pre)).clamp(min=0)
        elif arch == "topk":
            n = W_dec.norm(dim=1) if rescale else torch.ones(W_dec.shape[0], dtype=x.dtype)
            s = pre * n
            f = torch.where(topk_mask(s, k), s, torch.zeros_like(s)).clamp(min=0)
            f_dec = f / n
            x_hat = f_dec @ W_dec + b_dec
            return f, _out(x_hat, x, norm, scale)
    x_hat = f @ W_dec + b_dec
    return f, _out(x_hat, x, norm, scale)


def _out(x_hat, x, norm, scale):
    if norm == "constant_norm_rescale":
        return x_hat * x.norm(dim=-1, keepdim=True) / math.sqrt(x.shape[-1])
    if norm == "layer_norm":
        _, mu, sd = layer_norm(x)
        return x_hat * sd + mu
    if norm == "expected_average_only_in":
        return x_hat / scale
    return x_hat
