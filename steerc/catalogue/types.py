"""The records a catalogue hands out: one SAE, one feature. Frozen and hashable."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CatalogueSae:
    """An SAE a catalogue describes; `id` is the name a spec uses (`res2["email"]`)."""

    id: str
    hook: str
    d_sae: int
    sha256: str | None
    model: str | None


@dataclass(frozen=True)
class FeatureInfo:
    """One catalogued feature: names, tags and activation statistics.

    `top_contexts` holds `(text, activation)` pairs, highest activation first as written
    in the catalogue. `max_activation` and `density` (fraction of tokens where the feature
    fires, in [0, 1]) are None when the catalogue does not know them.
    """

    sae: str
    index: int
    label: str
    aliases: tuple[str, ...]
    description: str
    tags: tuple[str, ...]
    max_activation: float | None
    density: float | None
    top_contexts: tuple[tuple[str, float], ...] = ()

    @property
    def ref(self) -> str:
        """The spec-style reference, e.g. `res2[12]`."""
        return f"{self.sae}[{self.index}]"


def normalize_name(text: str) -> str:
    """The form labels, aliases and tags are matched in: whitespace collapsed, casefolded."""
    return " ".join(text.split()).casefold()
