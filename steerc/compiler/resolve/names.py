"""Names -> features: SAE aliases, feature references (index, label, search) and feature
sets (tag, search), with did-you-mean hints (E201-E206, E211, E213).

Each function reads the `Context` and reports to the collector it is given; `uses` says
which SAE aliases a reference names, for W207 (declared but unused).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from steerc.compiler import ast
from steerc.compiler.ir import FeatureId
from steerc.compiler.resolve.context import Binding, Context
from steerc.diagnostics import Collector, Span, did_you_mean

DEFAULT_SEARCH_LIMIT = 10
CANDIDATES_SHOWN = 5


@dataclass(frozen=True)
class Feat:
    """One resolved feature: spec alias, index, and its catalogue record (or None)."""

    alias: str
    index: int
    info: Any | None
    direction: bool = False  # the one feature of a named direction's binding

    @property
    def id(self) -> FeatureId:
        return FeatureId(self.alias, self.index, getattr(self.info, "label", None), self.direction)


def _norm(text: str) -> str:
    return " ".join(text.split()).casefold()


def uses(ctx: Context, target: ast.Target) -> frozenset[str]:
    """The bound SAE aliases `target` names: its own SAE, or every SAE with a catalogue
    entry for a set that names none (a set searches all of them); none for a direction."""
    if isinstance(target, ast.DirectionRef):
        return frozenset()
    if target.sae is not None:
        return frozenset({target.sae.value} & set(ctx.bindings))
    if ctx.cat is None:
        return frozenset()
    return frozenset(a for a, b in ctx.bindings.items() if b.cat_id)


def sae_binding(ctx: Context, name: ast.Name, col: Collector) -> Binding | None:
    """The binding of an SAE alias; E201 for an undeclared one (None, silently, for a
    declared SAE that failed to load: that is reported where it is declared)."""
    b = ctx.bindings.get(name.value)
    if b is None:
        declared = [d.alias.value for d in ctx.decls.saes]
        known = list(ctx.bindings) or declared
        hint = did_you_mean(name.value, known) or (
            f"declared SAEs: {', '.join(known)}" if known else 'declare it: sae NAME = "path"')
        if name.value not in declared:
            col.error("E201", f"unknown SAE alias '{name.value}'", name.span, hint)
    return b


def _no_catalogue(ctx: Context, span: Span, why: str, col: Collector) -> None:
    """E211, unless the catalogue was named but failed to load (reported already)."""
    if not ctx.catalogue_named:
        col.error("E211", f"{why} needs a catalogue, and the spec declares none", span,
                  'add  catalogue "path/to/catalogue.json"  or refer to the feature by index')


def _cat_for(ctx: Context, b: Binding, span: Span, why: str, col: Collector) -> str | None:
    """The catalogue id of binding b, or None after reporting why it is unavailable."""
    if ctx.cat is None:
        _no_catalogue(ctx, span, why, col)
        return None
    if b.cat_id is None:
        if b.cat_problem and b.cat_problem[0] == "E213":
            code, msg, hint = b.cat_problem
            col.error(code, msg, span, hint)
        return None
    return b.cat_id


def direction(ctx: Context, ref: ast.DirectionRef, col: Collector) -> list[Feat]:
    """The features of a named direction, one per layer it has (E272 for an unknown name)."""
    name = ref.name.value
    d = ctx.directions.get(name)
    if d is not None:
        return [Feat(s.alias, 0, None, direction=True) for s in d.saes]
    if name in ctx.bindings or name in {x.alias.value for x in ctx.decls.saes}:
        col.error("E272", f"'{name}' is an SAE, not a direction: name one of its features",
                  ref.span, f'{name}[123], {name}["label"], {name}[search "text"] or '
                  f'features tagged "t" in {name}')
    elif name not in {x.name.value for x in ctx.decls.directions}:  # not one that failed to bind
        known = list(ctx.directions)
        col.error("E272", f"unknown direction '{name}'", ref.name.span,
                  did_you_mean(name, known) or (f"declared directions: {', '.join(known)}" if known
                                                else 'declare it:  direction NAME = mean "a.txt" - '
                                                'mean "b.txt" at layer L  (or = file "v.safetensors")'))
    return []


def feature(ctx: Context, ref: ast.FeatureRef | ast.DirectionRef, col: Collector) -> Feat | None:
    """One feature from an index, label or search reference, or a direction of one layer
    (None after an error)."""
    if isinstance(ref, ast.DirectionRef):
        feats = direction(ctx, ref, col)
        if len(feats) > 1:
            col.error("E274", f"direction '{ref.name.value}' has {len(feats)} layers; this needs "
                      "one hook point", ref.span, "declare a one-layer direction for it "
                      "(`at layer L`)")
            return None
        return feats[0] if feats else None
    b = sae_binding(ctx, ref.sae, col)
    if b is None:
        return None
    alias = ref.sae.value
    if isinstance(ref, ast.IndexRef):
        if not 0 <= ref.index < b.sae.d_sae:
            col.error("E202", f"feature index {ref.index} is out of range for SAE "
                      f"'{alias}' (d_sae {b.sae.d_sae})", ref.span,
                      f"valid indices are 0..{b.sae.d_sae - 1}")
            return None
        info = ctx.cat.get(b.cat_id, ref.index) if ctx.cat is not None and b.cat_id else None
        return Feat(alias, ref.index, info)
    if isinstance(ref, ast.LabelRef):
        return _by_label(ctx, b, ref, col)
    return _by_search(ctx, b, ref, col)


def _by_label(ctx: Context, b: Binding, ref: ast.LabelRef, col: Collector) -> Feat | None:
    alias = ref.sae.value
    cid = _cat_for(ctx, b, ref.span, "a feature label", col)
    if cid is None:
        return None
    hits = ctx.cat.by_label(cid, ref.label.value)
    exact = [h for h in hits if _norm(h.label) == _norm(ref.label.value)]
    if len(exact) > 1 or (not exact and len(hits) > 1):
        shown = ", ".join(f'{alias}[{h.index}] "{h.label}"' for h in hits[:CANDIDATES_SHOWN])
        col.error("E205", f"'{ref.label.value}' names {len(hits)} features in SAE "
                  f"'{alias}'", ref.label.span,
                  f"candidates: {shown}; refer to one by index or by its own label")
        return None
    info = (exact or hits or [None])[0]
    if info is None:
        hint = did_you_mean(ref.label.value, ctx.cat.suggest(ref.label.value, cid))
        col.error("E203", f"no feature labelled '{ref.label.value}' in SAE '{alias}'",
                  ref.label.span, hint or f'search for it: {alias}[search "{ref.label.value}"]')
        return None
    return Feat(alias, info.index, info)


def _by_search(ctx: Context, b: Binding, ref: ast.SearchRef, col: Collector) -> Feat | None:
    alias = ref.sae.value
    cid = _cat_for(ctx, b, ref.span, "a feature search", col)
    if cid is None:
        return None
    hits = ctx.cat.search(ref.query.value, [cid], CANDIDATES_SHOWN + 1)
    if not hits:
        col.error("E204", f"search \"{ref.query.value}\" matched no feature in SAE "
                  f"'{alias}'", ref.query.span, "try fewer or other words, or "
                  "`steerc catalogue search` to browse")
        return None
    if len(hits) > 1:
        shown = ", ".join(f'{alias}[{h.index}] "{h.label}"' for h in hits[:CANDIDATES_SHOWN])
        more = " (and more)" if len(hits) > CANDIDATES_SHOWN else ""
        col.error("E205", f"search \"{ref.query.value}\" matched {len(hits)}{'+' * bool(more)}"
                  f" features, it must match exactly one", ref.query.span,
                  f"candidates: {shown}{more}; refer to one by index or label")
        return None
    return Feat(alias, hits[0].index, hits[0])


def feature_set(ctx: Context, t: ast.TagSet | ast.SearchSet, col: Collector) -> list[Feat]:
    """The features of a tag or search set; E206 when it is empty."""
    if t.sae is not None:
        b = sae_binding(ctx, t.sae, col)
        if b is None:
            return []
        cid = _cat_for(ctx, b, t.span, "a feature set", col)
        if cid is None:
            return []
        cids = [cid]
    else:
        if ctx.cat is None:
            _no_catalogue(ctx, t.span, "a feature set", col)
            return []
        cids = ctx.catalogue_ids()
    feats = _expand(ctx, t, cids)
    if not feats and cids:
        what = (f'tagged "{t.tag.value}"' if isinstance(t, ast.TagSet)
                else f'matching "{t.query.value}"')
        where = f" in SAE '{t.sae.value}'" if t.sae else ""
        hint = None
        if isinstance(t, ast.TagSet):
            hint = "tags are matched exactly (e.g. entity:person); list them with `steerc catalogue tags`"
        col.error("E206", f"no feature {what}{where}: the set is empty", t.span, hint)
    return feats


def _expand(ctx: Context, t: ast.TagSet | ast.SearchSet, cids: list[str]) -> list[Feat]:
    if isinstance(t, ast.TagSet):
        hits = ctx.cat.tagged(t.tag.value, cids, t.limit)
    else:
        hits = ctx.cat.search(t.query.value, cids, t.limit or DEFAULT_SEARCH_LIMIT)
    alias_of = ctx.alias_of()
    seen, feats = set(), []
    for h in hits:
        alias = alias_of.get(h.sae)
        if alias is None or (alias, h.index) in seen:
            continue
        seen.add((alias, h.index))
        feats.append(Feat(alias, h.index, h))
    return feats


def targets(ctx: Context, target: ast.Target, col: Collector) -> list[Feat]:
    """The features a rule's target names: one reference, a set, or a direction's layers."""
    if isinstance(target, (ast.TagSet, ast.SearchSet)):
        return feature_set(ctx, target, col)
    if isinstance(target, ast.DirectionRef):
        return direction(ctx, target, col)
    f = feature(ctx, target, col)
    return [f] if f else []
