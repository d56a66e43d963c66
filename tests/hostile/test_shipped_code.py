"""The modeling code a compiled checkpoint ships is the only code a downstream user runs:
its content hash is in the manifest, and `steerc verify` refuses (E504) a checkpoint whose
code was edited, removed, added to, or whose config.json (naming the code) was changed."""

from __future__ import annotations

import hashlib
import json

import pytest

from tests.hostile.world import FIX, run_cli, write_spec

HOOKS = "clamp res2[1] to 2\nsteer res2[3] by 1\n"  # clamp needs a hook module: code is shipped


@pytest.fixture(scope="module")
def hooked(base_model, tmp_path_factory):
    d = tmp_path_factory.mktemp("hostile-code")
    spec = write_spec(d / "s.steer", base_model, FIX / "sae_res", HOOKS)
    rc, _, err = run_cli(["compile", str(spec), "-o", str(d / "out")])
    assert rc == 0, err
    return d / "out"


def _copy(src, dst):
    import shutil

    shutil.copytree(src, dst)
    return dst


def test_every_shipped_py_file_is_hashed_in_the_manifest(hooked):
    manifest = json.loads((hooked / "steerc-manifest.json").read_text())
    shipped = {p.relative_to(hooked).as_posix() for p in hooked.rglob("*.py")}
    assert shipped and set(manifest["code_files"]) == shipped
    for rel, sha in manifest["code_files"].items():
        assert hashlib.sha256((hooked / rel).read_bytes()).hexdigest() == sha


def _tamper_code(d):
    f = sorted(d.glob("modeling_*.py"))[0]
    f.write_text(f.read_text() + "\nimport os  # injected\n")


def _remove_code(d):
    sorted(d.glob("modeling_*.py"))[0].unlink()


def _add_code(d):
    (d / "extra.py").write_text("print('hi')\n")


def _retarget_config(d):
    cfg = json.loads((d / "config.json").read_text())
    cfg["auto_map"] = {"AutoModelForCausalLM": "evil.Model"}
    (d / "config.json").write_text(json.dumps(cfg))


@pytest.mark.parametrize("tamper,text", [(_tamper_code, "differs from the manifest"),
                                         (_remove_code, "is missing"),
                                         (_add_code, "does not record"),
                                         (_retarget_config, "config.json")],
                         ids=["edited", "removed", "added", "config"])
def test_verify_refuses_tampered_code(hooked, tmp_path, tamper, text):
    d = _copy(hooked, tmp_path / "ck")
    tamper(d)
    rc, _, err = run_cli(["verify", str(d)])
    assert rc == 1 and "[E504]" in err and text in err, err
