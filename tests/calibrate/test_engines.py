"""The shipped demo model and SAE calibrate on a small slice of text; the local and Ray
engines give byte-identical catalogues on it (skipped without Ray: `pip install steerc[ray]`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from steerc.catalogue import validate_catalogue
from steerc.cli import main

DEMO = Path(__file__).resolve().parents[2] / "demo"


@pytest.fixture(scope="module")
def demo_slice(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo_slice")
    for fmt in ("code", "prose", "json"):
        (root / f"{fmt}.txt").write_text((DEMO / "heldout" / f"{fmt}.txt").read_text()[:700])
    return root


def _demo_args(root: Path, out: Path, *extra: str) -> list[str]:
    return ["catalogue", "calibrate", "--model", str(DEMO / "model"),
            "--sae", f"res2={next((DEMO / 'saes').iterdir())}", *[x for f in ("code", "prose", "json") for x in
                                                                 ("--corpus", f"{f}={root / (f + '.txt')}")],
            "--context", "64", "--threads", "1", "--no-progress", "-o", str(out), *extra]


def test_demo_slice_calibrates(demo_slice, tmp_path, capsys):
    out = tmp_path / "demo.json"
    assert main(_demo_args(demo_slice, out)) == 0
    doc = json.loads(out.read_text())
    assert validate_catalogue(doc, "demo.json") == []
    shipped = json.loads((DEMO / "catalogue.json").read_text())
    assert doc["saes"][0]["sha256"] == shipped["saes"][0]["sha256"]  # the same SAE content hash
    assert {t for f in doc["features"] for t in f["tags"]} >= {"format:code", "format:prose", "format:json"}


@pytest.fixture(scope="module")
def ray_local():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def test_ray_equals_local_on_demo(ray_local, demo_slice, tmp_path):
    local, distributed = tmp_path / "local.json", tmp_path / "ray.json"
    assert main(_demo_args(demo_slice, local)) == 0
    assert main(_demo_args(demo_slice, distributed, "--engine", "ray", "--workers", "2")) == 0
    assert distributed.read_bytes() == local.read_bytes()


def test_killed_ray_run_resumes_to_the_same_catalogue(ray_local, demo_slice, tmp_path, monkeypatch):
    """A Ray run checkpoints after each wave (`--checkpoint-every` x `--workers` batches);
    killed after the first, the rerun continues from it and ends with the local engine's
    bytes. Two waves here: 4-window batches, 2 batches a wave."""
    from steerc.catalogue.calibrate import run

    small = ("--batch-size", "4", "--checkpoint-every", "1")
    local, out = tmp_path / "local.json", tmp_path / "ray.json"
    assert main(_demo_args(demo_slice, local, *small)) == 0
    real, waves = run.save_checkpoint, []

    def dying(*a, **k):
        real(*a, **k)
        waves.append(a[3])  # windows done
        if len(waves) == 1:
            raise KeyboardInterrupt  # as if killed right after the first wave's checkpoint

    monkeypatch.setattr(run, "save_checkpoint", dying)
    ray_args = _demo_args(demo_slice, out, *small, "--engine", "ray", "--workers", "2")
    assert main(ray_args) != 0
    assert not out.exists() and (tmp_path / "ray.json.partial").exists()
    assert main(ray_args) == 0
    assert out.read_bytes() == local.read_bytes()
    assert len(waves) >= 2 and waves[1] > waves[0]  # the rerun started past the first wave
    assert not (tmp_path / "ray.json.partial").exists()
