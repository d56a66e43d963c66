"""The rule half of resolve: rules, `when`, `enforce json` and `expect` -> IR.

Called by `resolve.resolve` once the SAEs and the catalogue are bound. Appends to the
resolver's `out` list and collector; never raises.
"""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING

import jsonschema

from steerc.compiler import ast
from steerc.compiler.expects import EXPECTATIONS, lower_expectation, with_baseline
from steerc.compiler.ir import Condition, ExpectCheck, FeatureId, Intervention, JsonConstraint, Op
from steerc.diagnostics import DiagnosticError
from steerc.files import read
from steerc.grammar.printer import format_rule as rule_origin
from steerc.grammar.printer import format_statement as enforce_origin
from steerc.grammar.printer import format_when_head as when_origin

if TYPE_CHECKING:
    from steerc.compiler.resolve import Resolver, _Feat

_RULES = (ast.Suppress, ast.Ablate, ast.Steer, ast.Clamp, ast.Scale)


def num(x: float) -> str:
    """A number for a warning message (6 significant digits, as people read them)."""
    return f"{x:g}"


def lower_body(r: "Resolver") -> tuple[JsonConstraint | None, list[ExpectCheck]]:
    """Lower every rule, when-block, enforce and expect statement; then check conflicts."""
    json_c, json_stmt, expects = None, None, []
    for st in r.decls.body:
        if isinstance(st, _RULES):
            lower_rule(r, st, None, rule_origin(st))
        elif isinstance(st, ast.When):
            lower_when(r, st)
        elif isinstance(st, ast.EnforceJson):
            if json_stmt is not None:
                r.col.error("E220", "`enforce json` appears twice", st.span,
                            f"the first is at {json_stmt.span}; a spec has one output format")
                continue
            json_stmt, json_c = st, lower_enforce(r, st)
        elif isinstance(st, EXPECTATIONS):
            e = lower_expectation(r, st)
            if e is not None:
                expects.append(e)
    check_conflicts(r)
    return json_c, with_baseline(r, expects)


# ---- rules -----------------------------------------------------------------------------


def _op_value(r: "Resolver", rule: ast.Rule, f: "_Feat") -> tuple[Op, float] | None:
    if isinstance(rule, ast.Suppress):
        return Op.SET, 0.0
    if isinstance(rule, ast.Ablate):
        return Op.PROJECT_OUT, 0.0
    if isinstance(rule, ast.Steer):
        return Op.ADD, float(rule.amount.value)
    if isinstance(rule, ast.Scale):
        return Op.SCALE, float(rule.factor.value)
    if rule.unit == "abs":
        return Op.SET, float(rule.value.value)
    mx = getattr(f.info, "max_activation", None)
    if mx is None:
        return None
    return Op.SET, float(rule.value.value) * float(mx)


