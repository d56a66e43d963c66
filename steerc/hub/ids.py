"""Hub ids as a spec writes them: `org/name`, optionally pinned `org/name@revision`.

A Hub repo id is `org/name` (the Hub's own rules: letters, digits, `-`, `_`, `.`; no `--` or
`..`; at most 96 characters). The revision after the first `@` is a branch, a tag or a
commit sha (`main`, `v1.0`, `refs/pr/3`, `0fd4c5e...`); repo ids never contain `@`, so the
first `@` always splits. A bare `name` without an org is a path, never a hub id.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_PART = r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?"
_REPO = re.compile(rf"{_PART}/{_PART}")
_REVISION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]*")
MAX_REPO_ID = 96


@dataclass(frozen=True)
class HubRef:
    """A parsed `org/name[@revision]`; `revision` None means the repo's default branch."""

    repo: str
    revision: str | None

    def __str__(self) -> str:
        return self.repo + (f"@{self.revision}" if self.revision else "")


def parse_ref(text: str, *, bare: bool = False) -> HubRef | str:
    """`org/name[@rev]` -> HubRef, or a message saying what is wrong with it. `bare` also
    accepts a legacy id without an org (`gpt2`), for the explicit `hub "..."` form."""
    repo, at, rev = text.partition("@")
    if not (_REPO.fullmatch(repo) or (bare and re.fullmatch(_PART, repo))) or "--" in repo or ".." in repo or len(repo) > MAX_REPO_ID:
        return (f"'{repo}' is not a Hub repo id: it must be `org/name` (letters, digits, "
                "'-', '_', '.'; no '--' or '..')")
    if at and not rev:
        return "nothing after '@': name a branch, a tag or a commit sha, or drop the '@'"
    if at and (not _REVISION.fullmatch(rev) or ".." in rev or rev.endswith("/")):
        return f"'{rev}' is not a revision: name a branch, a tag or a commit sha after '@'"
    return HubRef(repo, rev if at else None)


def looks_like_hub_id(text: str) -> bool:
    """True when `text` reads as `org/name[@rev]` (what a plain `model "..."` may be)."""
    return isinstance(parse_ref(text), HubRef)


def is_explicit_path(text: str) -> bool:
    """A string that can only be a path: absolute, `~`, or starting with `./` / `../`."""
    return text.startswith(("/", "~", "./", "../", "\\")) or text in (".", "..")
