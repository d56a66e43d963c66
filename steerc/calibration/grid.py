"""The strengths `steerc calibrate` tries: the default grid and `--grid` parsing (E560).

t multiplies each `auto` rule's unit (steerc/compiler/resolve/auto.py): for steer/amplify
and clamp, the feature's catalogue max_activation; for scale, 1. The default spans "off"
(0: no steering for steer, a full suppression for scale) to eight times a feature's largest
activation, doubling, so a search costs seven measurements.
"""

from __future__ import annotations

import math
import re

from steerc.diagnostics import Diagnostic, DiagnosticError

DEFAULT_GRID = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
MAX_POINTS = 64  # each point generates every prompt of every rate expectation once
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def parse_grid(text: str) -> tuple[float, ...]:
    """`"0,0.25,0.5,1"` -> the strengths, ascending; E560 for anything else (not numbers,
    not finite, repeated, none, more than MAX_POINTS)."""
    parts = [p.strip() for p in text.split(",")]

    def bad(message: str) -> DiagnosticError:
        return DiagnosticError([Diagnostic("E560", f"--grid {text[:60]!r}: {message}", None,
                                           "a comma-separated list of strengths, e.g. "
                                           "--grid 0,0.25,0.5,1,2")])

    if not any(parts):
        raise bad("no strengths")
    values = []
    for p in parts:
        if not _NUMBER.fullmatch(p):
            raise bad(f"'{p[:20]}' is not a number")
        v = float(p)
        if not math.isfinite(v):
            raise bad(f"'{p[:20]}' is not finite")
        values.append(v)
    if len(set(values)) != len(values):
        raise bad("a strength appears twice")
    if len(values) > MAX_POINTS:
        raise bad(f"{len(values)} strengths; at most {MAX_POINTS} (each one runs every expectation)")
    return tuple(sorted(values))
