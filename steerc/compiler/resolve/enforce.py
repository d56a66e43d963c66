"""`enforce json` -> its latent part (catalogue-tagged suppress and scale interventions) and
the decode-time constraint; a pure function of the `Context` and the statement.

`enforce json` suppresses catalogue features tagged format:prose/code/markdown and scales
features tagged format:json by `strength` (activation x strength where they fire; default
`DEFAULT_JSON_STRENGTH`, 1 = suppress only), then adds the decode-time guard.
"""

from __future__ import annotations

from steerc.compiler import ast
from steerc.compiler.ir import FeatureId, Intervention, JsonConstraint, Op
from steerc.compiler.resolve.context import Context, Lowered
from steerc.compiler.resolve.rules import num
from steerc.compiler.resolve.specfiles import load_schema
from steerc.diagnostics import Collector
from steerc.grammar.printer import format_statement as enforce_origin

DEFAULT_JSON_STRENGTH = 2.0
JSON_SUPPRESS_TAGS = ("format:prose", "format:code", "format:markdown")
JSON_STEER_TAG = "format:json"


def lower_enforce(ctx: Context, e: ast.EnforceJson) -> Lowered:
    """The interventions and the JSON constraint (`Lowered.json`, None after an error)."""
    col = Collector()
    schema = load_schema(e.schema, col) if e.schema is not None else None
    if schema is not None:
        # E470-E472: a schema the decode-time guard cannot enforce exactly fails at check
        # time; xgrammar's own verdict only when cached (importing it loads torch: seconds),
        # compile always asks it. The module, not the package: steerc.guard imports torch.
        from steerc.guard.schema import check_schema_supported

        problems = check_schema_supported(schema[1], e.schema.span, compile_grammar=False)
        col.diagnostics.extend(problems)
        if problems:
            schema = None
    strength = DEFAULT_JSON_STRENGTH if e.strength is None else float(e.strength.value)
    if strength < 1:
        col.warn("W208", f"`enforce json` strength {num(strength)} scales the JSON features "
                 "down" + (" to 0 (suppresses them)" if strength <= 0 else ""),
                 e.strength.span, "1 suppresses the other formats only; above 1 amplifies JSON")
    out = _latent(ctx, e, strength, col)
    json_c = None
    if e.schema is None or schema is not None:  # else reported by load_schema
        json_c = JsonConstraint(schema[0] if schema else None, schema[1] if schema else None, e.span)
    return Lowered(tuple(out), tuple(col.diagnostics), frozenset(iv.feature.sae for iv in out),
                   json=json_c)


def _latent(ctx: Context, e: ast.EnforceJson, strength: float, col: Collector) -> list[Intervention]:
    """Suppress the other formats' tagged features, scale the JSON ones (W204 when the
    catalogue has none to steer)."""
    cids = ctx.catalogue_ids()
    if ctx.cat is None or not cids:
        col.warn("W204", "`enforce json` found no catalogue features to steer; only the "
                 "decode-time guard applies", e.span,
                 "declare a catalogue whose features carry format:json / format:prose tags")
        return []
    origin = enforce_origin(e)
    alias_of = ctx.alias_of()
    # JSON features are scaled, not added to: adding hundreds of decoder rows at once
    # sums to a large direction whose cross-terms lower the JSON features it meant to
    # raise (measured on the demo: -53% at strength 2); scaling moves each only where
    # it already fires, and suppress removes the other formats' features.
    plan = [(t, Op.SET, 0.0) for t in JSON_SUPPRESS_TAGS] + [(JSON_STEER_TAG, Op.SCALE, strength)]
    out, n_json = [], 0
    for tag, op, value in plan:
        for h in ctx.cat.tagged(tag, cids, None):
            alias = alias_of.get(h.sae)
            if alias is None:
                continue
            n_json += tag == JSON_STEER_TAG
            fid = FeatureId(alias, h.index, h.label)
            out.append(Intervention(op, fid, value, (ctx.bindings[alias].sae.hook,),
                                    span=e.span, origin=origin))
    if n_json == 0:
        col.warn("W204", f"no catalogue feature is tagged {JSON_STEER_TAG}; `enforce json` "
                 "only suppresses prose/code features and guards decoding", e.span,
                 "tag the JSON features in the catalogue to steer towards JSON")
    return out
