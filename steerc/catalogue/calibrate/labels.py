"""Automatic labels from a feature's top contexts: readable, searchable, quote-free.

A context is a token window with the firing token at `left`. Rule, per feature:

1. Name each firing token: its text without whitespace or double quotes when it holds a
   letter or digit (`Amazon`), else the Unicode names of its characters (`left curly
   bracket`, `newline`, `indentation`).
2. If one name fires in >= 40% of the top contexts it is the label's core. The most
   frequent phrase around it (up to `left` tokens before and `right` after, seen in at least
   half of those contexts and at least twice) is its pattern; the label is
   `core (in “pattern”)`, e.g. `Amazon (in “Amazon Web Services”)`. Without such a
   phrase, a core that is part of words names up to WORDS of the whole words it sits in,
   most frequent first: `Bu (in “Bucket”, “Build”)` (searchable by those words; only the
   core becomes an alias, since a word seen in a few contexts does not name a feature).
3. Otherwise, if one previous token dominates the same way: `after <name>`; otherwise the
   two most frequent names, `a / b`.
ASCII double quotes never appear in a label or alias (the pattern sits in typographic quotes
and its own `"` becomes `'`), so a label is written in a spec string as is, no escapes. Labels are made unique per SAE with ` #2`, ` #3`, ... in
index order; the core and the pattern become aliases unless they are another feature's label.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from dataclasses import dataclass

DOMINANT = 0.4
WORDS = 3
_WS_NAMES = {"\n": "newline", "\t": "tab", " ": "space"}


@dataclass(frozen=True)
class Label:
    """A feature's label and aliases (before de-duplication across features)."""

    label: str
    aliases: tuple[str, ...]


def token_name(text: str) -> str:
    """A readable name for one token's text (see the module docstring)."""
    core = text.replace('"', "").strip()
    if any(c.isalnum() for c in core):
        return " ".join(core.split())
    if not text.strip():
        if "\n" in text:
            return "newline" if text.count("\n") == 1 and not text.strip("\n") else "newline and indentation"
        return "space" if text == " " else ("tab" if text == "\t" else "indentation")
    names = []
    for c in text.strip():
        names.append(_WS_NAMES.get(c) or unicodedata.name(c, f"U+{ord(c):04X}").lower())
    return " ".join(names) if len(names) <= 3 else f"{names[0]} ... ({len(names)} characters)"


def _phrase(texts: list[str]) -> str:
    return " ".join("".join(texts).replace('"', "'").split())


def label_feature(contexts: list[list[str]], left: int, right: int) -> Label | None:
    """Label from `contexts` (each a list of token texts, firing token at `left`, absent
    positions as None-free shorter lists are not allowed: use "" for outside the window).
    None when there are no contexts."""
    if not contexts:
        return None
    n = len(contexts)
    names = [token_name(c[left]) for c in contexts]
    cur = Counter(names)
    top, count = min(cur.items(), key=lambda kv: (-kv[1], kv[0]))
    if count >= DOMINANT * n:
        mine = [c for c, nm in zip(contexts, names) if nm == top]
        pattern = _pattern(mine, left, right)
        aliases = [top] if pattern else []
        if pattern and pattern.casefold() != top.casefold():
            aliases.append(pattern)
            return Label(f"{top} (in \u201c{pattern}\u201d)", tuple(aliases))
        words = Counter(w for w in (_word(c, left) for c in mine) if w and w.casefold() != top.casefold())
        if words and any(ch.isalnum() for ch in top):
            ranked = sorted(words.items(), key=lambda kv: (-kv[1], kv[0]))[:WORDS]
            shown = ", ".join(f"\u201c{w}\u201d" for w, _ in ranked)
            return Label(f"{top} (in {shown})", (top,))
        return Label(top, ())
    prev = Counter(token_name(c[left - 1]) for c in contexts if left > 0 and c[left - 1])
    if prev:
        p, pc = min(prev.items(), key=lambda kv: (-kv[1], kv[0]))
        if pc >= DOMINANT * n:
            return Label(f"after {p}", (p,))
    ranked = sorted(cur.items(), key=lambda kv: (-kv[1], kv[0]))
    if len(ranked) > 1:
        return Label(f"{ranked[0][0]} / {ranked[1][0]}", (ranked[0][0], ranked[1][0]))
    return Label(top, ())


def _word(context: list[str], left: int) -> str:
    # The whole word the firing token is part of: neighbours joined while no whitespace or
    # punctuation separates them (`Bu` + `cket` -> `Bucket`).
    lo, hi = left, left
    while lo > 0 and context[lo - 1][-1:].isalnum() and context[lo][:1].isalnum():
        lo -= 1
    while hi + 1 < len(context) and context[hi][-1:].isalnum() and context[hi + 1][:1].isalnum():
        hi += 1
    return _phrase(context[lo:hi + 1])


def _pattern(contexts: list[list[str]], left: int, right: int) -> str | None:
    best: tuple | None = None
    need = max(2, (len(contexts) + 1) // 2)
    for a in range(left + 1):
        for b in range(right + 1):
            if a + b == 0:
                continue
            spans = Counter()
            for c in contexts:
                piece = c[left - a:left + b + 1]
                if all(piece):  # every token inside the window
                    spans[_phrase(piece)] += 1
            for text, k in spans.items():
                if k >= need and text and any(ch.isalnum() for ch in text):
                    key = (len(text.split()), a + b, k, text)
                    if best is None or key[:3] > best[:3] or (key[:3] == best[:3] and text < best[3]):
                        best = key
    return best[3] if best else None


def dedupe(labels: list[Label], fallback: list[str]) -> list[tuple[str, list[str]]]:
    """Unique labels (casefolded, whitespace collapsed) in order, and aliases that are not
    another feature's label. `fallback[i]` names a feature without a label."""
    out, seen = [], set()
    for lab, fb in zip(labels, fallback):
        base = lab.label if lab else fb
        label, n = base, 1
        while " ".join(label.split()).casefold() in seen:
            n += 1
            label = f"{base} #{n}"
        seen.add(" ".join(label.split()).casefold())
        out.append((label, list(lab.aliases) if lab else []))
    result = []
    for label, aliases in out:
        own = " ".join(label.split()).casefold()
        keep = [a for a in dict.fromkeys(aliases)
                if " ".join(a.split()).casefold() not in seen or " ".join(a.split()).casefold() == own]
        result.append((label, [a for a in keep if " ".join(a.split()).casefold() != own]))
    return result
