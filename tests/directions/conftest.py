"""Direction vector files written for the tests (d = tests.tinymodels.HIDDEN)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.emit.conftest import bases  # noqa: F401  (the tiny base checkpoints, one per family)


def vectors(n: int, d: int, seed: int = 0) -> list[np.ndarray]:
    """n random directions of size d, norms between 0.5 and 2 (so units matter)."""
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal(d) * rng.uniform(0.1, 0.35)).astype(np.float32) for _ in range(n)]


@pytest.fixture(autouse=True)
def _cache_dir(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("STEERC_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))
