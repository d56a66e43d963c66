"""Conflicts between rules, over the lowered interventions: E218 for two set/scale rules on
one feature, point and condition with overlapping positions (steerc applies no silent
precedence); W203 for a feature both ablated and steered. Reported once per pair of rules."""

from __future__ import annotations

from typing import Sequence

from steerc.compiler.ir import Intervention, Op
from steerc.diagnostics import Collector, Diagnostic


def conflicts(interventions: Sequence[Intervention]) -> tuple[Diagnostic, ...]:
    """The E218 errors and W203 warnings of `interventions`, in their order."""
    col = Collector()
    seen: dict[tuple, list[Intervention]] = {}
    ablated: dict[tuple, Intervention] = {}
    added: dict[tuple, Intervention] = {}
    told: set = set()
    for iv in interventions:
        fkey = (iv.feature.sae, iv.feature.index)
        if iv.op in (Op.SET, Op.SCALE):
            key = fkey + (iv.points, iv.condition)
            for prev in seen.get(key, []):
                pair = ("E218", prev.span, prev.origin, iv.span, iv.origin)
                if _overlap(prev.positions, iv.positions) and pair not in told:
                    told.add(pair)
                    col.error("E218", f"{iv.feature} is {_verb(prev)} by `{prev.origin}` and "
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
            col.warn("W203", f"{ab.feature} is both ablated (`{ab.origin}`) and steered "
                     f"(`{st.origin}`)", second.span,
                     f"the other rule is at {first.span}; the ablation removes the direction "
                     "the steer adds where both apply")
    return tuple(col.diagnostics)


def _overlap(a: str, b: str) -> bool:
    return a == b or "all" in (a, b)


def _verb(iv: Intervention) -> str:
    return "set" if iv.op == Op.SET else "scaled"
