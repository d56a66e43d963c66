"""Rules and `when` blocks -> interventions: pure functions of the `Context` and one
statement, returning a `Lowered` (interventions, diagnostics, SAEs named).

Rules that are not obvious from the syntax (docs/diagnostics-semantic.md, "Semantics notes"):
- `steer`/`amplify` values are in units of the SAE's decoder row: x <- x + a * d_i.
- `clamp X to 5x max` uses the catalogue's `max_activation` of that feature.
- `at layers A..B` (ablate, steer) targets `blocks.L.hook_resid_post` for L in A..B and is
  only allowed for residual-stream SAEs (the direction must live in that space).
"""

from __future__ import annotations

import math

from steerc.arch.hookpoint import HookPoint
from steerc.compiler import ast
from steerc.compiler.ir import Condition, Intervention, Op
from steerc.compiler.resolve.auto import Strength, is_auto, missing, unit_of
from steerc.compiler.resolve.context import Context, Lowered
from steerc.compiler.resolve.names import Feat, feature, targets, uses
from steerc.diagnostics import Collector
from steerc.grammar.printer import format_rule as rule_origin
from steerc.grammar.printer import format_target
from steerc.grammar.printer import format_when_head as when_origin

RULES = (ast.Suppress, ast.Ablate, ast.Steer, ast.Clamp, ast.Scale)
CLAMP_WARN_FACTOR = 100.0    # Templeton et al. 2024 saw incoherent text far above max
STEER_WARN_FACTOR = 100.0    # |a| above this many max activations of the feature
SCALE_WARN_RANGE = (0.0, 100.0)


def num(x: float) -> str:
    """A number for a warning message (6 significant digits, as people read them)."""
    return f"{x:g}"


def lower_rule(ctx: Context, rule: ast.Rule, cond: Condition | None = None,
               origin: str | None = None) -> Lowered:
    """One intervention per feature of the rule's target (cond: the enclosing `when`'s;
    origin: the source text explain shows, the rule itself by default)."""
    col = Collector()
    origin = rule_origin(rule) if origin is None else origin
    if is_auto(rule) and (ctx.strength is None or ctx.strength.t is None):
        missing(rule, ctx.strength or Strength(None, "the lock"), col)
        targets(ctx, rule.target, col)  # still report the target's own errors
        return Lowered((), tuple(col.diagnostics), uses(ctx, rule.target))
    out = []
    said: set = set()  # each code once per rule, however many features it names
    missing_max = []
    feats = targets(ctx, rule.target, col)
    layered = isinstance(rule.target, ast.DirectionRef) and len(feats) > 1  # one vector per layer
    for f in feats:
        if f.direction and isinstance(rule, ast.Clamp) and rule.unit == "max":
            if "E275" not in said:
                said.add("E275")
                col.error("E275", "`x max` needs a catalogue's max activation, and a direction has "
                          "none", rule.value.span, "clamp a direction to an absolute coefficient "
                          "(`clamp D to 2`: 2 times its vector)")
            continue
        if layered and rule.scope.layers is not None:
            if "E274" not in said:
                said.add("E274")
                col.error("E274", f"`at layers` on direction '{format_target(rule.target)}', which "
                          "has its own vector per layer", rule.scope.span or rule.span,
                          "declare the direction at one layer to apply its vector at others, or "
                          "drop `at layers`: the rule acts at each of its layers")
            continue
        pv = _op_value(ctx, rule, f)
        if pv is None:
            missing_max.append(f)
            continue
        op, value = pv
        if not math.isfinite(value):  # `5x max` of a max_activation near float's limit
            if "E431" not in said:
                said.add("E431")
                col.error("E431", f"{f.id}: the value resolves to {value} (not finite): "
                          f"{num(float(rule.value.value))} x the catalogue's max_activation "
                          f"{num(float(f.info.max_activation))}", rule.value.span,
                          "write an absolute value, or fix the catalogue's statistic")
            continue
        where = _points(ctx, rule, ctx.hook_of(f.alias), cond, said, col)
        if where is None:
            continue
        _warn_units(rule, f, value, said, col)
        out.append(Intervention(op, f.id, value, where[0], everywhere=where[1],
                                positions=rule.scope.positions, condition=cond,
                                span=rule.span, origin=origin))
    if missing_max:
        shown = ", ".join(str(f.id) for f in missing_max[:3])
        col.error("E214", f"`x max` needs the catalogue's max_activation, which is missing for "
                  f"{shown}" + (f" and {len(missing_max) - 3} more" if len(missing_max) > 3 else ""),
                  rule.value.span, "write an absolute value (`clamp X to 4.5`), or rebuild the "
                  "catalogue with activation statistics")
    return Lowered(tuple(out), tuple(col.diagnostics), uses(ctx, rule.target))


def lower_when(ctx: Context, w: ast.When) -> Lowered:
    """Resolve the condition, then lower the body's rules with it."""
    col = Collector()
    f = feature(ctx, w.feature, col)
    done = Lowered(used=uses(ctx, w.feature))
    cond = None
    if f is not None:
        cond = Condition(f.id, ctx.hook_of(f.alias), float(w.threshold.value))
    head = when_origin(w)
    for st in w.body:
        if isinstance(st, ast.When):
            col.error("E221", "`when` blocks cannot be nested", st.span,
                      "combine the conditions by moving the inner rules into their own block")
            continue
        if cond is None:
            targets(ctx, st.target, col)  # still report the body's own errors
            done += Lowered(used=uses(ctx, st.target))
            continue
        done += _flush(col) + lower_rule(ctx, st, cond, f"{head} {{ {rule_origin(st)} }}")
    return done + _flush(col)


