"""Resolve: AST statements -> `ir.Program`, every name made concrete.

Input is the merged output of `load.py` (declarations already de-duplicated across `use`d
files); the environment (`Environment`) supplies SAE configs, the catalogue and the model's
layer count, so tests can run on fakes. Every problem is collected; `DiagnosticError` is
raised at the end if any is an error.

Rules that are not obvious from the syntax (docs/diagnostics-semantic.md, "Semantics notes"):
- `steer`/`amplify` values are in units of the SAE's decoder row: x <- x + a * d_i.
- `clamp X to 5x max` uses the catalogue's `max_activation` of that feature.
- `at layers A..B` (ablate, steer) targets `blocks.L.hook_resid_post` for L in A..B and is
  only allowed for residual-stream SAEs (the direction must live in that space).
- Conflicts: two rules that set or scale the same feature at the same point, under the same
  condition, on overlapping positions, are an error. steerc applies no silent precedence.
- `enforce json` suppresses catalogue features tagged format:prose/code/markdown and scales
  features tagged format:json by `strength` (activation x strength where they fire; default
  `DEFAULT_JSON_STRENGTH`, 1 = suppress only), then adds the decode-time guard.
- Feature sets (`features matching "q"`) without a limit take `DEFAULT_SEARCH_LIMIT` hits;
  tag sets without a limit take every tagged feature.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, Sequence

from steerc.compiler import ast
from steerc.compiler.ir import FeatureId, HubSource, Intervention, Program, SaeBinding
from steerc.compiler.locate import locate_model, locate_sae, spec_relative
from steerc.diagnostics import Collector, Diagnostic, DiagnosticError, Span, did_you_mean

DEFAULT_JSON_STRENGTH = 2.0
DEFAULT_SEARCH_LIMIT = 10
CANDIDATES_SHOWN = 5
CLAMP_WARN_FACTOR = 100.0    # Templeton et al. 2024 saw incoherent text far above max
STEER_WARN_FACTOR = 100.0    # |a| above this many max activations of the feature
SCALE_WARN_RANGE = (0.0, 100.0)
JSON_SUPPRESS_TAGS = ("format:prose", "format:code", "format:markdown")
JSON_STEER_TAG = "format:json"
RESIDUAL_HOOKS = ("hook_resid_pre", "hook_resid_mid", "hook_resid_post")
# Hooks whose activations live in the residual space (d_model): their directions can be
# projected out of every residual write.
RESIDUAL_SPACE_HOOKS = RESIDUAL_HOOKS + ("hook_mlp_out", "hook_attn_out", "hook_embed")


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


def _norm(text: str) -> str:
    return " ".join(text.split()).casefold()


def missing_file(col: Collector, s: ast.Str, what: str, resolved: str) -> None:
    """E207 at the string that names a missing file."""
    col.error("E207", f"{what} not found: '{resolved}'", s.span,
              f"paths in a spec are relative to the spec file's directory "
              f"('{os.path.dirname(s.span.file) or '.'}')")


def _reraise_at(col: Collector, err: DiagnosticError, span: Span) -> None:
    for d in err.diagnostics:
        col.diagnostics.append(d if d.span else Diagnostic(d.code, d.message, span, d.hint))


@dataclass(frozen=True)
class _Feat:
    """One resolved feature: spec alias, index, and its catalogue record (or None)."""

    alias: str
    index: int
    info: Any | None

    @property
    def id(self) -> FeatureId:
        return FeatureId(self.alias, self.index, getattr(self.info, "label", None))


@dataclass
class _Binding:
    decl: ast.SaeDecl
    sae: SaeBinding
    cat_id: str | None = None
    cat_problem: tuple[str, str, str | None] | None = None  # (code, message, hint)


@dataclass
class Resolver:
    """Holds the state of one resolution; use `resolve()` rather than this directly."""

    decls: Declarations
    env: Environment
    catalogue_override: str | None = None
    col: Collector = field(default_factory=Collector)
    bindings: dict[str, _Binding] = field(default_factory=dict)
    cat: CatalogueView | None = None
    cat_path: str | None = None
    n_layers: int | None = None
    model_source: HubSource | None = None
    used: set[str] = field(default_factory=set)
    out: list[Intervention] = field(default_factory=list)

    # ---- declarations -------------------------------------------------------------------
    def model(self) -> str:
        m = self.decls.model
        if m is None:
            self.col.error("E200", "the spec declares no model", Span(self.decls.spec_file, 1, 1),
                           'add a line such as  model "./models/demo"  (a folder next to the spec) or  '
                           'model "org/name"  (a Hugging Face Hub id)')
            return ""
        try:
            loc = locate_model(m, weights=getattr(self.env, "fetch_weights", False),
                               progress=getattr(self.env, "progress", True))
        except DiagnosticError as e:
            _reraise_at(self.col, e, m.path.span)
            return ""
        self.model_source = loc.hub
        if os.path.isdir(loc.path):
            try:
                self.n_layers = self.env.model_layers(Path(loc.path))
            except DiagnosticError as e:
                _reraise_at(self.col, e, m.path.span)
            return loc.path
        self.col.error("E207", f"model folder not found: '{loc.path}'", m.path.span,
                       f"paths in a spec are relative to the spec file's directory "
                       f"('{os.path.dirname(m.path.span.file) or '.'}'); a Hub model is named "
                       f'"org/name" (or  model hub "name")')
        return loc.path

    def catalogue(self) -> None:
        c = self.decls.catalogue
        if self.catalogue_override is not None:
            path = self.catalogue_override
            if not os.path.exists(path):
                self.col.error("E207", f"catalogue not found: '{path}' (from --catalogue)")
                return
        elif c is None:
            return
        else:
            path = spec_relative(c.path.span, c.path.value)
            if not os.path.exists(path):
                missing_file(self.col, c.path, "catalogue", path)
                return
        try:
            self.cat = self.env.open_catalogue(Path(path))
            self.cat_path = path
            span = c.path.span if c else None
            for w in getattr(self.cat, "warnings", ()):  # e.g. W100: no FTS5, slow search
                self.col.diagnostics.append(w if w.span else Diagnostic(w.code, w.message, span, w.hint))
        except DiagnosticError as e:
            _reraise_at(self.col, e, c.path.span if c else None)

    def sae(self, d: ast.SaeDecl) -> None:
        try:
            loc = locate_sae(d, progress=getattr(self.env, "progress", True))
        except DiagnosticError as e:
            _reraise_at(self.col, e, d.path.span)
            return
        path = loc.path
        if not os.path.exists(path):
            missing_file(self.col, d.path, "SAE", path)
            return
        try:
            info = self.env.sae_info(Path(path))
        except DiagnosticError as e:
            _reraise_at(self.col, e, d.path.span)
            return
        layer = info.hook.split(".")[1] if info.hook.startswith("blocks.") else ""
        if layer.isdigit() and self.n_layers is not None and int(layer) >= self.n_layers:
            self.col.error("E216", f"SAE '{d.alias.value}' reads {info.hook}, but the model has "
                           f"{self.n_layers} layers", d.path.span,
                           "this SAE was trained on a different (deeper) model")
        b = _Binding(d, SaeBinding(d.alias.value, path, info.hook, info.d_in, info.d_sae,
                                   info.sha256, info.format, loc.hub, d.path.span))
        if self.cat is not None:
            self._match_catalogue(b)
        self.bindings[d.alias.value] = b

    def _match_catalogue(self, b: _Binding) -> None:
        entries = list(self.cat.saes())
        s = b.sae
        by_hash = [e for e in entries if getattr(e, "sha256", None) == s.sha256]
        if len(by_hash) == 1:
            b.cat_id = by_hash[0].id
            return
        same_shape = [e for e in entries if e.hook == s.hook and e.d_sae == s.d_sae]
        hashed = [e for e in same_shape if getattr(e, "sha256", None)]
        unhashed = [e for e in same_shape if not getattr(e, "sha256", None)]
        if hashed and not unhashed:
            e = hashed[0]
            self.col.error("E212", f"the catalogue describes a different SAE than '{s.alias}' "
                           f"(catalogue entry '{e.id}' has sha256 {e.sha256[:12]}, "
                           f"the file has {s.sha256[:12]})", b.decl.path.span,
                           "rebuild the catalogue for this SAE, or point the spec at the SAE "
                           "the catalogue was made from")
            b.cat_id = None
            b.cat_problem = ("E212", "", None)
            return
        if len(unhashed) == 1:
            b.cat_id = unhashed[0].id
            return
        listing = ", ".join(f"'{e.id}' ({e.hook}, d_sae {e.d_sae})" for e in entries) or "none"
        if len(unhashed) > 1:
            b.cat_problem = ("E213", f"the catalogue has {len(unhashed)} entries matching SAE "
                             f"'{s.alias}' ({s.hook}, d_sae {s.d_sae}) and none records a sha256",
                             "record the SAE's sha256 in the catalogue so steerc can tell them apart")
        else:
            b.cat_problem = ("E213", f"the catalogue has no entry for SAE '{s.alias}' "
                             f"({s.hook}, d_sae {s.d_sae})", f"catalogue SAEs: {listing}")

    # ---- feature references -------------------------------------------------------------
    def binding(self, name: ast.Name) -> _Binding | None:
        b = self.bindings.get(name.value)
        if b is None:
            known = list(self.bindings) or [d.alias.value for d in self.decls.saes]
            hint = did_you_mean(name.value, known) or (
                f"declared SAEs: {', '.join(known)}" if known else 'declare it: sae NAME = "path"')
            if name.value not in [d.alias.value for d in self.decls.saes]:
                self.col.error("E201", f"unknown SAE alias '{name.value}'", name.span, hint)
            return None
        self.used.add(name.value)
        return b

    def no_catalogue(self, span: Span, why: str) -> None:
        """E211, unless the catalogue was declared but failed to load (reported already)."""
        if self.decls.catalogue is None and self.catalogue_override is None:
            self.col.error("E211", f"{why} needs a catalogue, and the spec declares none", span,
                           'add  catalogue "path/to/catalogue.json"  or refer to the feature by index')

    def cat_for(self, b: _Binding, span: Span, why: str) -> str | None:
        """The catalogue id of binding b, or None after reporting why it is unavailable."""
        if self.cat is None:
            self.no_catalogue(span, why)
            return None
        if b.cat_id is None:
            if b.cat_problem and b.cat_problem[0] == "E213":
                code, msg, hint = b.cat_problem
                self.col.error(code, msg, span, hint)
            return None
        return b.cat_id

    def feature(self, ref: ast.FeatureRef) -> _Feat | None:
        """One feature from an index, label or search reference (None after an error)."""
        b = self.binding(ref.sae)
        if b is None:
            return None
        alias = ref.sae.value
        if isinstance(ref, ast.IndexRef):
            if not 0 <= ref.index < b.sae.d_sae:
                self.col.error("E202", f"feature index {ref.index} is out of range for SAE "
                               f"'{alias}' (d_sae {b.sae.d_sae})", ref.span,
                               f"valid indices are 0..{b.sae.d_sae - 1}")
                return None
            info = self.cat.get(b.cat_id, ref.index) if self.cat is not None and b.cat_id else None
            return _Feat(alias, ref.index, info)
        if isinstance(ref, ast.LabelRef):
            cid = self.cat_for(b, ref.span, "a feature label")
            if cid is None:
                return None
            hits = self.cat.by_label(cid, ref.label.value)
            exact = [h for h in hits if _norm(h.label) == _norm(ref.label.value)]
            if len(exact) > 1 or (not exact and len(hits) > 1):
                shown = ", ".join(f'{alias}[{h.index}] "{h.label}"' for h in hits[:CANDIDATES_SHOWN])
                self.col.error("E205", f"'{ref.label.value}' names {len(hits)} features in SAE "
                               f"'{alias}'", ref.label.span,
                               f"candidates: {shown}; refer to one by index or by its own label")
                return None
            info = (exact or hits or [None])[0]
            if info is None:
                hint = did_you_mean(ref.label.value, self.cat.suggest(ref.label.value, cid))
                self.col.error("E203", f"no feature labelled '{ref.label.value}' in SAE '{alias}'",
                               ref.label.span, hint or
                               f'search for it: {alias}[search "{ref.label.value}"]')
                return None
            return _Feat(alias, info.index, info)
        cid = self.cat_for(b, ref.span, "a feature search")
        if cid is None:
            return None
        hits = self.cat.search(ref.query.value, [cid], CANDIDATES_SHOWN + 1)
        if not hits:
            self.col.error("E204", f"search \"{ref.query.value}\" matched no feature in SAE "
                           f"'{alias}'", ref.query.span, "try fewer or other words, or "
                           "`steerc catalogue search` to browse")
            return None
        if len(hits) > 1:
            shown = ", ".join(f'{alias}[{h.index}] "{h.label}"' for h in hits[:CANDIDATES_SHOWN])
            more = " (and more)" if len(hits) > CANDIDATES_SHOWN else ""
            self.col.error("E205", f"search \"{ref.query.value}\" matched {len(hits)}{'+' * bool(more)}"
                           f" features, it must match exactly one", ref.query.span,
                           f"candidates: {shown}{more}; refer to one by index or label")
            return None
        return _Feat(alias, hits[0].index, hits[0])

    def feature_set(self, t: ast.TagSet | ast.SearchSet) -> list[_Feat]:
        """The features of a tag or search set; E206 when it is empty."""
        if t.sae is not None:
            b = self.binding(t.sae)
            if b is None:
                return []
            cid = self.cat_for(b, t.span, "a feature set")
            if cid is None:
                return []
            cids = [cid]
        else:
            if self.cat is None:
                self.no_catalogue(t.span, "a feature set")
                return []
            cids = [b.cat_id for b in self.bindings.values() if b.cat_id]
            self.used.update(a for a, b in self.bindings.items() if b.cat_id)
        feats = self._expand(t, cids)
        if not feats and cids:
            what = (f'tagged "{t.tag.value}"' if isinstance(t, ast.TagSet)
                    else f'matching "{t.query.value}"')
            where = f" in SAE '{t.sae.value}'" if t.sae else ""
            hint = None
            if isinstance(t, ast.TagSet):
                hint = "tags are matched exactly (e.g. entity:person); list them with `steerc catalogue tags`"
            self.col.error("E206", f"no feature {what}{where}: the set is empty", t.span, hint)
        return feats

    def _expand(self, t: ast.TagSet | ast.SearchSet, cids: list[str]) -> list[_Feat]:
        if isinstance(t, ast.TagSet):
            hits = self.cat.tagged(t.tag.value, cids, t.limit)
        else:
            hits = self.cat.search(t.query.value, cids, t.limit or DEFAULT_SEARCH_LIMIT)
        alias_of = {}
        for a, b in self.bindings.items():
            if b.cat_id:
                alias_of.setdefault(b.cat_id, a)
        seen, feats = set(), []
        for h in hits:
            alias = alias_of.get(h.sae)
            if alias is None or (alias, h.index) in seen:
                continue
            seen.add((alias, h.index))
            feats.append(_Feat(alias, h.index, h))
        return feats

    def targets(self, target: ast.Target) -> list[_Feat]:
        if isinstance(target, (ast.TagSet, ast.SearchSet)):
            return self.feature_set(target)
        f = self.feature(target)
        return [f] if f else []


def resolve(decls: Declarations, env: Environment, *, catalogue_override: str | None = None,
            collector: Collector | None = None) -> tuple[Program, list[Diagnostic]]:
    """Resolve merged declarations into a Program; returns it with the warnings.

    Raises DiagnosticError carrying every diagnostic (warnings too) if any is an error.
    """
    from steerc.compiler.resolve.rules import lower_body  # the rule half of resolve

    r = Resolver(decls, env, catalogue_override, collector or Collector())
    model = r.model()
    r.catalogue()
    for d in decls.saes:
        r.sae(d)
    json_c, expects = lower_body(r)
    for alias, b in r.bindings.items():
        if alias not in r.used and not r.col.has_errors:  # after an error it is mostly noise
            r.col.warn("W207", f"SAE '{alias}' is declared but no rule uses it", b.decl.alias.span,
                       "remove the declaration, or it will still be hashed into the lock")
    order = {f: i for i, f in enumerate(decls.files)}
    r.col.diagnostics.sort(key=lambda d: (0, order.get(d.span.file, len(order)), d.span.file,
                                          d.span.line, d.span.col) if d.span else (1, 0, "", 0, 0))
    r.col.check()
    program = Program(
        spec_file=decls.spec_file, model=model,
        saes=tuple(b.sae for b in r.bindings.values()),
        catalogue=r.cat_path, interventions=tuple(r.out), json=json_c,
        expects=tuple(expects), files=decls.files, model_source=r.model_source,
        model_span=decls.model.path.span if decls.model is not None else None)
    return program, list(r.col.diagnostics)
