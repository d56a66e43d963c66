"""`steerc verify` finds a checkpoint's inputs from any working directory: local inputs are
recorded relative to the checkpoint, Hub inputs by repo and commit (read from the cache)."""

from __future__ import annotations

import json
import shutil

from steerc.compiler.build_checkpoint import compile_program
from steerc.compiler.load import DiskEnvironment, load
from steerc.verify.checkpoint import open_steered

from .conftest import SCOPE_PATH, SCOPE_REPO


def test_local_inputs_are_found_from_another_cwd(offline_cache, tmp_path, monkeypatch):
    proj = tmp_path / "proj"
    shutil.copytree(offline_cache.model_dir, proj / "models" / "tiny")
    snap = offline_cache.cache / "models--google--gemma-scope-2b-pt-res" / "snapshots" / offline_cache.sae_commit
    shutil.copytree(snap, proj / "gemma-scope-2b-pt-res", symlinks=False)
    (proj / "specs").mkdir()
    (proj / "specs" / "s.steer").write_text(f'model "../models/tiny"\nsae r = "../gemma-scope-2b-pt-res/{SCOPE_PATH}"\n'
                                            'suppress r[2]\n')
    monkeypatch.chdir(proj)
    program = load("specs/s.steer").program
    compile_program(program, "build/out")
    manifest = json.loads((proj / "build/out/steerc-manifest.json").read_text())
    assert manifest["base_model"]["path"] == "../../models/tiny"
    assert manifest["spec"]["file"] == "../../specs/s.steer"
    monkeypatch.chdir(tmp_path)                  # elsewhere: the old manifests needed the compile cwd
    ck = open_steered(proj / "build/out")
    assert ck.base_model.resolve() == (proj / "models/tiny").resolve()
    assert ck.sae_paths["r"].resolve() == (proj / "gemma-scope-2b-pt-res" / SCOPE_PATH).resolve()


def test_hub_inputs_are_read_back_from_the_cache(offline_cache, tmp_path, monkeypatch):
    (tmp_path / "s.steer").write_text(f'model "org/tiny"\nsae r = hub "{SCOPE_REPO}" path "{SCOPE_PATH}"\n'
                                      'suppress r[2]\n')
    program = load(tmp_path / "s.steer", env=DiskEnvironment(fetch_weights=True)).program
    compile_program(program, tmp_path / "out")
    monkeypatch.chdir(tmp_path / "out")
    ck = open_steered(tmp_path / "out")
    assert ck.base_model.name == offline_cache.model_commit
    assert ck.sae_paths["r"].as_posix().endswith(f"{offline_cache.sae_commit}/{SCOPE_PATH}")
    assert ck.program.sae("r").source.repo == SCOPE_REPO