def _flush(col: Collector) -> Lowered:
    """The diagnostics `col` holds so far, moved into a Lowered (keeps source order when
    they interleave with a nested lowering's)."""
    out = Lowered(diagnostics=tuple(col.diagnostics))
    col.diagnostics.clear()
    return out


def _op_value(ctx: Context, rule: ast.Rule, f: Feat) -> tuple[Op, float] | None:
    """(op, value) of a rule on feature f; None when `x max` lacks its statistic."""
    if isinstance(rule, ast.Suppress):
        return Op.SET, 0.0
    if isinstance(rule, ast.Ablate):
        return Op.PROJECT_OUT, 0.0
    mx = getattr(f.info, "max_activation", None)
    if isinstance(rule, ast.Steer):
        return Op.ADD, _amount(ctx, rule, rule.amount, mx)
    if isinstance(rule, ast.Scale):
        return Op.SCALE, _amount(ctx, rule, rule.factor, mx)
    if rule.unit == "abs":
        return Op.SET, _amount(ctx, rule, rule.value, mx)
    if mx is None:
        return None
    return Op.SET, float(rule.value.value) * float(mx)


def _amount(ctx: Context, rule: ast.Rule, a: ast.Amount, mx: float | None) -> float:
    """A written number, or the calibrated t times the feature's unit (resolve/auto.py)."""
    if isinstance(a, ast.Auto):
        return ctx.strength.t * unit_of(rule, mx)
    return float(a.value)


def _points(ctx: Context, rule: ast.Rule, hook: str, cond: Condition | None, said: set,
            col: Collector) -> tuple[tuple[str, ...], bool] | None:
    """(points, everywhere) for one feature's SAE hook, or None after an error (once per code)."""
    point = HookPoint.read(hook)
    s = rule.scope
    span = s.span or rule.span

    def once(code: str, msg: str, hint: str | None = None) -> None:
        if code not in said:
            said.add(code)
            col.error(code, msg, span, hint)

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
        if point is None or not point.residual:
            once("E215", f"`at layers` needs a residual-stream SAE; this one reads {hook}",
                 "its direction is applied at blocks.L.hook_resid_post, which must be the space "
                 "the SAE was trained on")
            return None
        lo, hi = s.layers
        if lo > hi:
            once("E215", f"empty layer range {lo}..{hi}", f"write {hi}..{lo}")
            return None
        if ctx.n_layers is not None and hi >= ctx.n_layers:
            once("E216", f"layer {hi} is out of range: the model has {ctx.n_layers} layers",
                 f"layers are 0..{ctx.n_layers - 1}")
            return None
        return tuple(HookPoint(L, "hook_resid_post").name for L in range(lo, hi + 1)), False
    if s.everywhere:
        if not isinstance(rule, ast.Ablate):
            once("E215", "`everywhere` is only allowed on `ablate`",
                 "everywhere removes a direction from every residual write; use `at layers A..B` "
                 "to steer at several layers")
            return None
        if point is None or not point.residual_space:
            once("E215", f"`ablate ... everywhere` needs an SAE in the residual space; this one "
                 f"reads {hook}", "its decoder directions are not residual-stream directions")
            return None
        return (), True
    return (hook,), False


def _warn_units(rule: ast.Rule, f: Feat, value: float, said: set, col: Collector) -> None:
    mx = getattr(f.info, "max_activation", None)
    if isinstance(rule, ast.Clamp) and mx and value > CLAMP_WARN_FACTOR * mx and "W200" not in said:
        said.add("W200")
        col.warn("W200", f"clamping {f.id} to {num(value)}, {num(value / mx)}x its max activation "
                 f"({num(mx)})", rule.value.span,
                 f"clamps above {num(CLAMP_WARN_FACTOR)}x max tend to produce incoherent text "
                 "(Templeton et al. 2024); 5x-10x is typical")
    if isinstance(rule, ast.Steer) and mx and abs(value) > STEER_WARN_FACTOR * mx and "W201" not in said:
        said.add("W201")
        col.warn("W201", f"steering {f.id} by {num(value)} decoder rows, {num(abs(value) / mx)}x the "
                 f"largest activation seen ({num(mx)})", rule.amount.span,
                 "the amount is in units of the feature's decoder row: the feature itself never "
                 "writes more than max_activation of it")
    if isinstance(rule, ast.Scale) and not SCALE_WARN_RANGE[0] <= value <= SCALE_WARN_RANGE[1] \
            and "W202" not in said:
        said.add("W202")
        col.warn("W202", f"scale factor {num(value)} is outside 0..{num(SCALE_WARN_RANGE[1])}",
                 rule.factor.span, "a negative factor flips the feature's contribution; use "
                 "`suppress` to remove it" if value < 0 else
                 "a large factor multiplies every activation, however small; `clamp X to 5x max` "
                 "pins the feature at a known level")
