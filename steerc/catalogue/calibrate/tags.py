"""Tags from labelled corpora: `--corpus code=PATH --corpus prose=PATH`.

A source label becomes a tag: verbatim when it holds a colon (`entity:amazon=...`),
`format:NAME` for the format names in FORMATS, `topic:NAME` otherwise. Sources with the
same label are pooled; unlabelled sources are pooled into one background group that counts
in the shares but gives no tag (so `--corpus entity:amazon=A.txt --corpus web.txt` works).

Rule: with m_s a feature's mean activation per token of source s (zeros included), its
share of s is m_s / sum(m over all groups). The feature gets s's tag when the share is
>= SHARE (0.6) and it fired on >= MIN_ACTIVE (5) tokens of s. So with two sources a tagged
feature is at least 1.5x as active per token on its source as on the other, and a tag
needs evidence from more than a few tokens.
"""

from __future__ import annotations

import re

import torch

SHARE = 0.6
MIN_ACTIVE = 5
FORMATS = frozenset({"code", "json", "prose", "markdown", "html", "xml", "yaml", "csv", "sql", "latex", "math"})
_LABEL = re.compile(r"^[^\s=]+$")


def tag_for(label: str) -> str:
    """The tag a source label gives (see the module docstring)."""
    if ":" in label:
        return label
    return f"format:{label}" if label.casefold() in FORMATS else f"topic:{label}"


def valid_label(label: str) -> bool:
    """A source label is one word without whitespace or `=` (tags hold no whitespace)."""
    return bool(_LABEL.match(label))


def source_tags(labels: list[str], src_tokens: torch.Tensor, src_count: torch.Tensor,
                src_sum: torch.Tensor) -> tuple[list[list[str]], list[str], torch.Tensor]:
    """Per feature its tags; also the pooled group names ("" = background) and their (G, d) shares.

    `labels[s]` is source s's label ("" for none); `src_tokens` (S,), `src_count` and
    `src_sum` (S, d) (activation sums in activation units).
    """
    d = src_count.shape[1]
    groups = list(dict.fromkeys(tag_for(lab) if lab else "" for lab in labels))
    if not any(groups):
        return [[] for _ in range(d)], [], torch.zeros(0, d)
    tok = torch.zeros(len(groups), dtype=torch.float64)
    cnt = torch.zeros(len(groups), d, dtype=torch.int64)
    tot = torch.zeros(len(groups), d, dtype=torch.float64)
    for s, lab in enumerate(labels):
        g = groups.index(tag_for(lab) if lab else "")
        tok[g] += float(src_tokens[s])
        cnt[g] += src_count[s]
        tot[g] += src_sum[s].double()
    mean = tot / tok.clamp_min(1)[:, None]
    share = mean / mean.sum(0, keepdim=True).clamp_min(1e-30)
    hit = (share >= SHARE) & (cnt >= MIN_ACTIVE)
    tags = [[groups[g] for g in range(len(groups)) if groups[g] and hit[g, i]] for i in range(d)]
    return tags, groups, share
