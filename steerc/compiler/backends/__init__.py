"""Backends: one per target, each with one method `emit(plan, ...) -> Artifacts`.

The one registry is `BACKENDS` below; `plan.target` (weights|hooks) picks the entry.
"""

from steerc.compiler.backends.hooks import HooksBackend
from steerc.compiler.backends.weights import Artifacts, WeightsBackend

BACKENDS = {
    "weights": WeightsBackend(),
    "hooks": HooksBackend(),
}

__all__ = ["BACKENDS", "Artifacts", "WeightsBackend", "HooksBackend"]