def _points(r: "Resolver", rule: ast.Rule, hook: str, cond: Condition | None,
            said: set) -> tuple[tuple[str, ...], bool] | None:
    """(points, everywhere) for one feature's SAE hook, or None after an error (once per code)."""
    from steerc.compiler.resolve import RESIDUAL_HOOKS, RESIDUAL_SPACE_HOOKS

    s = rule.scope
    span = s.span or rule.span

    def once(code: str, msg: str, hint: str | None = None) -> None:
        if code not in said:
            said.add(code)
            r.col.error(code, msg, span, hint)

    if cond is not None and (s.layers is not None or s.everywhere):
        once("E217", "a rule inside `when` applies at its SAE's hook point only; "
             "`at layers` and `everywhere` cannot be gated",
             "the condition is computed at one hook point, so the rule must act there too")
        return None
    if cond is not None and cond.hook != hook:
        once("E217", f"the condition is read at {cond.hook} but this rule acts at {hook}",
             "a condition gates edits at the hook point where it is computed (the activation is "
             "read from the incoming x there): use a condition feature from an SAE on the same hook")
        return None
    if s.layers is not None:
        if not isinstance(rule, (ast.Ablate, ast.Steer)):
            verb = type(rule).__name__.lower()
            once("E215", f"`at layers` is not allowed on `{verb}`",
                 f"`{verb}` reads the feature's activation, which its SAE computes only at {hook}; "
                 "`at layers` works with ablate and steer")
            return None
        if not hook.endswith(RESIDUAL_HOOKS):
            once("E215", f"`at layers` needs a residual-stream SAE; this one reads {hook}",
                 "its direction is applied at blocks.L.hook_resid_post, which must be the space "
                 "the SAE was trained on")
            return None
        lo, hi = s.layers
        if lo > hi:
            once("E215", f"empty layer range {lo}..{hi}", f"write {hi}..{lo}")
            return None
        if r.n_layers is not None and hi >= r.n_layers:
            once("E216", f"layer {hi} is out of range: the model has {r.n_layers} layers",
                 f"layers are 0..{r.n_layers - 1}")
            return None
        return tuple(f"blocks.{L}.hook_resid_post" for L in range(lo, hi + 1)), False
    if s.everywhere:
        if not isinstance(rule, ast.Ablate):
            once("E215", "`everywhere` is only allowed on `ablate`",
                 "everywhere removes a direction from every residual write; use `at layers A..B` "
                 "to steer at several layers")
            return None
        if not hook.endswith(RESIDUAL_SPACE_HOOKS):
            once("E215", f"`ablate ... everywhere` needs an SAE in the residual space; this one "
                 f"reads {hook}", "its decoder directions are not residual-stream directions")
            return None
        return (), True
    return (hook,), False


def lower_rule(r: "Resolver", rule: ast.Rule, cond: Condition | None, origin: str) -> None:
    """Append one intervention per feature of the rule's target."""
    feats = r.targets(rule.target)
    said: set = set()
    missing_max = []
    for f in feats:
        b = r.bindings[f.alias]
        pv = _op_value(r, rule, f)
        if pv is None:
            missing_max.append(f)
            continue
        op, value = pv
        if not math.isfinite(value):  # `5x max` of a max_activation near float's limit
            if "E431" not in said:
                said.add("E431")
                r.col.error("E431", f"{f.id}: the value resolves to {value} (not finite): "
                            f"{num(float(rule.value.value))} x the catalogue's max_activation "
                            f"{num(float(f.info.max_activation))}", rule.value.span,
                            "write an absolute value, or fix the catalogue's statistic")
            continue
        where = _points(r, rule, b.sae.hook, cond, said)
        if where is None:
            continue
        _warn_units(r, rule, f, value, said)
        r.out.append(Intervention(op, f.id, value, where[0], everywhere=where[1],
                                  positions=rule.scope.positions, condition=cond,
                                  span=rule.span, origin=origin))
    if missing_max:
        shown = ", ".join(str(f.id) for f in missing_max[:3])
        r.col.error("E214", f"`x max` needs the catalogue's max_activation, which is missing for "
                    f"{shown}" + (f" and {len(missing_max) - 3} more" if len(missing_max) > 3 else ""),
                    rule.value.span, "write an absolute value (`clamp X to 4.5`), or rebuild the "
                    "catalogue with activation statistics")


