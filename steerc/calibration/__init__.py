"""Strength calibration: `steerc calibrate SPEC` finds the t of a spec's `auto` rules.

    grid.py    the strengths tried (default, `--grid`, E560)
    search.py  measure the spec's expectations at each t, in process (steerc.runtime)
    curve.py   the points, the choice (lowest KL among the passing ones), E561, text and JSON
    write.py   the chosen t into the spec's lock (steerc/compiler/lock_calibration.py)

docs/calibrate.md is the reference; steerc/compiler/resolve/auto.py says what t multiplies.
"""

from steerc.calibration.curve import Curve, Outcome, Point, RuleValue, curve_json, render_curve
from steerc.calibration.grid import DEFAULT_GRID, parse_grid

__all__ = ["Curve", "Outcome", "Point", "RuleValue", "curve_json", "render_curve", "DEFAULT_GRID",
           "parse_grid"]
