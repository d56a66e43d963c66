"""Mergeable partial statistics of one SAE's feature activations.

Every statistic is exact under merging, in any order and any grouping, so the local engine,
a resumed run and the Ray engine all reduce to the same bytes:

- activations are quantised once to fixed point (`Q` = 2**16 steps per unit, so values
  below 2**-17 count as inactive); sums are int64 sums of those integers, maxima are maxima;
- quantiles come from a fixed log-spaced histogram (`BINS_PER_OCTAVE` bins per octave over
  [2**-16, 2**16)): a quantile is the geometric centre of the bin that holds its rank, so
  its relative error is at most 2**(1/32) - 1 = 2.2% (values outside the range clip to the
  end bins); histograms merge by addition;
- top-k contexts are kept per feature ordered by (activation desc, window asc, position
  asc), at most one per window: a total order, so a merge of two heaps is their union cut
  to k, whatever the order the heaps arrive in.

Shapes: d = d_sae, S = number of corpus sources, K = top-k, W = context width in tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

Q = 1 << 16
BINS_PER_OCTAVE = 16
LOW_OCTAVE, HIGH_OCTAVE = -16, 16
BINS = (HIGH_OCTAVE - LOW_OCTAVE) * BINS_PER_OCTAVE
QUANTILES = (0.5, 0.9, 0.99)
_COUNTERS = ("n_tokens", "count", "sum_q", "max_q", "hist", "src_tokens", "src_count", "src_sum_q")
# Statistic names; these are the keys of `to_tensors` and of checkpoint files.
FIELDS = ("n_tokens", "count", "sum_q", "max_q", "hist", "src_tokens", "src_count", "src_sum_q",
          "top_q", "top_win", "top_pos", "top_ctx")


def quantize(values: torch.Tensor) -> torch.Tensor:
    """float activations -> int64 fixed point (round half to even, as torch.round does)."""
    return torch.round(values.double() * Q).to(torch.int64)


def bin_of(q: torch.Tensor) -> torch.Tensor:
    """Histogram bin of quantised positive activations `q` (int64 tensor)."""
    octave = torch.log2(q.double() / Q)
    b = torch.floor((octave - LOW_OCTAVE) * BINS_PER_OCTAVE).to(torch.int64)
    return b.clamp_(0, BINS - 1)


def bin_centre(b: int) -> float:
    """Geometric centre of histogram bin `b` (the value a quantile in it reports)."""
    return float(2.0 ** (LOW_OCTAVE + (b + 0.5) / BINS_PER_OCTAVE))


@dataclass
class Partial:
    """Accumulated statistics of one SAE (mutable: engines add batches into it).

    `n_tokens` counts the tokens seen (special and padding tokens excluded); a feature is
    active on a token when its quantised activation is > 0.
    """

    n_tokens: torch.Tensor   # () int64
    count: torch.Tensor      # (d,) int64: active tokens
    sum_q: torch.Tensor      # (d,) int64: sum of quantised activations where active
    max_q: torch.Tensor      # (d,) int64
    hist: torch.Tensor       # (d, BINS) int64
    src_tokens: torch.Tensor  # (S,) int64
    src_count: torch.Tensor   # (S, d) int64
    src_sum_q: torch.Tensor   # (S, d) int64
    top_q: torch.Tensor      # (d, K) int64; 0 marks an empty slot
    top_win: torch.Tensor    # (d, K) int64: global window number
    top_pos: torch.Tensor    # (d, K) int64: position in the window
    top_ctx: torch.Tensor    # (d, K, W) int64: token ids around it, -1 outside the window

    @staticmethod
    def empty(d: int, n_sources: int, k: int, width: int) -> "Partial":
        """Statistics of no tokens."""
        z = lambda *s: torch.zeros(s, dtype=torch.int64)  # noqa: E731
        return Partial(z(), z(d), z(d), z(d), z(d, BINS), z(n_sources), z(n_sources, d), z(n_sources, d),
                       z(d, k), z(d, k), z(d, k), torch.full((d, k, width), -1, dtype=torch.int64))

    @property
    def d_sae(self) -> int:
        return self.count.shape[0]

    @property
    def k(self) -> int:
        return self.top_q.shape[1]

    @property
    def width(self) -> int:
        return self.top_ctx.shape[2]

    def to_tensors(self) -> dict[str, torch.Tensor]:
        """The statistics as a flat dict of tensors (for safetensors files)."""
        return {name: getattr(self, name).contiguous() for name in FIELDS}

    @staticmethod
    def from_tensors(t: dict[str, torch.Tensor]) -> "Partial":
        """Inverse of `to_tensors`."""
        return Partial(**{name: t[name] for name in FIELDS})

    def to_sparse(self) -> dict[str, torch.Tensor]:
        """The statistics as small tensors: the shape, then for each counter the flat indices
        and values that are not zero, and the held top-k entries as a list. A batch touches
        few features, so this is what engines ship; `merge_sparse` adds it in place."""
        out = {"shape": torch.tensor([self.d_sae, self.src_tokens.shape[0], self.k, self.width])}
        for name in _COUNTERS:
            t = getattr(self, name).reshape(-1)
            idx = t.nonzero(as_tuple=True)[0]
            out[f"{name}.idx"], out[f"{name}.val"] = idx, t[idx]
        held = self.top_q > 0
        out["top.feat"] = held.nonzero(as_tuple=True)[0]
        for name in ("q", "win", "pos", "ctx"):
            out[f"top.{name}"] = getattr(self, f"top_{name}")[held]
        return out

    @staticmethod
    def from_sparse(t: dict[str, torch.Tensor]) -> "Partial":
        """Inverse of `to_sparse`."""
        d, s, k, w = t["shape"].tolist()
        p = Partial.empty(d, s, k, w)
        p.merge_sparse(t)
        return p

    def merge_sparse(self, t: dict[str, torch.Tensor]) -> None:
        """`merge` of another partial given as `to_sparse` output, without densifying it."""
        for name in _COUNTERS:
            flat = getattr(self, name).view(-1)
            idx, val = t[f"{name}.idx"], t[f"{name}.val"]
            if name == "max_q":
                flat.scatter_reduce_(0, idx, val, reduce="amax")
            else:
                flat.index_add_(0, idx, val)
        if t["top.feat"].numel():
            self._merge_top(t["top.feat"], t["top.q"], t["top.win"], t["top.pos"], t["top.ctx"])

    def add(self, acts: torch.Tensor, window: torch.Tensor, pos: torch.Tensor, source: torch.Tensor,
            ids: torch.Tensor, row: torch.Tensor, left: int) -> None:
        """Add a batch of N tokens: `acts` (N, d) float activations; per token its global
        `window` number, `pos`ition in the window, `source` index and `row` in `ids`, the
        batch's (B, T) token ids (contexts are cut from it, `left` tokens before the token)."""
        self.n_tokens += acts.shape[0]
        self.src_tokens += torch.bincount(source, minlength=self.src_tokens.shape[0])
        tok, feat = (acts >= 0.5 / Q).nonzero(as_tuple=True)  # row-major: token, then feature
        if tok.numel() == 0:
            return
        q = quantize(acts[tok, feat])
        live = q > 0
        tok, feat, q = tok[live], feat[live], q[live]
        d = self.d_sae
        self.count += torch.bincount(feat, minlength=d)
        self.sum_q.index_add_(0, feat, q)
        self.max_q.scatter_reduce_(0, feat, q, reduce="amax")
        self.hist.view(-1).index_add_(0, feat * BINS + bin_of(q), torch.ones_like(q))
        src = source[tok]
        flat = src * d + feat
        self.src_count.view(-1).index_add_(0, flat, torch.ones_like(q))
        self.src_sum_q.view(-1).index_add_(0, flat, q)
        # Top-k candidates: only what can still enter a feature's heap (>= its k-th value).
        floor = self.top_q[:, -1]
        keep = q >= floor[feat]
        if not bool(keep.any()):
            return
        tok, feat, q = tok[keep], feat[keep], q[keep]
        win, p, r = window[tok], pos[tok], row[tok]
        feat, q, win, p, r = _one_per_window(feat, q, win, p, r)
        offs = torch.arange(self.width) - left
        cols = p[:, None] + offs[None, :]
        inside = (cols >= 0) & (cols < ids.shape[1])
        ctx = torch.where(inside, ids[r[:, None], cols.clamp(0, ids.shape[1] - 1)].to(torch.int64),
                          torch.full_like(cols, -1))
        self._merge_top(feat, q, win, p, ctx)

    def _merge_top(self, feat, q, win, pos, ctx) -> None:
        # Only the rows of features with candidates are re-sorted and rewritten; rows are
        # moved with index_select / index_copy_ (much cheaper than advanced indexing).
        touched = torch.unique(feat)
        k, w = self.k, self.width
        old_q = self.top_q.index_select(0, touched)  # (t, K)
        held = (old_q > 0).view(-1)
        slots = (touched[:, None] * k + torch.arange(k)).view(-1)[held]
        feat = torch.cat([slots // k, feat])
        q = torch.cat([old_q.view(-1)[held], q])
        win = torch.cat([self.top_win.view(-1).index_select(0, slots), win])
        pos = torch.cat([self.top_pos.view(-1).index_select(0, slots), pos])
        ctx = torch.cat([self.top_ctx.view(-1, w).index_select(0, slots), ctx])
        order = _lexsort(pos, win, -q, feat)  # feature asc, then q desc, window asc, pos asc
        feat = feat[order]
        start = torch.searchsorted(feat, feat, right=False)
        rank = torch.arange(feat.numel()) - start
        ok = rank < k
        order = order[ok]
        dest = feat[ok] * k + rank[ok]
        self.top_q.index_fill_(0, touched, 0)
        self.top_win.index_fill_(0, touched, 0)
        self.top_pos.index_fill_(0, touched, 0)
        self.top_ctx.index_fill_(0, touched, -1)
        self.top_q.view(-1).index_copy_(0, dest, q.index_select(0, order))
        self.top_win.view(-1).index_copy_(0, dest, win.index_select(0, order))
        self.top_pos.view(-1).index_copy_(0, dest, pos.index_select(0, order))
        self.top_ctx.view(-1, w).index_copy_(0, dest, ctx.index_select(0, order))

    def merge(self, other: "Partial") -> None:
        """Add `other` (statistics of disjoint windows) into this one."""
        for name in ("n_tokens", "count", "sum_q", "hist", "src_tokens", "src_count", "src_sum_q"):
            getattr(self, name).add_(getattr(other, name))
        torch.maximum(self.max_q, other.max_q, out=self.max_q)
        held = other.top_q > 0
        f = held.nonzero(as_tuple=True)[0]
        self._merge_top(f, other.top_q[held], other.top_win[held], other.top_pos[held], other.top_ctx[held])


_PACK_LIMIT = 1 << 62


def _lexsort(*keys: torch.Tensor) -> torch.Tensor:
    """Indices sorting by the last key, then the one before, ... (numpy.lexsort order, stable).

    Adjacent int64 keys are packed into one (offset by their minimum, mixed radix) while the
    product of their ranges stays below 2**62: that keeps the order exactly and, since ties
    stay in input order either way, the very same permutation; one stable sort of a packed
    key is several times faster than a multi-key lexsort (the top-k upkeep's main cost)."""
    if keys[0].numel() == 0:
        return torch.zeros(0, dtype=torch.int64)
    packed: list[torch.Tensor] = []
    key, span = None, 1
    for k in reversed(keys):  # most significant first
        lo, hi = int(k.min()), int(k.max())
        r = hi - lo + 1
        if key is not None and span * r < _PACK_LIMIT:
            key, span = key * r + (k - lo), span * r
        else:
            if key is not None:
                packed.append(key)
            # a range too wide to offset (it would overflow int64) stays a key on its own
            key, span = (k - lo, r) if r < _PACK_LIMIT else (k, _PACK_LIMIT)
    packed.append(key)
    order = torch.arange(keys[0].numel())
    for k in reversed(packed):  # least significant first; each sort is stable
        order = order.index_select(0, torch.sort(k.index_select(0, order), stable=True).indices)
    return order


def _one_per_window(feat, q, win, pos, row):
    # Keep each feature's best token per window, so top contexts come from distinct places.
    order = _lexsort(pos, -q, win, feat)
    feat, q, win, pos, row = feat[order], q[order], win[order], pos[order], row[order]
    first = torch.ones_like(feat, dtype=torch.bool)
    first[1:] = (feat[1:] != feat[:-1]) | (win[1:] != win[:-1])
    return feat[first], q[first], win[first], pos[first], row[first]
