"""The steer language's syntax tree: frozen dataclasses, every node with a `Span`.

The parser (steerc.grammar.parser) is the only producer; nothing downstream ever sees
Lark objects. Literal values that a diagnostic may point at (`Str`, `Num`, `Name`) are
nodes of their own so their positions survive.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Union

from steerc.diagnostics import Span


@dataclass(frozen=True)
class Str:
    value: str
    span: Span


@dataclass(frozen=True)
class Num:
    value: float
    span: Span


@dataclass(frozen=True)
class Auto:
    """`auto` where a rule's strength goes (`steer X by auto`): `steerc calibrate` searches
    it and writes it into the spec's lock; check and compile read it from there."""

    span: Span


Amount = Union[Num, Auto]


@dataclass(frozen=True)
class Name:
    value: str
    span: Span


# --- feature references (one feature) --------------------------------------------------


@dataclass(frozen=True)
class IndexRef:
    """`res2[1234]`"""

    sae: Name
    index: int
    span: Span


@dataclass(frozen=True)
class LabelRef:
    """`res2["json key"]`: an exact label or alias in the catalogue."""

    sae: Name
    label: Str
    span: Span


@dataclass(frozen=True)
class SearchRef:
    """`res2[search "python code"]`: text search that must resolve to exactly one feature."""

    sae: Name
    query: Str
    span: Span


# --- feature sets (zero or more features) ----------------------------------------------


@dataclass(frozen=True)
class TagSet:
    """`features tagged "entity:person" [in res2] [limit 20]`"""

    tag: Str
    sae: Name | None
    limit: int | None
    span: Span


@dataclass(frozen=True)
class SearchSet:
    """`features matching "bridge" [in res2] limit 5`"""

    query: Str
    sae: Name | None
    limit: int | None
    span: Span


@dataclass(frozen=True)
class DirectionRef:
    """`refusal`: a direction the spec declares (`direction refusal = ...`), by bare name."""

    name: Name
    span: Span

    @property
    def sae(self) -> None:
        """A direction names no SAE (so code that asks a target for its SAE gets None)."""
        return None


FeatureRef = Union[IndexRef, LabelRef, SearchRef]
Target = Union[IndexRef, LabelRef, SearchRef, TagSet, SearchSet, DirectionRef]

Positions = Literal["all", "prompt", "generated"]


@dataclass(frozen=True)
class Scope:
    """Where a rule applies. Layers: `at layers 2..4` (inclusive) or `everywhere`.

    `positions`: `on prompt` / `on generated` / `on all` (default all).
    """

    layers: tuple[int, int] | None = None
    everywhere: bool = False
    positions: Positions = "all"
    span: Span | None = None


# --- declarations -----------------------------------------------------------------------


SourceKind = Literal["plain", "hub", "saelens"]


@dataclass(frozen=True)
class ModelDecl:
    """`model "path-or-org/name"` (kind plain) or `model hub "org/name[@rev]"` (kind hub)."""

    path: Str          # the string as written: a path, or a hub id with an optional @revision
    span: Span
    kind: SourceKind = "plain"


@dataclass(frozen=True)
class SaeDecl:
    """`sae A = "path"` (plain), `sae A = hub "org/repo[@rev]" [path "dir"]` (hub),
    `sae A = saelens "release[@rev]" id "sae id"` (saelens)."""

    alias: Name
    path: Str          # the first string as written: a path, a repo id or a SAELens release
    span: Span
    kind: SourceKind = "plain"
    sub: Str | None = None  # hub: the folder inside the repo; saelens: the SAE id


@dataclass(frozen=True)
class DirFile:
    """`file "v.safetensors" [key "name"]`: a vector file (safetensors, GGUF control vector,
    `.svec`, or a torch `.pt` with --allow-pickle)."""

    path: Str
    key: Str | None = None


@dataclass(frozen=True)
class DirMean:
    """`mean "a.txt" - mean "b.txt"`: the difference of the mean residual activations over
    the prompts of two files (difference of means); `mean last "a" - mean last "b"`: over
    each prompt's last token only (`last` is None, or the span of the first `last`)."""

    a: Str
    b: Str
    last: Span | None = None


