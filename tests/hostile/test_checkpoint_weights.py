"""`steerc verify` checks every weight file against the hash the manifest records before it
loads anything: a flipped byte in any shard (linked from the base, rewritten, or steerc's own
`steering.safetensors`) is E520, a shard the manifest does not list E521, never an internal
error and never a verify that passes on damaged weights."""

from __future__ import annotations

import json
import os
import shutil

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.hostile.world import FIX, run_cli, write_spec

# clamp: a hook (steering.safetensors, the base shard linked); ablate everywhere: rewritten
SPECS = {"hooks": "clamp res2[1] to 2\nsteer res2[3] by 1\n", "weights": "ablate res2[2] everywhere\n"}


@pytest.fixture(scope="module")
def compiled(base_model, tmp_path_factory):
    d = tmp_path_factory.mktemp("hostile-weights")
    out = {}
    for name, body in SPECS.items():
        spec = write_spec(d / f"{name}.steer", base_model, FIX / "sae_res", body)
        rc, _, err = run_cli(["compile", str(spec), "-o", str(d / name)])
        assert rc == 0, err
        out[name] = d / name
    m = json.loads((out["hooks"] / "steerc-manifest.json").read_text())
    assert set(m["shards"].values()) == {"link", "new"}, m["shards"]
    m = json.loads((out["weights"] / "steerc-manifest.json").read_text())
    assert "rewritten" in m["shards"].values(), m["shards"]
    return out


def _flip(path, offset_from_end=3):
    raw = bytearray(path.read_bytes())
    raw[-offset_from_end] ^= 0x01
    # a copy, not the linked base file: the base's own bytes must stay intact
    path.unlink()
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize("kind,file", [("hooks", "steering.safetensors"),
                                       ("hooks", "model-00001-of-00001.safetensors"),
                                       ("weights", None)], ids=["steering", "linked", "rewritten"])
def test_a_flipped_weight_byte_is_refused(compiled, tmp_path, kind, file):
    d = shutil.copytree(compiled[kind], tmp_path / "ck")
    m = json.loads((d / "steerc-manifest.json").read_text())
    file = file or next(f for f, how in m["shards"].items() if how == "rewritten")
    _flip(d / file)
    rc, _, err = run_cli(["verify", str(d)])
    assert rc == 1 and "error[E520]" in err and file in err, err


def test_edited_steering_file_is_a_diagnostic(compiled, tmp_path):
    """A steering.safetensors rewritten with other shapes (valid safetensors) or cut short."""
    from safetensors.torch import load_file, save_file

    d = shutil.copytree(compiled["hooks"], tmp_path / "ck")
    f = d / "steering.safetensors"
    t = load_file(f)
    name = next(n for n in sorted(t) if t[n].numel() > 1)
    t[name] = t[name].flatten()[1:].clone()
    f.unlink()
    save_file(t, str(f), metadata={"format": "pt"})
    rc, _, err = run_cli(["verify", str(d)])
    assert rc == 1 and "error[E520]" in err, err
    f.write_bytes(f.read_bytes()[:20])
    rc, _, err = run_cli(["verify", str(d)])
    assert rc == 1 and "error[E520]" in err, err


def test_unlisted_or_missing_weight_file_is_refused(compiled, tmp_path):
    d = shutil.copytree(compiled["hooks"], tmp_path / "ck")
    shutil.copyfile(d / "steering.safetensors", d / "model.safetensors")  # preferred by transformers
    rc, _, err = run_cli(["verify", str(d)])
    assert rc == 1 and "error[E521]" in err and "model.safetensors" in err, err
    (d / "model.safetensors").unlink()
    (d / "steering.safetensors").unlink()
    rc, _, err = run_cli(["verify", str(d)])
    assert rc == 1 and "error[E520]" in err and "missing" in err, err


def test_an_edit_that_restores_size_and_mtime_is_still_seen(compiled, tmp_path):
    """The hash cache must not hide a same-size edit whose mtime was put back (`touch -d`):
    a first check fills it, the edit comes after."""
    from steerc.diagnostics import DiagnosticError
    from steerc.verify.integrity import check_weights

    d = shutil.copytree(compiled["hooks"], tmp_path / "ck")
    m = json.loads((d / "steerc-manifest.json").read_text())
    check_weights(d, m)  # fills the cache
    f = d / "steering.safetensors"
    st_before = f.stat()
    raw = bytearray(f.read_bytes())
    raw[-3] ^= 0x01
    with open(f, "r+b") as fh:  # same inode, same size
        fh.write(bytes(raw))
    os.utime(f, ns=(st_before.st_atime_ns, st_before.st_mtime_ns))
    with pytest.raises(DiagnosticError) as e:
        check_weights(d, m)
    assert e.value.diagnostics[0].code == "E520"


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_changed_weight_byte_is_refused(compiled, tmp_path_factory, data):
    """Property: any one byte of any weight file (header or data, any shard kind) changed to
    any other value is caught by the check verify runs first."""
    from steerc.diagnostics import DiagnosticError
    from steerc.verify.integrity import check_weights

    kind = data.draw(st.sampled_from(sorted(compiled)))
    d = shutil.copytree(compiled[kind], tmp_path_factory.mktemp("w") / "ck")
    m = json.loads((d / "steerc-manifest.json").read_text())
    f = d / data.draw(st.sampled_from(sorted(m["files"])))
    raw = bytearray(f.read_bytes())
    i = data.draw(st.integers(0, len(raw) - 1))
    raw[i] = data.draw(st.integers(0, 255).filter(lambda b: b != raw[i]))
    f.unlink()
    f.write_bytes(bytes(raw))
    with pytest.raises(DiagnosticError) as e:
        check_weights(d, m)
    assert e.value.diagnostics[0].code == "E520", e.value.diagnostics