def _warn_units(r: "Resolver", rule: ast.Rule, f: "_Feat", value: float, said: set) -> None:
    from steerc.compiler.resolve import CLAMP_WARN_FACTOR, SCALE_WARN_RANGE, STEER_WARN_FACTOR

    mx = getattr(f.info, "max_activation", None)
    if isinstance(rule, ast.Clamp) and mx and value > CLAMP_WARN_FACTOR * mx and "W200" not in said:
        said.add("W200")
        r.col.warn("W200", f"clamping {f.id} to {num(value)}, {num(value / mx)}x its max activation "
                   f"({num(mx)})", rule.value.span,
                   f"clamps above {num(CLAMP_WARN_FACTOR)}x max tend to produce incoherent text "
                   "(Templeton et al. 2024); 5x-10x is typical")
    if isinstance(rule, ast.Steer) and mx and abs(value) > STEER_WARN_FACTOR * mx and "W201" not in said:
        said.add("W201")
        r.col.warn("W201", f"steering {f.id} by {num(value)} decoder rows, {num(abs(value) / mx)}x the "
                   f"largest activation seen ({num(mx)})", rule.amount.span,
                   "the amount is in units of the feature's decoder row: the feature itself never "
                   "writes more than max_activation of it")
    if isinstance(rule, ast.Scale) and not SCALE_WARN_RANGE[0] <= value <= SCALE_WARN_RANGE[1] \
            and "W202" not in said:
        said.add("W202")
        r.col.warn("W202", f"scale factor {num(value)} is outside 0..{num(SCALE_WARN_RANGE[1])}",
                   rule.factor.span, "a negative factor flips the feature's contribution; use "
                   "`suppress` to remove it" if value < 0 else
                   "a large factor multiplies every activation, however small; `clamp X to 5x max` "
                   "pins the feature at a known level")


def lower_when(r: "Resolver", w: ast.When) -> None:
    """Resolve the condition, then lower the body's rules with it."""
    f = r.feature(w.feature)
    cond = None
    if f is not None:
        cond = Condition(f.id, r.bindings[f.alias].sae.hook, float(w.threshold.value))
    head = when_origin(w)
    for st in w.body:
        if isinstance(st, ast.When):
            r.col.error("E221", "`when` blocks cannot be nested", st.span,
                        "combine the conditions by moving the inner rules into their own block")
            continue
        if cond is None:
            r.targets(st.target)  # still report the body's own errors
            continue
        lower_rule(r, st, cond, f"{head} {{ {rule_origin(st)} }}")


# ---- enforce json and expect ------------------------------------------------------------


def load_schema(r: "Resolver", s: ast.Str) -> tuple[str, str] | None:
    """(resolved path, text) of a JSON schema file, checked with jsonschema; None on error."""
    from steerc.compiler.resolve import missing_file, spec_relative

    path = spec_relative(s.span, s.value)
    if "\0" not in path and not os.path.lexists(path):
        missing_file(r.col, s, "schema file", path)  # with its did-you-mean hint
        return None
    try:
        text = read.read_text(path, read.JSON_SCHEMA, s.span)
        schema = read.parse_json(text, path, read.JSON_SCHEMA, want=None, span=s.span)
    except DiagnosticError as e:  # not a regular file, too large, not UTF-8, not JSON
        r.col.diagnostics.extend(e.diagnostics)
        return None
    try:
        cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
        cls.check_schema(schema)
    except jsonschema.SchemaError as e:
        r.col.error("E219", f"invalid JSON schema '{path}' at {e.json_path}: {e.message}", s.span,
                    f"checked against the {cls.__name__.replace('Validator', '')} metaschema")
        return None
    return path, text


