"""What resolve reads and what it lowers against.

`Declarations` and `Environment` are resolve's inputs (`load.py` builds the first, and
supplies the second from disk; tests pass fakes). `bind.bind` turns them into a `Context`:
the model, the catalogue and every SAE bound to files, checked once. The context is never
changed afterwards; every lowering function reads it and returns a `Lowered` value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping, Protocol, Sequence

from steerc.compiler import ast
from steerc.compiler.ir import ExpectCheck, HubSource, Intervention, JsonConstraint, SaeBinding
from steerc.diagnostics import Diagnostic


@dataclass(frozen=True)
class SaeInfo:
    """What `check` needs to know about an SAE file (its config and content hash)."""

    hook: str
    d_in: int
    d_sae: int
    sha256: str
    format: str = "saelens"


class CatalogueView(Protocol):
    """The catalogue operations resolve uses (`load.py` adapts `steerc.catalogue`)."""

    sha256: str

    def saes(self) -> Sequence[Any]: ...                       # CatalogueSae-like
    def get(self, sae: str, index: int) -> Any | None: ...     # FeatureInfo-like
    def by_label(self, sae: str, label: str) -> list[Any]: ...  # label match first
    def search(self, query: str, saes: Sequence[str], limit: int) -> list[Any]: ...
    def tagged(self, tag: str, saes: Sequence[str], limit: int | None) -> list[Any]: ...
    def suggest(self, label: str, sae: str) -> list[str]: ...


class Environment(Protocol):
    """Everything resolve reads from disk. Methods raise `DiagnosticError` on bad files."""

    def sae_info(self, path: Path) -> SaeInfo: ...
    def open_catalogue(self, path: Path) -> CatalogueView: ...
    def model_layers(self, path: Path) -> int | None: ...


@dataclass(frozen=True)
class Declarations:
    """The merged, de-duplicated declarations of a spec and its `use`s, and the rest."""

    spec_file: str
    model: ast.ModelDecl | None
    catalogue: ast.CatalogueDecl | None
    saes: tuple[ast.SaeDecl, ...]
    body: tuple[ast.Statement, ...]  # rules, when, enforce, expect: in source order
    files: tuple[str, ...] = ()
    directions: tuple[ast.DirectionDecl, ...] = ()


@dataclass(frozen=True)
class Binding:
    """One declared SAE bound to its file, and its catalogue entry (or why there is none)."""

    decl: ast.SaeDecl
    sae: SaeBinding
    cat_id: str | None = None
    cat_problem: tuple[str, str, str | None] | None = None  # (code, message, hint)


@dataclass(frozen=True)
class Context:
    """The bound declarations every rule is lowered against; built by `bind.bind`."""

    decls: Declarations
    bindings: Mapping[str, Binding]   # alias -> binding, in declaration order; read-only
    model: str = ""                   # the model folder ("" when there is none)
    model_source: HubSource | None = None
    n_layers: int | None = None       # from the model's config.json, when it has one
    cat: CatalogueView | None = None
    cat_path: str | None = None
    catalogue_named: bool = False     # by the spec or --catalogue (it may have failed to load)
    directions: Mapping[str, Any] = field(default_factory=dict)  # name -> DirectionBinding; read-only
    strength: Any = None              # auto.Strength: the calibrated t of `auto` rules

    def __post_init__(self) -> None:
        object.__setattr__(self, "bindings", MappingProxyType(dict(self.bindings)))
        object.__setattr__(self, "directions", MappingProxyType(dict(self.directions)))

    def hook_of(self, alias: str) -> str:
        """The hook point of an SAE alias or of one layer of a direction (`NAME` / `NAME@L`)."""
        if alias in self.bindings:
            return self.bindings[alias].sae.hook
        return next(s.hook for d in self.directions.values() for s in d.saes if s.alias == alias)

    def direction_saes(self) -> tuple[SaeBinding, ...]:
        """The one-feature bindings of every direction, in declaration order."""
        return tuple(s for d in self.directions.values() for s in d.saes)

    def catalogue_ids(self) -> list[str]:
        """The catalogue ids of the SAEs that have one, in declaration order."""
        return [b.cat_id for b in self.bindings.values() if b.cat_id]

    def alias_of(self) -> dict[str, str]:
        """Catalogue id -> the first alias bound to it."""
        out: dict[str, str] = {}
        for a, b in self.bindings.items():
            if b.cat_id:
                out.setdefault(b.cat_id, a)
        return out


@dataclass(frozen=True)
class Lowered:
    """What statements lower to: interventions, the output constraint, expect checks, the
    diagnostics on the way, and the SAE aliases they name (for W207, declared but unused)."""

    interventions: tuple[Intervention, ...] = ()
    diagnostics: tuple[Diagnostic, ...] = ()
    used: frozenset[str] = frozenset()
    json: JsonConstraint | None = None
    expects: tuple[ExpectCheck, ...] = ()

    def __add__(self, other: "Lowered") -> "Lowered":
        return Lowered(self.interventions + other.interventions,
                       self.diagnostics + other.diagnostics, self.used | other.used,
                       self.json if self.json is not None else other.json, self.expects + other.expects)
