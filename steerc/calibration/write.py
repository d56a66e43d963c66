"""The chosen strength into the spec's lock: the lock `check --write-lock` would write for
the spec at that t, plus its `calibration` entry (steerc/compiler/lock_calibration.py)."""

from __future__ import annotations

import os
from pathlib import Path

from steerc.calibration.curve import Curve
from steerc.calibration.search import at_strength
from steerc.compiler.inputs import program_inputs
from steerc.compiler.ir import Program
from steerc.compiler.lock import build_lock, write_lock
from steerc.compiler.lock_calibration import entry, inputs_of


def write_calibrated(program: Program, curve: Curve, grid: tuple[float, ...]) -> Path:
    """Write `curve.chosen` into `curve.lock` (atomically; never over an input of the spec).
    `program` is the spec resolved at t = 1."""
    chosen = at_strength(program, curve.chosen.t)
    lock_dir = Path(os.path.abspath(curve.lock)).parent
    doc = build_lock(chosen, lock_dir)
    cal = entry(curve.chosen.t, list(grid), curve.chosen.kl, inputs_of(doc, chosen, lock_dir))
    return write_lock(build_lock(chosen, lock_dir, cal), curve.lock, program_inputs(chosen))
