"""Resolve: AST statements -> `ir.Program`, every name made concrete.

    program, warnings = resolve(decls, env)

Input is the merged output of `load.py` (declarations already de-duplicated across `use`d
files); the environment (`Environment`) supplies SAE configs, the catalogue and the model's
layer count, so tests can run on fakes. Two stages, each a function returning values:
`bind` (declarations -> `Context`: model, catalogue and SAEs bound to files), then
`lower_body` (the context's rules, `when`, `enforce json` and `expect` -> `Lowered`).
Every problem is collected; `DiagnosticError` is raised at the end if any is an error.

Modules: context (the types), bind, names (references -> features, did-you-mean), rules,
enforce, conflicts, body (statement order), specfiles (E207, JSON schemas).
Conflicts (E218): two rules that set or scale the same feature at the same point, under the
same condition, on overlapping positions; steerc applies no silent precedence. Feature sets
(`features matching "q"`) without a limit take `DEFAULT_SEARCH_LIMIT` hits; tag sets without
a limit take every tagged feature.
"""

from __future__ import annotations

import dataclasses

from steerc.compiler.ir import Calibrated, Program
from steerc.compiler.resolve.auto import Strength, auto_rules, check_goals
from steerc.compiler.locate import spec_relative
from steerc.compiler.resolve.bind import bind
from steerc.compiler.resolve.body import lower_body
from steerc.compiler.resolve.context import (Binding, CatalogueView, Context, Declarations, Environment,
                                             Lowered, SaeInfo)
from steerc.compiler.resolve.enforce import DEFAULT_JSON_STRENGTH, JSON_STEER_TAG, JSON_SUPPRESS_TAGS
from steerc.compiler.resolve.names import CANDIDATES_SHOWN, DEFAULT_SEARCH_LIMIT
from steerc.compiler.resolve.rules import CLAMP_WARN_FACTOR, SCALE_WARN_RANGE, STEER_WARN_FACTOR
from steerc.compiler.resolve.specfiles import load_schema, missing_file
from steerc.diagnostics import Collector, Diagnostic

__all__ = ["resolve", "bind", "lower_body", "Binding", "CatalogueView", "Context", "Declarations",
           "Environment", "Lowered", "SaeInfo", "load_schema", "missing_file", "spec_relative",
           "DEFAULT_JSON_STRENGTH", "JSON_STEER_TAG", "JSON_SUPPRESS_TAGS", "CANDIDATES_SHOWN",
           "DEFAULT_SEARCH_LIMIT", "CLAMP_WARN_FACTOR",
           "SCALE_WARN_RANGE", "STEER_WARN_FACTOR"]


def resolve(decls: Declarations, env: Environment, *, catalogue_override: str | None = None,
            collector: Collector | None = None,
            strength: Strength | None = None) -> tuple[Program, list[Diagnostic]]:
    """Resolve merged declarations into a Program; returns it with the warnings (and those
    `collector` held already: `load` passes the ones it found while reading the files).
    `strength`: the calibrated t of `auto` rules (E282 at each one without it).

    Raises DiagnosticError carrying every diagnostic (warnings too) if any is an error.
    """
    col = collector or Collector()
    ctx, bound = bind(decls, env, catalogue_override)
    ctx = dataclasses.replace(ctx, strength=strength)
    body = lower_body(ctx)
    col.diagnostics.extend(bound + body.diagnostics)
    check_goals(decls.body, body.expects, col)
    for alias, b in ctx.bindings.items():
        if alias not in body.used and not col.has_errors:  # after an error it is mostly noise
            col.warn("W207", f"SAE '{alias}' is declared but no rule uses it", b.decl.alias.span,
                     "remove the declaration, or it will still be hashed into the lock")
    order = {f: i for i, f in enumerate(decls.files)}
    col.diagnostics.sort(key=lambda d: (0, order.get(d.span.file, len(order)), d.span.file,
                                        d.span.line, d.span.col) if d.span else (1, 0, "", 0, 0))
    col.check()
    program = Program(
        spec_file=decls.spec_file, model=ctx.model,
        saes=tuple(b.sae for b in ctx.bindings.values()) + ctx.direction_saes(),
        catalogue=ctx.cat_path, interventions=body.interventions, json=body.json,
        expects=body.expects, files=decls.files, model_source=ctx.model_source,
        model_span=decls.model.path.span if decls.model is not None else None,
        calibrated=_calibrated(decls, body.interventions, strength))
    return program, list(col.diagnostics)


def _calibrated(decls: Declarations, interventions, strength: Strength | None) -> Calibrated | None:
    """t and the origins of the interventions the `auto` rules lowered to (by span: a rule
    inside `when` carries the block's text in its origin), if any."""
    spans = {r.span for r in auto_rules(decls.body)}
    origins = tuple(dict.fromkeys(iv.origin for iv in interventions if iv.span in spans))
    if not origins or strength is None or strength.t is None:
        return None
    return Calibrated(float(strength.t), origins)
