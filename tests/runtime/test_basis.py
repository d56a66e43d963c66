"""One subspace rule for `ablate`: `edits.orthonormal_basis`, used by the weights backend
(writer orthogonalization) and by the hook builder (`Q_local`, `Q_everywhere`)."""

from __future__ import annotations

from types import SimpleNamespace

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from steerc.arch.registry import adapter_for
from steerc.compiler.edits import orthonormal_basis
from steerc.compiler.ir import Op
from steerc.runtime.build_hooks import build_hooks
from tests.runtime.helpers import iv, program, stub_config

D = 16


def _projector(Q: torch.Tensor) -> torch.Tensor:
    Q = Q.double()
    return Q @ Q.T


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 6), st.integers(0, 2**31 - 1),
       st.lists(st.floats(1e-7, 1e3), min_size=6, max_size=6))
def test_basis_spans_the_directions_whatever_their_lengths(n, seed, scales):
    g = torch.Generator().manual_seed(seed)
    dirs = [torch.randn(D, generator=g, dtype=torch.float64) for _ in range(n)]
    Q = orthonormal_basis([u * s for u, s in zip(dirs, scales)])
    assert Q.dtype == torch.float32 and Q.shape == (D, n)  # n <= 6 random directions: full rank
    torch.testing.assert_close(Q.double().T @ Q.double(), torch.eye(n, dtype=torch.float64),
                               atol=1e-6, rtol=0)
    P = _projector(Q)
    for u in dirs:  # every direction is removed, the shortest as fully as the longest
        assert ((u - P @ u).norm() / u.norm()) < 1e-5
    torch.testing.assert_close(P, _projector(orthonormal_basis(dirs)), atol=1e-6, rtol=0)


def test_repeated_and_dependent_directions_do_not_add_rank():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(D, generator=g), torch.randn(D, generator=g)
    assert orthonormal_basis([a, 3 * a, -a]).shape == (D, 1)
    assert orthonormal_basis([a, b, 2 * a - 0.5 * b]).shape == (D, 2)


def test_one_direction_is_its_unit_vector():
    u = torch.tensor([3.0, 4.0] + [0.0] * (D - 2))
    assert torch.equal(orthonormal_basis([u])[:, 0], u / 5)


def _fake_sae(rows: torch.Tensor, hook: str):
    """What build_hooks reads of an SAE for ablations: its hook, width and decoder rows."""
    return SimpleNamespace(cfg=SimpleNamespace(hook_name=hook, d_in=rows.shape[1]),
                           select=lambda idx: SimpleNamespace(W_dec=rows[list(idx)]))


def test_hooks_and_weights_remove_the_same_subspace():
    # A long and a short decoder row (1e-7 of it; both above E430's absolute floor): the
    # weights backend's basis and the hook builder's must both remove both directions.
    g = torch.Generator().manual_seed(1)
    rows = torch.randn(2, D, generator=g)
    rows[0] *= 1e4 / rows[0].norm()
    rows[1] *= 1e-3 / rows[1].norm()
    hook = "blocks.1.hook_resid_post"
    saes = {"s": _fake_sae(rows, hook)}
    cfg = stub_config(D)
    for everywhere in (True, False):
        ivs = [iv(Op.PROJECT_OUT, "s", i, 0.0, hook, everywhere=everywhere) for i in (0, 1)]
        hooks = build_hooks(program(*ivs, saes={}), saes, cfg, adapter_for("llama"))
        Q_hooks = hooks.Q_everywhere if everywhere else hooks.hooks[0].Q_local
        Q_weights = orthonormal_basis(list(rows))
        assert Q_hooks.shape == Q_weights.shape == (D, 2)
        torch.testing.assert_close(_projector(Q_hooks), _projector(Q_weights), atol=1e-6, rtol=0)
