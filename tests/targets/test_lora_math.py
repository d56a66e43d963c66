"""The LoRA factors of `--target lora` reproduce edits.py's weight edits (no PEFT needed):
for any writer layout, rank and padding, W + delta(B, A) equals the projected writer, and an
embedding's factors equal the add-then-project of the `weights` target."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from steerc.compiler import edits
from steerc.targets.lora_tensors import _embedding_A, _pad, _writer_A


@dataclass
class _Info:
    shape: tuple


class _Base:
    """The two reads the factor producers make, over in-memory tensors."""

    def __init__(self, tensors):
        self.tensors = tensors

    def info(self, key):
        return _Info(tuple(self.tensors[key].shape))

    def tensor(self, key):
        return self.tensors[key]

    def read_rows(self, key, a, b):
        return self.tensors[key][a:b]


@settings(max_examples=40, deadline=None)
@given(d=st.integers(2, 12), n_in=st.integers(1, 12), k=st.integers(1, 3), pad=st.integers(0, 2),
       conv1d=st.booleans(), seed=st.integers(0, 2**16))
def test_writer_factors_are_the_projection(d, n_in, k, pad, conv1d, seed):
    g = torch.Generator().manual_seed(seed)
    layout = "conv1d" if conv1d else "linear"
    W = torch.randn((n_in, d) if conv1d else (d, n_in), generator=g)
    Q = edits.orthonormal_basis([torch.randn(d, generator=g) for _ in range(k)])
    R = Q.shape[1] + pad
    A = _writer_A(_Base({"w": W}), "w", layout, Q, R)()
    B = _pad([-Q], R, d)
    assert A.shape == (R, n_in) and B.shape == (d, R)  # PEFT: lora_A [r, in], lora_B [out, r]
    delta = B @ A  # [d, in]: PEFT adds x A^T B^T, transposed back for a Conv1D (fan_in_fan_out)
    got = W + (delta.T if conv1d else delta)
    torch.testing.assert_close(got, edits.project_writer(W, Q, layout), atol=1e-5, rtol=1e-5)


@settings(max_examples=40, deadline=None)
@given(d=st.integers(2, 12), V=st.integers(1, 40), k=st.integers(0, 3), add=st.booleans(),
       seed=st.integers(0, 2**16))
def test_embedding_factors_are_add_then_project(d, V, k, add, seed):
    g = torch.Generator().manual_seed(seed)
    E = torch.randn(V, d, generator=g)
    Q = edits.orthonormal_basis([torch.randn(d, generator=g) for _ in range(k)]) if k else None
    delta = torch.randn(d, generator=g) if add else None
    r = 0 if Q is None else Q.shape[1]
    R = max(1, r + int(add))
    A = _embedding_A(_Base({"e": E}), "e", Q, R, add)()
    cols = [] if Q is None else [-Q]
    if add:
        cols.append((delta if Q is None else delta - Q @ (Q.T @ delta))[:, None])
    B = _pad(cols, R, d)
    got = E + A.T @ B.T  # PEFT: embedding(x, A^T) @ B^T
    want = E if delta is None else edits.add_to_rows(E, delta)
    want = want if Q is None else edits.project_embedding(want, Q)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
