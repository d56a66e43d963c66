"""Interventions grouped by the source rule they came from, for summaries.

One spec line can resolve to hundreds of features (`enforce json`, `suppress features tagged
...`). `explain`, `check -v`, the model card and the E410 refusal speak per source rule (its
text, span, feature count and how the features lower); the per-feature list stays in
`explain --features`, `explain --json` and the manifest.

    groups = group_by_rule(plan.lowerings, key=lambda lo: lo.intervention)
    for g in groups: g.origin, g.span, len(g.items)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

from steerc.compiler.ir import Intervention
from steerc.diagnostics import Span

T = TypeVar("T")


@dataclass(frozen=True)
class RuleGroup(Generic[T]):
    """The items (interventions or lowerings) of one source rule, in program order."""

    origin: str  # the rule as written (canonical text)
    span: Span | None
    items: tuple[T, ...]

    def __len__(self) -> int:
        return len(self.items)


def rule_text(iv: Intervention) -> str:
    """The rule as written, or `op feature` for an intervention built without one."""
    return iv.origin or f"{iv.op.value} {iv.feature}"


def group_by_rule(items: Iterable[T], key: Callable[[T], Intervention] = lambda x: x) -> tuple[RuleGroup[T], ...]:
    """Items grouped by (span, rule text) of their intervention, groups in first-seen order.

    The span is part of the key so two identical lines (say in two `use`d files) stay two rules."""
    order: dict[tuple, list[T]] = {}
    for it in items:
        iv = key(it)
        order.setdefault((iv.span, rule_text(iv)), []).append(it)
    return tuple(RuleGroup(origin, span, tuple(its)) for (span, origin), its in order.items())


def op_summary(ivs: Iterable[Intervention]) -> str:
    """`set_activation = 0 x568, scale_activation by 2 x349`: each (op, value) with its count."""
    counts = Counter(_op_value(iv) for iv in ivs)
    return ", ".join(f"{what} x{n}" if n > 1 else what for what, n in counts.items())


def _op_value(iv: Intervention) -> str:
    if iv.op.value_word is None:
        return iv.op.value
    return f"{iv.op.value} {iv.op.value_word} {iv.value:g}"


def counted(n: int, word: str) -> str:
    """`1 feature`, `6 features`."""
    return f"{n} {word}{'s' * (n != 1)}"
