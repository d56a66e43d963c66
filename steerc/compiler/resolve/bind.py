"""Declarations -> `Context`: the model, the catalogue and every SAE bound to files.

Each is checked once here (E200, E207, E211-E213, E216), so rule lowering only reads the
result. Errors are returned, not raised: a spec with a missing SAE still has every rule
checked against the SAEs that did load.
"""

from __future__ import annotations

import os
from pathlib import Path

from steerc.arch.hookpoint import HookPoint
from steerc.compiler import ast
from steerc.compiler.ir import HubSource, SaeBinding
from steerc.compiler.locate import locate_model, locate_sae, spec_relative
from steerc.compiler.resolve.context import Binding, CatalogueView, Context, Declarations, Environment
from steerc.compiler.resolve.directions import bind_directions
from steerc.compiler.resolve.specfiles import missing_file
from steerc.diagnostics import Collector, Diagnostic, DiagnosticError, Span


def bind(decls: Declarations, env: Environment, catalogue_override: str | None = None
         ) -> tuple[Context, tuple[Diagnostic, ...]]:
    """The context of `decls` (catalogue_override: `--catalogue`), and the diagnostics of
    binding it, in declaration order: model, catalogue, SAEs, directions."""
    col = Collector()
    model, source, n_layers = _model(decls, env, col)
    cat, cat_path = _catalogue(decls, env, catalogue_override, col)
    bindings: dict[str, Binding] = {}
    for d in decls.saes:
        b = _sae(d, env, n_layers, cat, col)
        if b is not None:
            bindings[d.alias.value] = b
    named = decls.catalogue is not None or catalogue_override is not None
    directions = bind_directions(decls.directions, {d.alias.value for d in decls.saes}, env,
                                 model, n_layers, col)
    ctx = Context(decls, bindings, model, source, n_layers, cat, cat_path, named, directions)
    return ctx, tuple(col.diagnostics)


def _reraise_at(col: Collector, err: DiagnosticError, span: Span | None) -> None:
    for d in err.diagnostics:
        col.diagnostics.append(d if d.span else Diagnostic(d.code, d.message, span, d.hint))


def _model(decls: Declarations, env: Environment, col: Collector
           ) -> tuple[str, HubSource | None, int | None]:
    """(model folder, its Hub source, its layer count) as far as they are known."""
    m = decls.model
    if m is None:
        col.error("E200", "the spec declares no model", Span(decls.spec_file, 1, 1),
                  'add a line such as  model "./models/demo"  (a folder next to the spec) or  '
                  'model "org/name"  (a Hugging Face Hub id)')
        return "", None, None
    try:
        loc = locate_model(m, weights=getattr(env, "fetch_weights", False),
                           progress=getattr(env, "progress", True))
    except DiagnosticError as e:
        _reraise_at(col, e, m.path.span)
        return "", None, None
    if os.path.isdir(loc.path):
        n_layers = None
        try:
            n_layers = env.model_layers(Path(loc.path))
        except DiagnosticError as e:
            _reraise_at(col, e, m.path.span)
        return loc.path, loc.hub, n_layers
    col.error("E207", f"model folder not found: '{loc.path}'", m.path.span,
              f"paths in a spec are relative to the spec file's directory "
              f"('{os.path.dirname(m.path.span.file) or '.'}'); a Hub model is named "
              f'"org/name" (or  model hub "name")')
    return loc.path, loc.hub, None


def _catalogue(decls: Declarations, env: Environment, override: str | None, col: Collector
               ) -> tuple[CatalogueView | None, str | None]:
    """(catalogue, its path), or (None, None) when there is none or it failed to open."""
    c = decls.catalogue
    if override is not None:
        path = override
        if not os.path.exists(path):
            col.error("E207", f"catalogue not found: '{path}' (from --catalogue)")
            return None, None
    elif c is None:
        return None, None
    else:
        path = spec_relative(c.path.span, c.path.value)
        if not os.path.exists(path):
            missing_file(col, c.path, "catalogue", path)
            return None, None
    span = c.path.span if c else None
    try:
        cat = env.open_catalogue(Path(path))
    except DiagnosticError as e:
        _reraise_at(col, e, span)
        return None, None
    for w in getattr(cat, "warnings", ()):  # e.g. W100: no FTS5, slow search
        col.diagnostics.append(w if w.span else Diagnostic(w.code, w.message, span, w.hint))
    return cat, path


def _sae(d: ast.SaeDecl, env: Environment, n_layers: int | None, cat: CatalogueView | None,
         col: Collector) -> Binding | None:
    """The binding of one SAE declaration; None after reporting why it has none."""
    try:
        loc = locate_sae(d, progress=getattr(env, "progress", True))
    except DiagnosticError as e:
        _reraise_at(col, e, d.path.span)
        return None
    path = loc.path
    if not os.path.exists(path):
        missing_file(col, d.path, "SAE", path)
        return None
    try:
        info = env.sae_info(Path(path))
    except DiagnosticError as e:
        _reraise_at(col, e, d.path.span)
        return None
    point = HookPoint.read(info.hook)
    if point and point.layer is not None and n_layers is not None and point.layer >= n_layers:
        col.error("E216", f"SAE '{d.alias.value}' reads {info.hook}, but the model has "
                  f"{n_layers} layers", d.path.span,
                  "this SAE was trained on a different (deeper) model")
    sae = SaeBinding(d.alias.value, path, info.hook, info.d_in, info.d_sae, info.sha256,
                     info.format, loc.hub, d.path.span)
    cat_id, problem = _match_catalogue(d, sae, cat, col) if cat is not None else (None, None)
    return Binding(d, sae, cat_id, problem)


def _match_catalogue(d: ast.SaeDecl, s: SaeBinding, cat: CatalogueView, col: Collector
                     ) -> tuple[str | None, tuple[str, str, str | None] | None]:
    """(catalogue id, problem) of one SAE: by sha256, else by hook and width when the
    catalogue records no hashes. E212 is reported now (the file is wrong); E213 only where a
    rule needs the catalogue (an SAE referred to by index needs no entry)."""
    entries = list(cat.saes())
    by_hash = [e for e in entries if getattr(e, "sha256", None) == s.sha256]
    if len(by_hash) == 1:
        return by_hash[0].id, None
    same_shape = [e for e in entries if e.hook == s.hook and e.d_sae == s.d_sae]
    hashed = [e for e in same_shape if getattr(e, "sha256", None)]
    unhashed = [e for e in same_shape if not getattr(e, "sha256", None)]
    if hashed and not unhashed:
        e = hashed[0]
        col.error("E212", f"the catalogue describes a different SAE than '{s.alias}' "
                  f"(catalogue entry '{e.id}' has sha256 {e.sha256[:12]}, "
                  f"the file has {s.sha256[:12]})", d.path.span,
                  "rebuild the catalogue for this SAE, or point the spec at the SAE "
                  "the catalogue was made from")
        return None, ("E212", "", None)
    if len(unhashed) == 1:
        return unhashed[0].id, None
    listing = ", ".join(f"'{e.id}' ({e.hook}, d_sae {e.d_sae})" for e in entries) or "none"
    if len(unhashed) > 1:
        return None, ("E213", f"the catalogue has {len(unhashed)} entries matching SAE "
                      f"'{s.alias}' ({s.hook}, d_sae {s.d_sae}) and none records a sha256",
                      "record the SAE's sha256 in the catalogue so steerc can tell them apart")
    return None, ("E213", f"the catalogue has no entry for SAE '{s.alias}' "
                  f"({s.hook}, d_sae {s.d_sae})", f"catalogue SAEs: {listing}")
