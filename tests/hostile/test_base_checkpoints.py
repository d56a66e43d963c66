"""Broken base checkpoints through `steerc compile`: exit 1, an E6xx message naming the file
(and tensor), nothing written at the output, never a traceback."""

from __future__ import annotations

import json
import os
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from tests.hostile.world import FIX, run_cli, write_spec
from tests.tinymodels import save_tiny

INDEX = "model.safetensors.index.json"
EXACT = "steer res2[1] by 4\nablate res2[2] everywhere\n"  # weight edits on every writer


@pytest.fixture(scope="module")
def sharded_model(tmp_path_factory):
    d = tmp_path_factory.mktemp("hostile-sharded") / "model"
    save_tiny("llama", d, hidden_size=16, intermediate_size=32, head_dim=8, sharded=True)
    return d


def _index(d):
    return json.loads((d / INDEX).read_text())


def _write_index(d, index):
    (d / INDEX).write_text(json.dumps(index))


def missing_shard(d):
    (d / sorted(set(_index(d)["weight_map"].values()))[0]).unlink()


def index_names_absent_tensor(d):
    i = _index(d)
    i["weight_map"]["model.layers.9.mlp.down_proj.weight"] = sorted(set(i["weight_map"].values()))[0]
    _write_index(d, i)


def index_points_to_wrong_shard(d):
    i = _index(d)
    k = "model.layers.1.mlp.down_proj.weight"
    i["weight_map"][k] = next(s for s in sorted(set(i["weight_map"].values())) if s != i["weight_map"][k])
    _write_index(d, i)


def index_not_json(d):
    (d / INDEX).write_text("{oops")


def index_escapes_the_folder(d):
    i = _index(d)
    i["weight_map"] = {k: "../../etc/passwd" for k in i["weight_map"]}
    _write_index(d, i)


def _retensor(d, fn):
    t = load_file(str(d / "model.safetensors"))
    save_file(fn(t), str(d / "model.safetensors"), metadata={"format": "pt"})


def int8_weights(d):
    _retensor(d, lambda t: {k: (v * 10).to(torch.int8) if k.endswith("proj.weight") else v for k, v in t.items()})


def wrong_shape(d):
    def f(t):
        t["model.layers.1.mlp.down_proj.weight"] = torch.zeros(8, 32)
        return t
    _retensor(d, f)


def bin_only(d):
    torch.save(load_file(str(d / "model.safetensors")), d / "pytorch_model.bin")
    (d / "model.safetensors").unlink()


def no_config(d):
    (d / "config.json").unlink()


def unknown_model_type(d):
    c = json.loads((d / "config.json").read_text())
    c["model_type"] = "mamba9"
    (d / "config.json").write_text(json.dumps(c))


def truncated(d):
    f = d / "model.safetensors"
    f.write_bytes(f.read_bytes()[:-1000])


def random_bytes(d):
    (d / "model.safetensors").write_bytes(os.urandom(5000))


def empty(d):
    (d / "model.safetensors").write_bytes(b"")


# (case, sharded base?, breaker, code, text)
CASES = [
    ("missing shard", True, missing_shard, "E604", "shard file missing"),
    ("index names an absent tensor", True, index_names_absent_tensor, "E606", "does not hold it"),
    ("index points to the wrong shard", True, index_points_to_wrong_shard, "E606", "does not hold it"),
    ("index not JSON", True, index_not_json, "E603", "shard index"),
    ("index escapes the folder", True, index_escapes_the_folder, "E603", "plain file names"),
    ("int8 weights", False, int8_weights, "E608", "needs a float tensor"),
    ("tensor shape vs config", False, wrong_shape, "E609", "hidden size 16"),
    (".bin pickle only", False, bin_only, "E601", "no safetensors weights"),
    ("no config.json", False, no_config, "E602", "no config.json"),
    ("unknown model_type", False, unknown_model_type, "E490", "mamba9"),
    ("truncated shard", False, truncated, "E605", "truncated"),
    ("random bytes", False, random_bytes, "E605", "header claims"),
    ("empty shard", False, empty, "E605", "shorter than 8 bytes"),
]


@pytest.mark.parametrize("case,sharded,breaker,code,text", CASES, ids=[c[0] for c in CASES])
def test_broken_base_checkpoint(base_model, sharded_model, tmp_path, case, sharded, breaker, code, text):
    model = tmp_path / "model"
    shutil.copytree(sharded_model if sharded else base_model, model)
    breaker(model)
    spec = write_spec(tmp_path / "s.steer", model, FIX / "sae_res", EXACT)
    out = tmp_path / "out"
    rc, stdout, err = run_cli(["compile", str(spec), "-o", str(out)])
    assert rc == 1, (stdout, err)
    assert f"[{code}]" in err and text in err, err
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if ".steerc-" in p.name]


@pytest.mark.parametrize("case,breaker,code,text", [(c[0], c[2], c[3], c[4]) for c in CASES
                                                      if c[3] in ("E608", "E609")], ids=lambda x: str(x))
def test_check_with_a_target_finds_what_compile_would_refuse(base_model, tmp_path, case, breaker, code, text):
    """`check --target weights` plans as compile does: a tensor the weight edit cannot take is
    reported by check, not first by compile; plain `check` (no plan) stays header-only."""
    model = tmp_path / "model"
    shutil.copytree(base_model, model)
    breaker(model)
    spec = write_spec(tmp_path / "s.steer", model, FIX / "sae_res", EXACT)
    rc, stdout, err = run_cli(["check", str(spec), "--target", "weights"])
    assert rc == 1 and f"[{code}]" in err and text in err, (stdout, err)


def test_check_with_a_target_reports_refusals(base_model, tmp_path):
    spec = write_spec(tmp_path / "s.steer", base_model, FIX / "sae_res", "suppress res2[1]\n")
    rc, _, err = run_cli(["check", str(spec), "--target", "weights"])
    assert rc == 1 and "[E410]" in err and "s.steer:" in err, err
    rc, out, err = run_cli(["check", str(spec), "--target", "auto"])
    assert rc == 0 and "plans for target auto (hooks)" in out + err, (out, err)
    assert run_cli(["check", str(spec)])[0] == 0


def test_bin_is_never_unpickled(base_model, tmp_path, monkeypatch):
    """A .bin checkpoint is refused before anything could load it (no torch.load at all)."""
    model = tmp_path / "model"
    shutil.copytree(base_model, model)
    bin_only(model)
    monkeypatch.setattr(torch, "load", lambda *a, **k: pytest.fail("torch.load called on a .bin"))
    spec = write_spec(tmp_path / "s.steer", model, FIX / "sae_res", EXACT)
    rc, _, err = run_cli(["compile", str(spec), "-o", str(tmp_path / "out"), "--allow-pickle"])
    assert rc == 1 and "[E601]" in err
