"""Partial statistics merge exactly: any split of the batches, in any order, gives the same bytes."""

from __future__ import annotations

import torch
from hypothesis import given, settings, strategies as st

from steerc.catalogue.calibrate.stats import BINS_PER_OCTAVE, Q, Partial, bin_centre, bin_of, quantize
from steerc.catalogue.calibrate.document import quantiles

D, K, W, LEFT = 6, 3, 5, 2


def _batch(seed: int, first_window: int):
    g = torch.Generator().manual_seed(seed)
    B, T = 3, 7
    ids = torch.randint(4, 50, (B, T), generator=g)
    acts = torch.relu(torch.randn(B * T, D, generator=g))
    acts = torch.round(acts * 4) / 4  # coarse values: many exact ties, to test tie-breaking
    row = torch.arange(B).repeat_interleave(T)
    pos = torch.arange(T).repeat(B)
    window = first_window + row
    source = row % 2
    return acts, window, pos, source, ids, row


def _same(a: Partial, b: Partial) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.to_tensors().values(), b.to_tensors().values()))


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(0, 10_000), min_size=1, max_size=6), st.randoms(use_true_random=False))
def test_merge_equals_one_pass_in_any_order(seeds, rnd):
    batches = [_batch(s, 100 * i) for i, s in enumerate(seeds)]
    one = Partial.empty(D, 2, K, W)
    for b in batches:
        one.add(*b, LEFT)
    parts = []
    for b in batches:
        p = Partial.empty(D, 2, K, W)
        p.add(*b, LEFT)
        parts.append(p)
    rnd.shuffle(parts)
    merged = Partial.empty(D, 2, K, W)
    for p in parts:
        merged.merge(p)
    assert _same(one, merged)
    assert _same(merged, Partial.from_sparse(merged.to_sparse()))
    assert _same(merged, Partial.from_tensors(merged.to_tensors()))


def test_top_k_order_and_one_context_per_window():
    acts, window, pos, source, ids, row = _batch(3, 0)
    p = Partial.empty(D, 2, K, W)
    p.add(acts, window, pos, source, ids, row, LEFT)
    for f in range(D):
        held = p.top_q[f] > 0
        keys = list(zip((-p.top_q[f][held]).tolist(), p.top_win[f][held].tolist(), p.top_pos[f][held].tolist()))
        assert keys == sorted(keys)
        assert len(set(p.top_win[f][held].tolist())) == int(held.sum())
        for j in range(int(held.sum())):  # the context's centre is the firing token
            w, t = int(p.top_win[f, j]), int(p.top_pos[f, j])
            assert int(p.top_ctx[f, j, LEFT]) == int(ids[w, t])
            assert int(p.top_q[f, j]) == int(quantize(acts[w * 7 + t, f]))


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(1e-3, 1e3), min_size=1, max_size=300))
def test_quantiles_within_stated_error(values):
    q = quantize(torch.tensor(values, dtype=torch.float64))
    q = q[q > 0]
    hist = torch.bincount(bin_of(q), minlength=512)
    got = quantiles(hist, int(q.numel()), float(q.max()) / Q)
    exact = sorted(float(v) / Q for v in q)
    for name, frac in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99)):
        true = exact[max(1, -(-int(frac * 1e9) * len(exact) // int(1e9))) - 1]
        assert abs(got[name] - true) <= true * (2 ** (1 / (2 * BINS_PER_OCTAVE)) - 1) + 1e-5


def test_bins_cover_the_range():
    assert bin_centre(0) < 2 ** -15 and bin_centre(511) > 2 ** 15


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 4).flatmap(lambda n_keys: st.lists(
    st.tuples(*[st.one_of(st.integers(-3, 3), st.integers(-(2**63), 2**63 - 1))] * n_keys),
    min_size=0, max_size=40)))
def test_lexsort_is_numpys_permutation(rows):
    """The packed-key sort gives numpy.lexsort's exact (stable) permutation, ties and int64
    extremes included."""
    import numpy as np

    from steerc.catalogue.calibrate.stats import _lexsort

    if not rows:
        assert _lexsort(torch.zeros(0, dtype=torch.int64)).numel() == 0
        return
    cols = list(zip(*rows))
    keys = [torch.tensor(c, dtype=torch.int64) for c in cols]
    want = np.lexsort([np.array(c, dtype=np.int64) for c in cols])
    assert _lexsort(*keys).tolist() == want.tolist()
