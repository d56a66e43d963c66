"""A naive reference for the hook math: full SAE tensors, one feature at a time, float64.

Written from the formulas in steerc/saes/base.py and steerc/compiler/ir.py, sharing no code
with steerc.runtime, so the fused module is checked against an independent reading.
"""

from __future__ import annotations

import math

import torch

from steerc.compiler.ir import Op


def full_tensors(sae) -> dict:
    names = ("W_enc", "b_enc", "W_dec", "b_dec", "threshold", "r_mag", "b_mag")
    return {n: (None if getattr(sae, n) is None else getattr(sae, n).double()) for n in names}


def encode_one(x, sae, i: int):
    """a_i(x) and the x-space scale of feature i, for x (..., d) in float64."""
    t, cfg = full_tensors(sae), sae.cfg
    x = x.double()
    s = torch.ones(x.shape[:-1], dtype=torch.float64)
    if cfg.normalize_activations == "constant_norm_rescale":
        s = x.norm(dim=-1) / math.sqrt(x.shape[-1])
        x = x / s[..., None]
    elif cfg.normalize_activations == "layer_norm":
        mu, std = x.mean(-1, keepdim=True), x.std(-1, keepdim=True)
        x, s = (x - mu) / (std + 1e-5), std[..., 0]
    if cfg.apply_b_dec_to_input:
        x = x - t["b_dec"]
    if cfg.architecture == "gated":
        gate = (x @ t["W_enc"][:, i] + t["b_enc"][i]) > 0
        mag = torch.relu(x @ t["W_enc"][:, i] * torch.exp(t["r_mag"][i]) + t["b_mag"][i])
        return gate * mag, s
    pre_i = x @ t["W_enc"][:, i] + t["b_enc"][i]
    if cfg.architecture == "standard":
        return torch.relu(pre_i), s
    if cfg.architecture == "jumprelu":
        return torch.where(pre_i > t["threshold"][i], torch.relu(pre_i), 0.0), s
    if cfg.architecture == "topk":
        pre = x @ t["W_enc"] + t["b_enc"]
        kth = pre.sort(dim=-1, descending=True).values[..., cfg.k - 1]
        pre_i = pre[..., i]  # from the same matmul as kth, so a feature at the boundary ties
        return torch.where(pre_i >= kth, torch.relu(pre_i), 0.0), s
    raise ValueError(cfg.architecture)


def naive_point(x, ivs, saes, phase: str = "prompt", everywhere=()):
    """Apply interventions at one point to x (..., d) following ir.py, feature by feature."""
    x0 = x.double()
    delta = torch.zeros_like(x0)
    for iv in ivs:
        if iv.op == Op.PROJECT_OUT:
            continue
        if iv.positions not in ("all", phase):
            continue
        sae = saes[iv.feature.sae]
        d_i = sae.W_dec[iv.feature.index].double()
        if iv.op == Op.ADD:
            c = torch.full(x0.shape[:-1], float(iv.value), dtype=torch.float64)
        else:
            a, s = encode_one(x0, sae, iv.feature.index)
            c = (iv.value - a) * s if iv.op == Op.SET else (iv.value - 1) * a * s
        if iv.condition is not None:
            ca, _ = encode_one(x0, saes[iv.condition.feature.sae], iv.condition.feature.index)
            c = c * (ca > iv.condition.threshold)
        delta = delta + c[..., None] * d_i
    out = x0 + delta
    U = [saes[iv.feature.sae].W_dec[iv.feature.index].double() for iv in ivs
         if iv.op == Op.PROJECT_OUT and iv.positions in ("all", phase)]
    for group in (U, list(everywhere)):
        if group:
            M = torch.stack(group, 1)                                   # (d, m), not orthogonal
            out = out - out @ M @ torch.linalg.solve(M.T @ M, M.T)      # least-squares projector
    return out
