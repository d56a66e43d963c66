"""The modeling code a compiled checkpoint ships is the only code a downstream user runs:
its content hash is in the manifest, and `steerc verify` refuses (E504) a checkpoint whose
code was edited, removed, added to, or whose config.json (naming the code) was changed,
and also when the manifest was edited to agree: the code must be byte for byte what this
steerc version writes."""

from __future__ import annotations

import hashlib
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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


# -- the manifest cannot vouch for code: verify compares with steerc's own bytes ----------

def _sha(p):
    return hashlib.sha256(p.read_bytes()).hexdigest()


def _rehash_manifest(d):
    """Make the manifest agree with whatever the checkpoint now holds, as a tamperer would."""
    m = json.loads((d / "steerc-manifest.json").read_text())
    m["code_files"] = {p.relative_to(d).as_posix(): _sha(p) for p in d.rglob("*")
                       if p.suffix in (".py", ".pyc")}
    m["config_sha256"] = _sha(d / "config.json")
    (d / "steerc-manifest.json").write_text(json.dumps(m))


def _auto_map(d, value):
    cfg = json.loads((d / "config.json").read_text())
    cfg["auto_map"] = value
    (d / "config.json").write_text(json.dumps(cfg))


def _evil_module(d):
    (d / "evil.py").write_text("import os\n")
    _auto_map(d, {"AutoConfig": "configuration_steerc.SteercConfig", "AutoModelForCausalLM": "evil.Model"})


def _remote_repo(d):
    # a repository in the local Hugging Face cache would be imported with trust_remote_code
    _auto_map(d, {"AutoConfig": "configuration_steerc.SteercConfig",
                  "AutoModelForCausalLM": "someone/repo--steered_model.SteercForCausalLM"})


def _pycache(d):
    (d / "__pycache__").mkdir()
    (d / "__pycache__" / "steered_model.cpython-311.pyc").write_bytes(b"\x00" * 16)


@pytest.mark.parametrize("tamper,text", [
    (_tamper_code, "differs from the code this steerc version ships"),
    (_add_code, "is not a file steerc writes"),
    (_evil_module, "is not a file steerc writes"),
    (_remote_repo, "auto_map"),
    (_pycache, "is not a file steerc writes"),
], ids=["edited", "added", "auto_map to an added module", "auto_map to another repo", "pyc"])
def test_verify_refuses_code_even_when_the_manifest_agrees(hooked, tmp_path, tamper, text):
    d = _copy(hooked, tmp_path / "ck")
    tamper(d)
    _rehash_manifest(d)
    rc, _, err = run_cli(["verify", str(d)])
    assert rc == 1 and "[E504]" in err and text in err, err


def test_shipped_code_is_what_compile_writes(hooked):
    """The expected bytes verify uses are the bytes compile wrote (else every verify fails)."""
    from steerc.compiler.codefiles import shipped_code

    for p in hooked.rglob("*.py"):
        rel = p.relative_to(hooked).as_posix()
        assert shipped_code(rel, p.read_bytes()) == p.read_bytes(), rel


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_changed_byte_of_shipped_code_is_refused(hooked, tmp_path_factory, data):
    """Property: one byte of any shipped `.py` file changed (any offset, any value), the
    manifest rehashed to match: the check refuses before anything is imported."""
    from steerc.diagnostics import DiagnosticError
    from steerc.verify.integrity import check_code

    d = _copy(hooked, tmp_path_factory.mktemp("byte") / "ck")
    files = sorted(d.rglob("*.py"))
    f = data.draw(st.sampled_from(files))
    raw = bytearray(f.read_bytes())
    i = data.draw(st.integers(0, len(raw) - 1))
    raw[i] = data.draw(st.integers(0, 255).filter(lambda b: b != raw[i]))
    f.write_bytes(bytes(raw))
    _rehash_manifest(d)
    manifest = json.loads((d / "steerc-manifest.json").read_text())
    with pytest.raises(DiagnosticError) as e:
        check_code(d, manifest)
    assert e.value.diagnostics[0].code == "E504"


def _symlinked_guard_dir(d):
    """custom_generate/ as a symlink to a folder elsewhere (Path.rglob does not enter it)."""
    import shutil

    elsewhere = d.parent / "elsewhere"
    if (d / "custom_generate").is_dir():
        shutil.move(str(d / "custom_generate"), str(elsewhere))
    else:
        elsewhere.mkdir()
    (elsewhere / "generate.py").write_text("import os\n")
    (d / "custom_generate").symlink_to(elsewhere, target_is_directory=True)


def test_code_behind_a_symlinked_folder_is_checked(hooked, tmp_path):
    d = _copy(hooked, tmp_path / "ck")
    _symlinked_guard_dir(d)
    _rehash_manifest(d)  # as a tamperer would: the file is not in rglob's view, so not recorded
    rc, _, err = run_cli(["verify", str(d)])
    assert rc == 1 and "[E504]" in err and "custom_generate/generate.py" in err, err


def test_a_manifest_naming_other_files_as_code_reads_nothing(hooked, tmp_path):
    d = _copy(hooked, tmp_path / "ck")
    m = json.loads((d / "steerc-manifest.json").read_text())
    m["code_files"]["/dev/zero"] = "0" * 64  # hashing it would never end
    (d / "steerc-manifest.json").write_text(json.dumps(m))
    rc, _, err = run_cli(["verify", str(d)])
    assert rc == 1 and "[E504]" in err and "not a file steerc writes" in err, err
