"""`by auto` / `to auto`: one calibrated strength t for every `auto` rule of a spec.

Each `auto` rule's value is t times a reference unit, per feature:

  steer / amplify X by auto   t x the feature's catalogue max_activation (else 1 decoder row;
                              a named direction: 1 vector)
  clamp X to auto             t x the feature's catalogue max_activation (else 1)
  scale X by auto             t (a factor has no unit)

`steerc calibrate SPEC` searches t and writes it into the spec's lock; check, explain and
compile read it from there (`Strength`), so a rebuild never searches. The spec must say what
to aim at: an expectation other than KL (E280) and a KL budget, `expect kl ... below B` (E281).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

from steerc.compiler import ast
from steerc.compiler.ir import ExpectCheck
from steerc.diagnostics import Collector


@dataclass(frozen=True)
class Strength:
    """Where the `auto` rules take t from: `t` (None: not calibrated), the lock it came from
    (or would, for the hint) and why there is none (`why`, e.g. "it has no calibration")."""

    t: float | None
    lock: str
    spec: str = "SPEC"
    why: str = ""


def amount_of(rule: ast.Rule) -> ast.Amount | None:
    """The rule's strength node (None for suppress and ablate)."""
    if isinstance(rule, ast.Steer):
        return rule.amount
    if isinstance(rule, ast.Clamp):
        return rule.value
    if isinstance(rule, ast.Scale):
        return rule.factor
    return None


def is_auto(rule: ast.Rule) -> bool:
    """Whether the rule's strength is `auto`."""
    return isinstance(amount_of(rule), ast.Auto)


def auto_rules(body) -> Iterator[ast.Rule]:
    """Every `auto` rule of `body`, `when` blocks included, in source order."""
    for st in body:
        if isinstance(st, ast.When):
            yield from auto_rules(st.body)
        elif isinstance(st, (ast.Steer, ast.Clamp, ast.Scale)) and is_auto(st):
            yield st


def unit_of(rule: ast.Rule, max_activation: float | None) -> float:
    """The reference unit t multiplies for one feature (the module docstring's table)."""
    if isinstance(rule, ast.Scale) or max_activation is None or not max_activation > 0:
        return 1.0
    return float(max_activation)



def check_goals(body, expects: tuple[ExpectCheck, ...], col: Collector) -> None:
    """E280 / E281 at the first `auto` when the spec's expectations cannot steer a search."""
    first = next(auto_rules(body), None)
    if first is None:
        return
    span = amount_of(first).span
    if not any(e.kind != "kl_below" for e in expects):
        col.error("E280", "`auto` needs an expectation to aim at, and the spec has none but KL",
                  span, "add what the steering must achieve, e.g. `expect at least 90% of "
                  "\"prompts.txt\" not mentions \"def \"` or `expect X down by at least 50%`; "
                  "calibration picks the weakest side effect among the strengths that pass it")
    if not any(e.kind == "kl_below" for e in expects):
        col.error("E281", "`auto` needs a KL budget: the spec has no `expect kl ... below B`",
                  span, "add e.g. `expect kl on \"neutral.txt\" below 0.1`: calibration measures "
                  "the side effect there and never picks a strength above the bound")


def missing(rule: ast.Rule, strength: Strength, col: Collector) -> None:
    """E282 at the rule's `auto` when no calibrated t is known."""
    why = f": {strength.why}" if strength.why else ""
    col.error("E282", f"`auto` has no calibrated strength in {strength.lock}{why}",
              amount_of(rule).span,
              f"run `steerc calibrate {strength.spec}`: it searches the strength and writes it "
              "into the lock (check and compile never search)")
