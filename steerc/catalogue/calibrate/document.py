"""Reduced statistics -> catalogue features (labels, tags, statistics, contexts, output side)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from steerc.catalogue.calibrate import labels as L
from steerc.catalogue.calibrate.stats import BINS, Q, QUANTILES, Partial, bin_centre
from steerc.catalogue.calibrate.tags import source_tags


@dataclass(frozen=True)
class Shape:
    """Context geometry and how much of it the catalogue shows."""

    left: int
    right: int
    n_contexts: int
    n_logits: int


class Tokens:
    """Token id -> text, cached; special tokens and -1 (outside the window) are ""."""

    def __init__(self, tokenizer):
        self.tok = tokenizer
        self.special = set(getattr(tokenizer, "all_special_ids", []) or [])
        self._cache: dict[int, str] = {}

    def text(self, i: int) -> str:
        if i < 0 or i in self.special:
            return ""
        if i not in self._cache:
            self._cache[i] = self.tok.decode([i])
        return self._cache[i]

    def join(self, ids: list[int]) -> str:
        return self.tok.decode([i for i in ids if i >= 0 and i not in self.special])


def quantiles(hist_row: torch.Tensor, count: int, max_value: float) -> dict[str, float]:
    """p50/p90/p99 of the active values from one histogram row (bin centres, clipped to the max)."""
    if count == 0:
        return {}
    cum = torch.cumsum(hist_row, 0)
    out = {}
    for q in QUANTILES:
        rank = max(1, int(-(-q * count // 1)))  # ceil(q * count): the rank-th smallest value
        b = int(torch.searchsorted(cum, torch.tensor(rank)))
        out[f"p{round(q * 100):d}"] = round(min(bin_centre(min(b, BINS - 1)), max_value), 5)
    return out


def features(sae_id: str, p: Partial, tokens: Tokens, shape: Shape, source_labels: list[str],
             output: tuple[torch.Tensor, torch.Tensor] | None) -> list[dict]:
    """Catalogue feature entries for every feature of one SAE, in index order."""
    d, n_tok = p.d_sae, int(p.n_tokens)
    tag_lists, contests = source_tags(source_labels, p.src_tokens, p.src_count, p.src_sum_q.double() / Q)
    labels, fallback, ctx_all = [], [], []
    for i in range(d):
        held = int((p.top_q[i] > 0).sum())
        rows = p.top_ctx[i, :held].tolist()
        ctx_all.append(rows)
        texts = [[tokens.text(t) for t in r] for r in rows]
        labels.append(L.label_feature(texts, shape.left, shape.right))
        fallback.append(f"inactive {i}")
    named = L.dedupe(labels, fallback)
    out = []
    for i in range(d):
        count = int(p.count[i])
        tags = list(tag_lists[i]) if count else ["inactive"]
        mx = float(p.max_q[i]) / Q
        mean = float(p.sum_q[i]) / Q / count if count else None
        ctx = [{"text": tokens.join(r[:shape.left]) + "«" + tokens.join(r[shape.left:shape.left + 1]) + "»"
                + tokens.join(r[shape.left + 1:]),
                "activation": round(float(p.top_q[i, j]) / Q, 4)}
               for j, r in enumerate(ctx_all[i][:shape.n_contexts])]
        f = {"index": i, "label": named[i][0], "aliases": named[i][1], "tags": tags,
             "max_activation": round(mx, 5), "density": round(count / n_tok, 6) if n_tok else None,
             "mean_active": round(mean, 5) if mean is not None else None,
             "quantiles": quantiles(p.hist[i], count, mx), "top_contexts": ctx}
        if output is not None:
            f["promotes"] = [_shown(tokens.text(t)) for t in output[0][i].tolist() if t not in tokens.special][:shape.n_logits]
            f["suppresses"] = [_shown(tokens.text(t)) for t in output[1][i].tolist() if t not in tokens.special][:shape.n_logits]
        f["description"] = _describe(f, n_tok, [(c.groups[:c.n_tags], c.share[:c.n_tags, i]) for c in contests])
        out.append({"sae": sae_id, **f})
    return out


def _shown(text: str) -> str:
    # Token texts as shown in the catalogue: visible whitespace, never empty.
    return text.replace("\n", "\\n").replace("\t", "\\t") if text.strip() else (repr(text)[1:-1] or "<empty>")


def _describe(f: dict, n_tok: int, shares: list[tuple[tuple[str, ...], torch.Tensor]]) -> str:
    if not f["top_contexts"]:
        return f"Never fired on the {n_tok} calibration tokens."
    parts = [f"Fires on {f['density']:.4%} of {n_tok} calibration tokens; mean {f['mean_active']:.4g} when active"
             + (f" (p50 {f['quantiles']['p50']:.3g}, p90 {f['quantiles']['p90']:.3g}, p99 {f['quantiles']['p99']:.3g})"
                if f["quantiles"] else "") + f", max {f['max_activation']:.4g}."]
    if "promotes" in f:
        parts.append("Promotes: " + ", ".join(f["promotes"]) + ". Suppresses: " + ", ".join(f["suppresses"]) + ".")
    for groups, share in shares:  # one sentence per tag kind (tags.py: kinds are separate contests)
        rest = 1.0 - float(share.sum())
        parts.append("Share of mean activation: " + ", ".join(
            [f"{g} {float(s):.2f}" for g, s in zip(groups, share)] + [f"other {rest:.2f}"] * (rest > 0.005)) + ".")
    return " ".join(parts)
