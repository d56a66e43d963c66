"""What a calibration measured: one `Point` per strength t, the `Curve`, its text and JSON.

    curve.chosen          the passing point with the lowest KL (None: nothing passed)
    curve.failure         E561 naming the closest point and what failed there
    render_curve(curve)   the table `steerc calibrate` prints
    curve_json(curve)     the document `steerc calibrate --format json` prints
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from steerc.diagnostics import Diagnostic

CURVE_VERSION = 1


@dataclass(frozen=True)
class RuleValue:
    """An `auto` rule at one t: its text and span, its unit, and the values its features
    get (lowest and highest: the units differ per feature)."""

    rule: str
    where: str | None
    unit: str          # "max_activation", "1 vector" (a named direction) or "1" (scale)
    low: float
    high: float

    @property
    def shown(self) -> str:
        return f"{self.low:.4g}" if self.low == self.high else f"{self.low:.4g}..{self.high:.4g}"


@dataclass(frozen=True)
class Outcome:
    """One expectation at one t: passed, the measured value (its unit), the figure's words,
    and how far it is from passing (`shortfall`, 0 when it passes; in units of its bound)."""

    line: str
    where: str | None
    passed: bool
    value: float | None
    unit: str
    detail: str
    shortfall: float = 0.0


@dataclass(frozen=True)
class Point:
    """One strength on the grid and what it measured; `kl` is the side effect calibration
    minimizes (the spec's first `expect kl`)."""

    t: float
    values: tuple[RuleValue, ...]
    kl: float
    outcomes: tuple[Outcome, ...]

    @property
    def passed(self) -> bool:
        return all(o.passed for o in self.outcomes)

    @property
    def n_passed(self) -> int:
        return sum(o.passed for o in self.outcomes)


@dataclass(frozen=True)
class Curve:
    """A whole search: the spec, the lock, the KL text, every point in grid order, and the
    chosen point (None when no t passes every expectation)."""

    spec: str
    lock: Path
    kl_source: str
    points: tuple[Point, ...]
    chosen: Point | None
    lock_written: bool = False
    warnings: tuple[Diagnostic, ...] = ()  # from resolving the spec

    @property
    def ok(self) -> bool:
        return self.chosen is not None

    @property
    def closest(self) -> Point | None:
        """With nothing passing: the point passing the most expectations, then the one its
        failing expectations miss by least, then the lowest KL."""
        if not self.points:
            return None
        return min(self.points, key=lambda p: (-p.n_passed, sum(o.shortfall for o in p.outcomes), p.kl,
                                               self.points.index(p)))

    @property
    def failure(self) -> Diagnostic | None:
        """E561 when no t passed: the closest point, and each expectation that failed there."""
        if self.ok:
            return None
        p = self.closest
        failed = [o for o in p.outcomes if not o.passed]
        first = failed[0]
        return Diagnostic(
            "E561", f"no strength on the grid passes every expectation; the closest, t = {p.t:g} "
            f"({p.n_passed} of {len(p.outcomes)} pass, KL {p.kl:.4g}), fails: "
            + "; ".join(f"`{o.line}` ({o.detail})" for o in failed), None,
            "try other strengths (`--grid`), loosen the expectation or the KL budget, or steer "
            f"other features (the first failing expectation is at {first.where or 'the spec'})")


def choose(points: list[Point]) -> Point | None:
    """The passing point with the lowest KL; the first in grid order among equals."""
    passing = [p for p in points if p.passed]
    return min(passing, key=lambda p: p.kl) if passing else None


def _shown(path) -> str:
    """A path as seen from the working directory (the lock's default path is absolute)."""
    return os.path.relpath(path)


def _measured(o: Outcome) -> str:
    if o.value is None:
        return "n/a"
    if o.unit == "nats/token":
        return f"{o.value:.4f}"
    return f"{o.value:.1f}%" if o.unit == "%" else o.detail


def render_curve(c: Curve) -> str:
    """The curve as a text table: t, each auto rule's value, KL, each expectation's figure."""
    if not c.points:
        return f"calibrate {c.spec}: no points measured"
    first = c.points[0]
    out = [f"calibrate {c.spec}: {len(c.points)} strengths; KL on {c.kl_source}", "",
           "rules (value = t x unit):"]
    out += [f"  R{i + 1}  {v.rule}   [unit {v.unit}]" for i, v in enumerate(first.values)]
    out += ["expectations:"] + [f"  X{i + 1}  {o.line}" for i, o in enumerate(first.outcomes)]
    head = ["", "t"] + [f"R{i + 1}" for i in range(len(first.values))] + ["KL"] + \
        [f"X{i + 1}" for i in range(len(first.outcomes))]
    rows = []
    for p in c.points:
        mark = "*" if p is c.chosen else ""
        rows.append([mark, f"{p.t:g}"] + [v.shown for v in p.values] + [f"{p.kl:.4f}"] +
                    [f"{'pass' if o.passed else 'FAIL'} {_measured(o)}" for o in p.outcomes])
    widths = [max(len(r[i]) for r in [head] + rows) for i in range(len(head))]
    out.append("")
    for r in [head] + rows:
        out.append("  ".join(x.ljust(w) for x, w in zip(r, widths)).rstrip())
    out.append("")
    if c.chosen is not None:
        where = f"; written to {_shown(c.lock)}" if c.lock_written else ""
        out.append(f"chosen: t = {c.chosen.t:g} (*), KL {c.chosen.kl:.4f}, the lowest of "
                   f"{sum(p.passed for p in c.points)} passing strength(s){where}")
    else:
        out.append("chosen: none (no strength passes every expectation); the lock is unchanged")
    return "\n".join(out)


def curve_json(c: Curve) -> dict:
    """The curve as one JSON document (`--format json`; docs/calibrate.md)."""
    fail = c.failure
    return {
        "version": CURVE_VERSION, "ok": c.ok, "spec": c.spec, "lock": _shown(c.lock),
        "lock_written": c.lock_written, "kl_source": c.kl_source,
        "chosen": None if c.chosen is None else {"t": c.chosen.t, "kl": c.chosen.kl},
        "points": [{"t": p.t, "kl": p.kl, "passed": p.passed,
                    "rules": [{"rule": v.rule, "where": v.where, "unit": v.unit, "low": v.low,
                               "high": v.high} for v in p.values],
                    "expects": [{"line": o.line, "where": o.where, "passed": o.passed,
                                 "value": o.value, "unit": o.unit, "detail": o.detail}
                                for o in p.outcomes]} for p in c.points],
        "failure": None if fail is None else {"code": fail.code, "message": fail.message,
                                              "hint": fail.hint},
    }


__all__ = ["Curve", "Outcome", "Point", "RuleValue", "choose", "curve_json", "render_curve"]
