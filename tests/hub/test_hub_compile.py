"""Done-when of issue 14's naming half: a spec naming its model by Hub id and its SAE by Hub
repo + folder compiles offline from a populated cache, the lock pins both commits, `--locked`
sees a moved ref, and compiling from another working directory gives the same bytes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from tests.hubcache import folder_files, put_repo

from .conftest import SCOPE_PATH, SCOPE_REPO, scope_params, steerc
from tests.tinymodels import HIDDEN

SPEC = f'''model "org/tiny"
sae res1 = hub "{SCOPE_REPO}" path "{SCOPE_PATH}"

steer res1[3] by 2
suppress res1[5]
'''


def tree(d: Path) -> dict[str, bytes]:
    return {p.relative_to(d).as_posix(): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def test_hub_spec_compiles_offline_same_bytes_from_any_cwd(world, tmp_path):
    proj = tmp_path / "proj" / "specs"
    proj.mkdir(parents=True)
    (tmp_path / "proj" / "out").mkdir()
    (proj / "bot.steer").write_text(SPEC)
    env = world.env()
    r = steerc(["check", "specs/bot.steer", "--write-lock"], tmp_path / "proj", env)
    assert r.returncode == 0, r.stderr
    lock = json.loads((proj / "bot.steer.lock").read_text())
    assert lock["model"]["hub"] == {"repo": "org/tiny", "revision": None, "commit": world.model_commit}
    assert lock["saes"]["res1"]["hub"]["commit"] == world.sae_commit
    assert lock["saes"]["res1"]["path"] == f"hf://{SCOPE_REPO}/{SCOPE_PATH}"
    assert lock["saes"]["res1"]["hook"] == "blocks.1.hook_resid_post"  # read through the cache path

    r1 = steerc(["compile", "specs/bot.steer", "-o", "out/a", "--locked", "--no-progress"], tmp_path / "proj", env)
    assert r1.returncode == 0, r1.stderr
    r2 = steerc(["compile", "bot.steer", "-o", "../out/b", "--locked", "--no-progress"], proj, env)
    assert r2.returncode == 0, r2.stderr
    a, b = tree(tmp_path / "proj/out/a"), tree(tmp_path / "proj/out/b")
    assert a == b
    manifest = json.loads(a["steerc-manifest.json"])
    assert manifest["base_model"]["path"] == "hf://org/tiny"
    assert manifest["base_model"]["hub"]["commit"] == world.model_commit
    assert str(world.cache) not in a["steerc-manifest.json"].decode()  # no machine-specific path


def test_locked_fails_when_the_ref_moved(world, tmp_path):
    home = tmp_path / "home"
    shutil.copytree(world.home, home, symlinks=True)
    (tmp_path / "bot.steer").write_text(SPEC)
    env = {**world.env(), "HF_HOME": str(home)}
    assert steerc(["check", "bot.steer", "--write-lock"], tmp_path, env).returncode == 0
    assert steerc(["check", "bot.steer", "--locked"], tmp_path, env).returncode == 0
    np.savez(tmp_path / "p.npz", **scope_params(HIDDEN, seed=1))
    new = put_repo(home / "hub", SCOPE_REPO, {f"{SCOPE_PATH}/params.npz": tmp_path / "p.npz"})
    r = steerc(["check", "bot.steer", "--locked"], tmp_path, env)
    assert r.returncode == 1
    assert "E222" in r.stderr and "moved" in r.stderr and new[:12] in r.stderr, r.stderr
    # the model's ref moving alone (same files, new commit) is detected as well
    put_repo(home / "hub", SCOPE_REPO, {f"{SCOPE_PATH}/params.npz": tmp_path / "p.npz"}, commit=new)
    put_repo(home / "hub", "org/tiny", folder_files(world.model_dir), commit="f" * 40)
    r = steerc(["check", "bot.steer", "--locked"], tmp_path, env)
    assert r.returncode == 1 and "model org/tiny: revision the default branch moved" in r.stderr, r.stderr


def test_pinned_revision_reads_that_commit(world, tmp_path):
    (tmp_path / "bot.steer").write_text(SPEC.replace('"org/tiny"', f'"org/tiny@{world.model_commit}"'))
    r = steerc(["check", "bot.steer", "--write-lock"], tmp_path, world.env())
    assert r.returncode == 0, r.stderr
    hub = json.loads((tmp_path / "bot.steer.lock").read_text())["model"]["hub"]
    assert hub == {"repo": "org/tiny", "revision": world.model_commit, "commit": world.model_commit}


def test_empty_cache_offline_names_the_line_and_the_fix(world, tmp_path):
    (tmp_path / "bot.steer").write_text(SPEC)
    env = {**world.env(), "HF_HOME": str(tmp_path / "empty")}
    r = steerc(["check", "bot.steer"], tmp_path, env)
    assert r.returncode == 1
    assert "bot.steer:1:7: error[E260]: model 'org/tiny' is not in the Hugging Face cache" in r.stderr, r.stderr
    assert "steerc fetch bot.steer" in r.stderr and "hf download org/tiny" in r.stderr
    assert "Traceback" not in r.stderr
    r = steerc(["fetch", "bot.steer"], tmp_path, env)
    assert r.returncode == 1 and "E260" in r.stderr and "Traceback" not in r.stderr


def test_fetch_reports_the_commits(world, tmp_path):
    (tmp_path / "bot.steer").write_text(SPEC)
    r = steerc(["fetch", "bot.steer", "--no-progress"], tmp_path, world.env())
    assert r.returncode == 0, r.stderr
    assert f"model org/tiny: commit {world.model_commit}" in r.stderr + r.stdout
