"""The `everywhere` projection at scale: edits.py's math, block by block, in place.

Same results, bit for bit, as `edits.finish(edits.project_writer(...))` and
`edits.iter_rows`, with fewer passes over memory: the one reduction the math needs over a
whole tensor (C = Q^T W for a linear writer, S = W Q for a conv1d one) is the same call as
in edits.py, then the rank-1 update runs on cache-sized row blocks in place, and each block
is cast to the stored dtype and handed to the writer while it is still in cache. For rank 1
(one projected direction, Q = q [d, 1]) the update Q C has one product per element, so
`q_i * c_j` rounded once is exactly what the matmul gives and blocking cannot change a bit;
for rank > 1 (a sum per element, whose order the BLAS kernel picks) the whole-tensor
edits.py functions are used.

Shapes: d = d_model, Q [d, r]; linear writer W [d, in]; conv1d writer W [in, d]; embedding
E [V, d].
"""

from __future__ import annotations

import threading
from typing import Callable, Iterator

import torch

from steerc.compiler import edits

BLOCK_BYTES = 1 << 21  # fp32 bytes of one update block (fits a per-core L2)


def _rows_per_block(cols: int) -> int:
    return max(1, BLOCK_BYTES // (4 * max(cols, 1)))


class Scratch:
    """Buffers reused from one tensor to the next (one per purpose and thread, grown to the
    largest request): a fresh multi-MB allocation is page-faulted in on every use, which on
    a VM costs as much as the math. Each thread that makes tensors gets its own set."""

    def __init__(self):
        self._local = threading.local()

    def get(self, purpose: str, shape, dtype: torch.dtype) -> torch.Tensor:
        """A contiguous `shape` tensor of `dtype`, this thread's; its contents are garbage."""
        bufs = self._local.__dict__
        n = torch.Size(shape).numel()
        buf = bufs.get(purpose)
        if buf is None or buf.dtype != dtype or buf.numel() < n:
            buf = bufs[purpose] = torch.empty(n, dtype=dtype)
        return buf[:n].view(shape)


def writer_blocks(weight: torch.Tensor, Q: torch.Tensor, layout: str,
                  dtype: torch.dtype, scratch: Scratch | None = None) -> Iterator[torch.Tensor]:
    """Row blocks (in `dtype`, row-major order) of `(I - Q Q^T)` applied to a residual writer:
    equal to `edits.finish(edits.project_writer(weight, Q, layout), dtype)` split by rows.
    Peak memory: one fp32 copy of the weight (the reduction needs every row first), in
    `scratch` when given."""
    if Q.shape[1] != 1 or layout not in ("linear", "conv1d"):
        yield edits.finish(edits.project_writer(weight, Q, layout), dtype)
        return
    # an fp32 copy even when the weight is fp32 already: updated in place below
    if scratch is None:
        X = weight.detach().to(torch.float32, copy=True)
    else:
        X = scratch.get("writer.f32", weight.shape, torch.float32)
        X.copy_(weight.detach())
    if layout == "linear":  # (d, in): C = Q^T X [1, in], X[i] -= q_i C
        assert X.shape[0] == Q.shape[0], (X.shape, Q.shape)
        C = Q.T @ X
        left, right = Q, C
    else:  # conv1d (in, d): S = X Q [in, 1], X[i] -= s_i q^T
        assert X.shape[1] == Q.shape[0], (X.shape, Q.shape)
        S = X @ Q
        left, right = S, Q.T
    n = _rows_per_block(X.shape[1])
    buf = (scratch or Scratch()).get("writer.update", (n, X.shape[1]), torch.float32)
    for a in range(0, X.shape[0], n):
        b = min(a + n, X.shape[0])
        p = buf[: b - a]
        torch.mul(left[a:b], right, out=p)  # (left @ right)[a:b]: one rounded product each
        x = X[a:b]
        x.sub_(p)
        yield x.to(dtype, copy=True)  # a new block: X may be scratch, reused by the next tensor


def embedding_blocks(read: Callable[[int, int], torch.Tensor], shape: tuple[int, int],
                     delta: torch.Tensor | None, Q: torch.Tensor | None,
                     dtype: torch.dtype, scratch: Scratch | None = None) -> Iterator[torch.Tensor]:
    """`edits.iter_rows` (add `delta` to every row, then `E (I - Q Q^T)`), bit for bit, with
    reused fp32 buffers and a cache-sized update. `read(a, b)` returns stored rows [a, b).
    The dot products x Q run on iter_rows' own `edits.ROWS`-row blocks: a BLAS gemv treats
    the rows of a block's tail differently, so other block bounds could change a last bit."""
    if Q is not None and Q.shape[1] != 1:
        yield from edits.iter_rows(read, shape, delta, Q, dtype)
        return
    V, d = shape
    R = edits.ROWS
    m = _rows_per_block(d)
    scratch = scratch or Scratch()
    xbuf = scratch.get("emb.f32", (min(R, V), d), torch.float32)
    pbuf = scratch.get("emb.update", (min(m, V), d), torch.float32)
    delta32 = None if delta is None else delta.detach().to(torch.float32).reshape(1, -1)
    for a in range(0, V, R):
        b = min(a + R, V)
        x = xbuf[: b - a]
        x.copy_(read(a, b))
        if delta32 is not None:
            x.add_(delta32)
        s = x @ Q if Q is not None else None  # [rows, 1]
        for c in range(0, b - a, m):
            e = min(c + m, b - a)
            if s is not None:
                p = pbuf[: e - c]
                torch.mul(s[c:e], Q.T, out=p)  # ((x Q) Q^T) with r = 1: one rounded product each
                x[c:e].sub_(p)
            yield x[c:e].to(dtype, copy=True)  # a new block: xbuf is reused
