"""Shared fixtures: one tiny Llama base checkpoint (hidden 16) per session."""

from __future__ import annotations

import pytest

from tests.tinymodels import save_tiny


@pytest.fixture(scope="session")
def base_model(tmp_path_factory):
    d = tmp_path_factory.mktemp("hostile-base") / "model"
    save_tiny("llama", d, hidden_size=16, intermediate_size=32, head_dim=8)
    return d


@pytest.fixture(autouse=True)
def _cache_dir(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("STEERC_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))