@dataclass(frozen=True)
class DirectionDecl:
    """`direction NAME = file "f" [key "k"] [at layer L | at layers A..B]` or
    `direction NAME = mean "a" - mean "b" at layer L | at layers A..B`; `layers` is inclusive."""

    name: Name
    source: DirFile | DirMean
    layers: tuple[int, int] | None
    span: Span
    layers_span: Span | None = None


@dataclass(frozen=True)
class CatalogueDecl:
    path: Str
    span: Span


@dataclass(frozen=True)
class Use:
    path: Str
    span: Span


# --- rules ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Suppress:
    """Feature activation forced to 0 at its hook point (keeps the SAE error term)."""

    target: Target
    scope: Scope
    span: Span


@dataclass(frozen=True)
class Ablate:
    """Remove the decoder direction: at the hook point, at layers, or `everywhere`."""

    target: Target
    scope: Scope
    span: Span


@dataclass(frozen=True)
class Steer:
    """`steer X by a` / `amplify X by a`: x <- x + a * d_i (same op, two verbs)."""

    verb: Literal["steer", "amplify"]
    target: Target
    amount: Amount
    scope: Scope
    span: Span


@dataclass(frozen=True)
class Clamp:
    """`clamp X to v` (absolute), `clamp X to 5x max` (times the catalogue max activation) or
    `clamp X to auto` (unit abs)."""

    target: Target
    value: Amount
    unit: Literal["abs", "max"]
    scope: Scope
    span: Span


@dataclass(frozen=True)
class Scale:
    """`scale X by k`: activation <- k * activation."""

    target: Target
    factor: Amount
    scope: Scope
    span: Span


Rule = Union[Suppress, Ablate, Steer, Clamp, Scale]


@dataclass(frozen=True)
class When:
    """`when res2["greeting"] > 0.5 { rules }`: rules apply on tokens where the condition holds."""

    feature: FeatureRef | DirectionRef
    threshold: Num
    body: tuple["Rule | When", ...]
    span: Span
    end: Span | None = None  # the closing `}` (the formatter places comments by it)


@dataclass(frozen=True)
class EnforceJson:
    """`enforce json format [strength s]` or `enforce json schema "f" [strength s]`."""

    schema: Str | None
    strength: Num | None
    span: Span


ExpectKind = Literal["is_json", "matches_schema", "mentions", "not_mentions"]


@dataclass(frozen=True)
class Expect:
    """`expect "prompt" is json | matches schema "f" | mentions "t" | not mentions "t"`."""

    prompt: Str
    kind: ExpectKind
    arg: Str | None
    span: Span


@dataclass(frozen=True)
class ExpectRate:
    """`expect at least 95% of "prompts.txt" not mentions "t"`: the check of `Expect`, on
    every prompt of a prompt file; `percent` of them must pass."""

    percent: Num
    prompts: Str
    kind: ExpectKind
    arg: Str | None
    span: Span


@dataclass(frozen=True)
class ExpectKl:
    """`expect kl [on "texts.txt"] below 0.05`: mean next-token KL(base || steered)."""

    texts: Str | None
    bound: Num
    span: Span


@dataclass(frozen=True)
class ExpectChange:
    """`expect res2["x"] down by at least 50% [on "texts.txt"]` (or `up`): the summed mean
    activation of the target's features, steered vs base."""

    target: Target
    direction: Literal["down", "up"]
    percent: Num
    texts: Str | None
    span: Span


@dataclass(frozen=True)
class Baseline:
    """`baseline prompt "Answer only in JSON."`: verify also runs every expect on the base
    model with this text prepended."""

    prompt: Str
    span: Span


Expectation = Union[Expect, ExpectRate, ExpectKl, ExpectChange, Baseline]

Statement = Union[ModelDecl, SaeDecl, DirectionDecl, CatalogueDecl, Use, Suppress, Ablate, Steer, Clamp, Scale,
                  When, EnforceJson, Expect, ExpectRate, ExpectKl, ExpectChange, Baseline]


@dataclass(frozen=True)
class Spec:
    """One parsed file. `comments` keeps (line, text) pairs so `fmt` can put them back."""

    file: str
    statements: tuple[Statement, ...]
    comments: tuple[tuple[int, str], ...] = ()
