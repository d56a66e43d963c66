"""A compiled checkpoint does not depend on the working directory or on how the spec path is
spelled: `specs/x.steer`, `./specs/x.steer`, an absolute path and runs from other working
directories give byte-identical output trees (every file, nothing excluded), no absolute
build path reaches any output file, and `steerc verify` still finds the inputs (the
manifest records them relative to the spec's directory, and that directory relative to the
checkpoint). The lock has the same property."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.hostile.world import FIX, run_cli
from tests.tinymodels import save_tiny


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    w = tmp_path_factory.mktemp("paths") / "work"
    save_tiny("llama", w / "model", hidden_size=16, intermediate_size=32, head_dim=8)
    shutil.copytree(FIX / "sae_res", w / "saes" / "res")
    shutil.copy(FIX / "catalogue.json", w / "catalogue.json")
    shutil.copy(FIX / "schemas" / "ticket.json", w / "ticket.json")
    specs = w / "specs"
    specs.mkdir()
    (specs / "common.steer").write_text('sae res2 = "../saes/res"\ncatalogue "../catalogue.json"\n')
    (specs / "x.steer").write_text(
        'model "../model"\nuse "common.steer"\n\n'
        'steer res2[1] by 2\nsuppress res2["json key"]\nablate res2[3] on prompt\n\n'
        'expect "Give me a ticket" matches schema "../ticket.json"\n')
    return w


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _compile(cwd: Path, spec: str, out: str, monkeypatch) -> None:
    monkeypatch.chdir(cwd)
    rc, stdout, err = run_cli(["compile", spec, "-o", out, "--no-progress"])
    assert rc == 0, err


def test_output_is_independent_of_cwd_and_spec_spelling(work, tmp_path, monkeypatch):
    other = tmp_path / "elsewhere"
    other.mkdir()
    spec_abs = str(work / "specs" / "x.steer")
    # each output sits at work/oN/ckpt: the same place relative to the spec
    runs = [(work, "specs/x.steer", "o1/ckpt"),
            (work, "./specs/x.steer", "./o2/ckpt"),
            (work, spec_abs, str(work / "o3" / "ckpt")),
            (work / "specs", "x.steer", "../o4/ckpt"),
            (work / "specs", "../specs/./x.steer", str(work / "o5" / "ckpt")),
            (other, spec_abs, os.path.relpath(work / "o6" / "ckpt", other))]
    for cwd, spec, out in runs:
        _compile(cwd, spec, out, monkeypatch)
    trees = [_tree(work / f"o{i}" / "ckpt") for i in range(1, len(runs) + 1)]
    assert "modeling_steerc.py" in trees[0] and "steer.lock" in trees[0]
    for i, t in enumerate(trees[1:], 2):
        assert list(t) == list(trees[0]), f"run {i}: other files"
        differ = [name for name in t if t[name] != trees[0][name]]
        assert not differ, f"run {i} ({runs[i - 1][:2]}): {differ} differ"
    for name, data in trees[0].items():  # no absolute build path in any output file
        assert str(tmp_path).encode() not in data and str(work).encode() not in data, name


def test_verify_finds_the_inputs_from_any_cwd(work, tmp_path, monkeypatch):
    from steerc.verify.checkpoint import open_steered

    _compile(work, "specs/x.steer", "o7/ckpt", monkeypatch)
    monkeypatch.chdir(tmp_path)  # neither the spec's nor the checkpoint's folder
    ck = open_steered(work / "o7" / "ckpt")
    assert ck.base_model.resolve() == (work / "model").resolve()
    assert ck.sae_paths["res2"].resolve() == (work / "saes" / "res").resolve()
    assert ck.manifest["spec"]["file"] == "../../specs/x.steer"  # relative to the checkpoint


def test_lock_is_independent_of_cwd_and_spec_spelling(work, tmp_path, monkeypatch):
    locks = []
    for i, (cwd, spec) in enumerate([(work, "specs/x.steer"), (work / "specs", "x.steer"),
                                     (tmp_path, str(work / "specs" / "x.steer")),
                                     (work / "specs", "./../specs/x.steer")]):
        monkeypatch.chdir(cwd)
        lock = tmp_path / f"{i}.lock"
        rc, _, err = run_cli(["check", spec, "--write-lock", "--lock", str(lock)])
        assert rc == 0, err
        locks.append(lock.read_bytes())
    assert all(lk == locks[0] for lk in locks)
