"""A populated offline Hub cache: a tiny Llama `org/tiny` and a Gemma Scope-layout SAE."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.hubcache import folder_files, put_repo
from tests.tinymodels import HIDDEN, save_tiny

SCOPE_REPO = "google/gemma-scope-2b-pt-res"
SCOPE_PATH = "layer_1/width_16k/average_l0_82"
REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class World:
    home: Path            # HF_HOME
    cache: Path           # HF_HOME/hub
    model_dir: Path       # the tiny model's files (the source of the cache copy)
    model_commit: str
    sae_commit: str

    def env(self) -> dict:
        return {**os.environ, "HF_HOME": str(self.home), "HF_HUB_OFFLINE": "1",
                "HF_HUB_DISABLE_TELEMETRY": "1", "PYTHONPATH": str(REPO)}


def scope_params(d_in: int, d_sae: int = 48, seed: int = 0) -> dict[str, np.ndarray]:
    g = torch.Generator().manual_seed(seed)
    t = {"W_enc": torch.randn(d_in, d_sae, generator=g) / d_in**0.5,
         "W_dec": torch.randn(d_sae, d_in, generator=g) / d_in**0.5,
         "b_enc": 0.1 * torch.randn(d_sae, generator=g), "b_dec": 0.1 * torch.randn(d_in, generator=g),
         "threshold": 0.05 + 0.1 * torch.rand(d_sae, generator=g)}
    return {k: v.numpy() for k, v in t.items()}


@pytest.fixture(scope="session")
def world(tmp_path_factory) -> World:
    root = tmp_path_factory.mktemp("hubworld")
    model_dir = root / "src_model"
    save_tiny("llama", model_dir)
    npz = root / "params.npz"
    np.savez(npz, **scope_params(HIDDEN))
    cache = root / "home" / "hub"
    mc = put_repo(cache, "org/tiny", folder_files(model_dir) | {"README.md": b"# tiny\n"})
    sc = put_repo(cache, SCOPE_REPO, {f"{SCOPE_PATH}/params.npz": npz, "README.md": b"# scope\n"})
    return World(root / "home", cache, model_dir, mc, sc)


@pytest.fixture
def offline_cache(world, monkeypatch):
    """In-process: huggingface_hub reads `world`'s cache, offline."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(world.cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return world


def steerc(args: list[str], cwd: Path, env: dict) -> subprocess.CompletedProcess:
    """Run the steerc CLI in a fresh interpreter (its own HF_HOME and offline mode)."""
    return subprocess.run([sys.executable, "-m", "steerc", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)
