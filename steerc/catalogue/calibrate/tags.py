"""Tags from labelled corpora: `--corpus code=PATH --corpus prose=PATH`.

A source label becomes a tag: verbatim when it holds a colon (`entity:amazon=...`),
`format:NAME` for the format names in FORMATS, `topic:NAME` otherwise. A source may carry
several labels of different kinds, comma-separated (`code,topic:xml=PATH`: Python code
about XML). Sources with the same label are pooled.

Tags compare like with like. A tag's kind is the part before its colon (`format`, `topic`,
`entity`); each kind is its own contest over all the calibration tokens. Its groups are the
sources with a label of that kind (pooled by tag), the unlabelled sources (one background
group), and, giving no tag, the other sources grouped by their tags (`format:json,entity:s3`
in the topic contest). With m_s a feature's mean activation per token of group s (zeros
included), the feature gets s's tag when

1. within its kind, s holds >= SHARE (0.6) of the summed means of the kind's groups and the
   background (so, with two groups, it is at least 1.5x as active per token on s);
2. no other group of the contest, of any kind, comes within RATIO (1.5x) of m_s; and
3. it fired on >= MIN_ACTIVE (5) tokens of s (a tag needs more than a few tokens).

With a single kind (formats only, say) rule 2 follows from rule 1. Rule 1 keeps a feature
that fires on every topic alike from getting a topic tag; rule 2 keeps a JSON feature that
fires a little on one topic's code from getting that topic. So topic corpora do not dilute
the format contest (labelled `code,topic:xml`, they count as code there), and the other
sources stay separate groups so that no pooled, diluted remainder makes a rare feature look
selective. Within a kind, groups should share a register (five topics of Python code, five
entities of JSON), so that what tells them apart is the topic, not the format.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch

SHARE = 0.6
RATIO = 1.5
MIN_ACTIVE = 5
FORMATS = frozenset({"code", "json", "prose", "markdown", "html", "xml", "yaml", "csv", "sql", "latex", "math"})
_LABEL = re.compile(r"^[^\s=,]+$")


@dataclass(frozen=True)
class Contest:
    """One kind's groups: its tags first, then the other sources grouped by their tags
    (comma-joined; "" for the unlabelled ones), and their (G, d) shares of mean activation
    relative to the kind's groups and the background (rule 1)."""

    kind: str
    groups: tuple[str, ...]
    share: torch.Tensor
    n_tags: int  # groups[:n_tags] are this kind's tags


def tag_for(label: str) -> str:
    """The tag a source label gives (see the module docstring)."""
    if ":" in label:
        return label
    return f"format:{label}" if label.casefold() in FORMATS else f"topic:{label}"


def kind_of(tag: str) -> str:
    """A tag's kind: the part before its first colon (`format:json` -> `format`)."""
    return tag.split(":", 1)[0]


def source_tags_of(label: str) -> tuple[str, ...]:
    """The tags of one source's label string (`code,topic:xml` -> format:code, topic:xml)."""
    return tuple(tag_for(x) for x in label.split(",")) if label else ()


def label_problem(label: str) -> str | None:
    """Why a source's label string is not usable, or None: each label is one word without
    whitespace, `=` or `,`, and a source has at most one label of each kind."""
    parts = label.split(",")
    bad = next((p for p in parts if not _LABEL.match(p)), None)
    if bad is not None:
        return f"label {bad!r} may not be empty or hold whitespace"
    kinds = [kind_of(tag_for(p)) for p in parts]
    twice = next((k for k in kinds if kinds.count(k) > 1), None)
    return f"two labels of kind '{twice}' on one source" if twice else None


def _runner_up(mean: torch.Tensor) -> torch.Tensor:
    """(G, d): for each group and feature, the highest mean among the other groups (0 if none)."""
    if mean.shape[0] == 1:
        return torch.zeros_like(mean)
    top2 = mean.topk(2, dim=0).values  # (2, d)
    # the best group's runner-up is the second; everyone else's is the best (ties: equal values)
    return torch.where(mean >= top2[0], top2[1], top2[0])


def source_tags(labels: list[str], src_tokens: torch.Tensor, src_count: torch.Tensor,
                src_sum: torch.Tensor) -> tuple[list[list[str]], list[Contest]]:
    """Per feature its tags (kinds in first-seen order), and one `Contest` per kind.

    `labels[s]` is source s's label string ("" for none); `src_tokens` (S,), `src_count`
    and `src_sum` (S, d) (activation sums in activation units).
    """
    d = src_count.shape[1]
    per_source = [source_tags_of(lab) for lab in labels]
    kinds = list(dict.fromkeys(kind_of(t) for tags in per_source for t in tags))
    tags: list[list[str]] = [[] for _ in range(d)]
    contests = []
    for kind in kinds:
        # group of each source in this contest: its tag of this kind, else its other tags
        # ("\0" + tags; "\0" alone is the unlabelled background)
        own = [next((t for t in tags_s if kind_of(t) == kind), None) for tags_s in per_source]
        member = [t if t is not None else "\0" + ",".join(sorted(tags_s)) for t, tags_s in zip(own, per_source)]
        tagged = [g for g in dict.fromkeys(member) if not g.startswith("\0")]
        groups = tagged + [g for g in dict.fromkeys(member) if g.startswith("\0") and g != "\0"]
        groups += ["\0"] if "\0" in member else []  # the background last
        tok = torch.zeros(len(groups), dtype=torch.float64)
        cnt = torch.zeros(len(groups), d, dtype=torch.int64)
        tot = torch.zeros(len(groups), d, dtype=torch.float64)
        for s, g in enumerate(member):
            gi = groups.index(g)
            tok[gi] += float(src_tokens[s])
            cnt[gi] += src_count[s]
            tot[gi] += src_sum[s].double()
        mean = tot / tok.clamp_min(1)[:, None]  # (G, d)
        # rule 1: shares among the kind's groups and the background
        own_rows = mean[[i for i, g in enumerate(groups) if not g.startswith("\0") or g == "\0"]]
        share = mean / own_rows.sum(0, keepdim=True).clamp_min(1e-30)
        hit = (share >= SHARE) & (mean >= RATIO * _runner_up(mean)) & (cnt >= MIN_ACTIVE)
        for gi, g in enumerate(tagged):
            for i in hit[gi].nonzero().flatten().tolist():
                tags[i].append(g)
        contests.append(Contest(kind, tuple(g.lstrip("\0") for g in groups), share, len(tagged)))
    return tags, contests
