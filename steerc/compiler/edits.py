"""The weight-edit math: pure functions on tensors (docs/semantics.md).

Every edit is computed in fp32 and cast back to the stored dtype by `finish`. Shapes use
d = d_model, r = rank of a projected-out subspace (Q is [d, r] with orthonormal columns):

    writer (linear, weight [d, in]):  W <- W - Q (Q^T W)        (I - Q Q^T) W
    writer (conv1d, weight [in, d]):  W <- W - (W Q) Q^T        W (I - Q Q^T)
    bias [d]:                         b <- b - Q (Q^T b)
    embedding [V, d]:                 E <- E - (E Q) Q^T
    bias slot (add at resid_post):    b <- b + sum_i alpha_i d_i
    embedding add (resid_pre 0):      E <- E + 1 (sum_i alpha_i d_i)^T   (every row)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

# Singular values below this fraction of the largest are rank deficiency (a direction
# repeated, or a combination of the others), not a direction of its own.
_RANK_TOL = 1e-6


def orthonormal_basis(directions: Sequence[torch.Tensor]) -> torch.Tensor:
    """An orthonormal basis Q [d, r] of span{directions} (each [d]); r = numerical rank.

    The one rule for both targets (the weights backend orthogonalizes with it, the hook
    builder stores it as `Q_local` / `Q_everywhere`), so both remove the same subspace. Each
    direction counts by its direction alone: it is scaled to unit length before the rank is
    taken, so a feature with a short decoder row is removed as fully as one with a long row
    (the numeric guard, E430, has refused rows too short to have a direction). Computed in
    float64 with an SVD (deterministic on CPU), returned as fp32. One direction u gives
    Q = u / |u| exactly up to rounding, matching `x - (u.x) u` with u a unit vector.
    """
    if len(directions) == 0:
        raise ValueError("orthonormal_basis needs at least one direction")
    A = torch.stack([d.detach().to(torch.float64).reshape(-1) for d in directions], dim=1)  # (d, n)
    if A.shape[1] == 1:
        return (A / A.norm()).to(torch.float32)
    U, S, _ = torch.linalg.svd(A / A.norm(dim=0, keepdim=True), full_matrices=False)
    r = int((S > _RANK_TOL * S.max()).sum())
    return U[:, :r].contiguous().to(torch.float32)


def _f32(t: torch.Tensor) -> torch.Tensor:
    return t.detach().to(torch.float32)


def project_writer(weight: torch.Tensor, Q: torch.Tensor, layout: str) -> torch.Tensor:
    """Remove span(Q) from a residual writer's output space; returns fp32."""
    W = _f32(weight)
    if layout == "linear":  # (d, in)
        assert W.shape[0] == Q.shape[0], (W.shape, Q.shape)
        return W - Q @ (Q.T @ W)
    if layout == "conv1d":  # (in, d)
        assert W.shape[1] == Q.shape[0], (W.shape, Q.shape)
        return W - (W @ Q) @ Q.T
    raise ValueError(f"unknown writer layout {layout!r}")


def project_bias(bias: torch.Tensor, Q: torch.Tensor) -> torch.Tensor:
    """b - Q Q^T b for a writer bias [d]; returns fp32."""
    b = _f32(bias)
    assert b.shape == (Q.shape[0],), (b.shape, Q.shape)
    return b - Q @ (Q.T @ b)


def project_embedding(table: torch.Tensor, Q: torch.Tensor) -> torch.Tensor:
    """E (I - Q Q^T) for an embedding table [V, d]; returns fp32."""
    E = _f32(table)
    assert E.shape[1] == Q.shape[0], (E.shape, Q.shape)
    return E - (E @ Q) @ Q.T


def add_to_bias(bias: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
    """b + delta, both [d]; returns fp32."""
    b = _f32(bias)
    assert b.shape == delta.shape, (b.shape, delta.shape)
    return b + _f32(delta)


def add_to_rows(table: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
    """Add delta [d] to every row of a [V, d] table (an add at resid_pre 0); returns fp32."""
    E = _f32(table)
    assert E.shape[1] == delta.shape[0], (E.shape, delta.shape)
    return E + _f32(delta)[None, :]


ROWS = 2048  # row block of `iter_rows`: bounds the fp32 working set of a large embedding


def iter_rows(read, shape: tuple[int, int], delta: torch.Tensor | None, Q: torch.Tensor | None,
              dtype: torch.dtype):
    """`add_to_rows` then `project_embedding` of a [V, d] table, ROWS rows at a time: yields
    the edited `dtype` blocks in row order. `read(a, b)` returns stored rows [a, b). Each
    row's math is that of the whole-table functions (rows are independent)."""
    for a in range(0, shape[0], ROWS):
        x = _f32(read(a, min(a + ROWS, shape[0])))
        if delta is not None:
            x = x + _f32(delta)[None, :]
        if Q is not None:
            x = x - (x @ Q) @ Q.T
        yield x.to(dtype).contiguous()


def finish(t: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Cast an fp32 result back to the stored dtype, contiguous (ready to serialize)."""
    return t.to(dtype).contiguous()
