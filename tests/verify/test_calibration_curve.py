"""The pure parts of calibration: `--grid` parsing (E560), the choice among the points, the
closest failing point, and the shortfall that ranks them."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, strategies as st

from steerc.calibration import Curve, Outcome, Point, curve_json, parse_grid, render_curve
from steerc.calibration.curve import choose
from steerc.calibration.search import shortfall
from steerc.compiler.ir import ExpectCheck
from steerc.diagnostics import DiagnosticError

finite = st.floats(allow_nan=False, allow_infinity=False, width=64)


@given(st.lists(finite, min_size=1, max_size=20, unique=True))
def test_any_distinct_finite_strengths_parse_back_sorted(values):
    values = [v + 0.0 for v in values]  # -0.0 and 0.0 are one strength
    if len(set(values)) != len(values):
        return
    assert parse_grid(",".join(repr(v) for v in values)) == tuple(sorted(values))


@pytest.mark.parametrize("text", ["", ",", "1,,2", "a", "1e999", "inf", "nan", "0x1", "1;2", "2,2.0",
                                  ",".join(str(i) for i in range(65))])
def test_bad_grids_are_E560(text):
    with pytest.raises(DiagnosticError) as ei:
        parse_grid(text)
    assert ei.value.diagnostics[0].code == "E560" and "--grid" in ei.value.diagnostics[0].hint


def _point(t, kl, *passed, short=None):
    outs = tuple(Outcome(f"x{i}", None, p, None, "", "", 0.0 if p else (short or 1.0)) for i, p in enumerate(passed))
    return Point(t, (), kl, outs)


@given(st.lists(st.tuples(finite.filter(lambda v: abs(v) < 1e6), st.floats(0, 10), st.booleans()),
                min_size=1, max_size=12))
def test_the_choice_is_the_passing_point_with_the_lowest_kl(rows):
    points = [_point(t, kl, ok) for t, kl, ok in rows]
    got = choose(points)
    passing = [p for p in points if p.passed]
    if not passing:
        assert got is None
        return
    assert got.passed and got.kl == min(p.kl for p in passing)
    assert got is next(p for p in passing if p.kl == got.kl)  # the first among equals


def test_the_closest_point_passes_most_then_misses_least():
    pts = (_point(0, 0.1, True, False, short=0.9), _point(1, 0.5, True, False, short=0.2),
           _point(2, 0.0, False, False))
    c = Curve("s.steer", "s.steer.lock", "n.txt", pts, None)
    assert c.closest is pts[1]
    d = c.failure
    assert d.code == "E561" and "t = 1 (1 of 2 pass" in d.message and "`x1`" in d.message
    assert "chosen: none" in render_curve(c) and curve_json(c)["failure"]["code"] == "E561"


def test_shortfall_is_relative_to_the_bound():
    kl = ExpectCheck("", "kl_below", None, bound=0.1)
    down = ExpectCheck("", "down", "x", percent=50.0)
    rate = ExpectCheck("p", "not_mentions", "x", percent=80.0)
    assert shortfall(kl, 0.15, False) == pytest.approx(0.5)
    assert shortfall(down, -25.0, False) == pytest.approx(0.5)
    assert shortfall(rate, 60.0, False) == pytest.approx(0.25)
    assert shortfall(rate, 60.0, True) == 0.0 and shortfall(rate, None, False) == 1.0
    assert not math.isnan(shortfall(ExpectCheck("", "up", "x", percent=10.0), 20.0, False))