def lower_enforce(r: "Resolver", e: ast.EnforceJson) -> JsonConstraint | None:
    """Latent part (tag-based suppress/steer) plus the decode-time constraint."""
    from steerc.compiler.resolve import DEFAULT_JSON_STRENGTH, JSON_STEER_TAG, JSON_SUPPRESS_TAGS

    schema = load_schema(r, e.schema) if e.schema is not None else None
    if schema is not None:
        # E470-E472: a schema the decode-time guard cannot enforce exactly fails at check
        # time; xgrammar's own verdict only when cached (importing it loads torch: seconds),
        # compile always asks it. The module, not the package: steerc.guard imports torch.
        from steerc.guard.schema import check_schema_supported

        problems = check_schema_supported(schema[1], e.schema.span, compile_grammar=False)
        r.col.diagnostics.extend(problems)
        if problems:
            schema = None
    origin = enforce_origin(e)
    strength = DEFAULT_JSON_STRENGTH if e.strength is None else float(e.strength.value)
    if strength < 1:
        r.col.warn("W208", f"`enforce json` strength {num(strength)} scales the JSON features "
                   "down" + (" to 0 (suppresses them)" if strength <= 0 else ""),
                   e.strength.span, "1 suppresses the other formats only; above 1 amplifies JSON")
    cids = [b.cat_id for b in r.bindings.values() if b.cat_id]
    if r.cat is None or not cids:
        r.col.warn("W204", "`enforce json` found no catalogue features to steer; only the "
                   "decode-time guard applies", e.span,
                   "declare a catalogue whose features carry format:json / format:prose tags")
    else:
        alias_of = {}
        for a, b in r.bindings.items():
            if b.cat_id:
                alias_of.setdefault(b.cat_id, a)
        # JSON features are scaled, not added to: adding hundreds of decoder rows at once
        # sums to a large direction whose cross-terms lower the JSON features it meant to
        # raise (measured on the demo: -53% at strength 2); scaling moves each only where
        # it already fires, and suppress removes the other formats' features.
        plan = [(t, Op.SET, 0.0) for t in JSON_SUPPRESS_TAGS] + [(JSON_STEER_TAG, Op.SCALE, strength)]
        n_json = 0
        for tag, op, value in plan:
            for h in r.cat.tagged(tag, cids, None):
                alias = alias_of.get(h.sae)
                if alias is None:
                    continue
                r.used.add(alias)
                n_json += tag == JSON_STEER_TAG
                fid = FeatureId(alias, h.index, h.label)
                r.out.append(Intervention(op, fid, value, (r.bindings[alias].sae.hook,),
                                          span=e.span, origin=origin))
        if n_json == 0:
            r.col.warn("W204", f"no catalogue feature is tagged {JSON_STEER_TAG}; `enforce json` "
                       "only suppresses prose/code features and guards decoding", e.span,
                       "tag the JSON features in the catalogue to steer towards JSON")
    if e.schema is not None and schema is None:
        return None  # reported by load_schema
    return JsonConstraint(schema[0] if schema else None, schema[1] if schema else None, e.span)


# ---- conflicts ---------------------------------------------------------------------------


def _overlap(a: str, b: str) -> bool:
    return a == b or "all" in (a, b)


def check_conflicts(r: "Resolver") -> None:
    """E218 for two set/scale rules on one feature, point and condition with overlapping
    positions; W203 for a feature both ablated and steered. Reported once per pair of rules."""
    seen: dict[tuple, list[Intervention]] = {}
    ablated: dict[tuple, Intervention] = {}
    added: dict[tuple, Intervention] = {}
    told: set = set()
    for iv in r.out:
        fkey = (iv.feature.sae, iv.feature.index)
        if iv.op in (Op.SET, Op.SCALE):
            key = fkey + (iv.points, iv.condition)
            for prev in seen.get(key, []):
                pair = ("E218", prev.span, prev.origin, iv.span, iv.origin)
                if _overlap(prev.positions, iv.positions) and pair not in told:
                    told.add(pair)
                    r.col.error("E218", f"{iv.feature} is {_verb(prev)} by `{prev.origin}` and "
                                f"{_verb(iv)} by `{iv.origin}` at the same point", iv.span,
                                f"the other rule is at {prev.span}; steerc applies no precedence "
                                "between rules: keep one, or give them different conditions or "
                                "positions")
            seen.setdefault(key, []).append(iv)
        elif iv.op == Op.PROJECT_OUT:
            ablated.setdefault(fkey, iv)
        elif iv.op == Op.ADD:
            added.setdefault(fkey, iv)
    for fkey, ab in ablated.items():
        st = added.get(fkey)
        if st is not None:
            first, second = sorted((ab, st), key=lambda i: (i.span.file, i.span.line, i.span.col)
                                   if i.span else ("", 0, 0))
            r.col.warn("W203", f"{ab.feature} is both ablated (`{ab.origin}`) and steered "
                       f"(`{st.origin}`)", second.span,
                       f"the other rule is at {first.span}; the ablation removes the direction "
                       "the steer adds where both apply")


def _verb(iv: Intervention) -> str:
    return "set" if iv.op == Op.SET else "scaled"
