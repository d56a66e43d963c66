"""Steering-vector files: every format reads to the same per-layer vectors, and every bad
file is a diagnostic with its own code, never a traceback."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.numpy import save_file

from steerc.diagnostics import DiagnosticError
from steerc.directions.files import read_vectors, vectors_sha256

D = 16
RNG = np.random.default_rng(0)
VECS = {n: RNG.standard_normal(D).astype(np.float32) for n in (1, 2, 3)}


def _code(fn) -> str:
    with pytest.raises(DiagnosticError) as e:
        fn()
    return e.value.diagnostics[0].code


def _same(got, want):
    assert sorted(got, key=str) == sorted(want, key=str)
    for k in want:
        np.testing.assert_array_equal(got[k], want[k])


def test_safetensors_forms(tmp_path):
    one = tmp_path / "one.safetensors"
    save_file({"v": VECS[1]}, str(one))
    _same(read_vectors(str(one)), {None: VECS[1]})
    per = tmp_path / "per.safetensors"
    save_file({f"direction.{n}": v for n, v in VECS.items()}, str(per))
    _same(read_vectors(str(per)), VECS)
    stacked = tmp_path / "stacked.safetensors"
    save_file({"dirs": np.stack([VECS[1], VECS[2]]), "other": VECS[3]}, str(stacked))
    _same(read_vectors(str(stacked), key="dirs"), {0: VECS[1], 1: VECS[2]})
    _same(read_vectors(str(stacked), key="other"), {None: VECS[3]})
    assert _code(lambda: read_vectors(str(stacked))) == "E322"           # which tensor?
    assert _code(lambda: read_vectors(str(stacked), key="dir")) == "E322"  # no such key


def test_bfloat16_safetensors(tmp_path):
    from safetensors.torch import save_file as save_torch

    p = tmp_path / "bf.safetensors"
    save_torch({"v": torch.from_numpy(VECS[1]).bfloat16()}, str(p))
    got = read_vectors(str(p))[None]
    np.testing.assert_array_equal(got, torch.from_numpy(VECS[1]).bfloat16().float().numpy())


def test_svec(tmp_path):
    p = tmp_path / "v.svec"
    p.write_text(json.dumps({"model_type": "llama", "explained_variances": {},
                             "directions": {str(n): v.tolist() for n, v in VECS.items()}}))
    _same(read_vectors(str(p)), VECS)
    p.write_text(json.dumps({"directions": {"x": [1.0]}}))
    assert _code(lambda: read_vectors(str(p))) == "E322"
    p.write_text(json.dumps({"directions": {"1": ["a"]}}))
    assert _code(lambda: read_vectors(str(p))) == "E323"
    p.write_text("{not json")
    assert _code(lambda: read_vectors(str(p))) == "E320"


def test_gguf_control_vector(tmp_path):
    gguf = pytest.importorskip("gguf")
    p = tmp_path / "cv.gguf"
    w = gguf.GGUFWriter(str(p), "controlvector")
    w.add_string("controlvector.model_hint", "llama")
    w.add_uint32("controlvector.layer_count", len(VECS))
    for n, v in VECS.items():
        w.add_tensor(f"direction.{n}", v)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    _same(read_vectors(str(p)), VECS)
    assert _code(lambda: read_vectors(str(p), key="x")) == "E322"  # a key picks nothing here


def test_torch_file_needs_allow_pickle(tmp_path):
    p = tmp_path / "v.pt"
    torch.save({1: torch.from_numpy(VECS[1]), "2": torch.from_numpy(VECS[2])}, p)
    assert _code(lambda: read_vectors(str(p))) == "E307"
    _same(read_vectors(str(p), allow_pickle=True), {1: VECS[1], 2: VECS[2]})
    torch.save(torch.from_numpy(VECS[3]), p)
    _same(read_vectors(str(p), allow_pickle=True), {None: VECS[3]})
    p.write_bytes(b"not a zip")
    assert _code(lambda: read_vectors(str(p), allow_pickle=True)) == "E320"


@pytest.mark.parametrize("bad,code", [
    (np.zeros(D, np.float32), "E324"),
    (np.full(D, np.nan, np.float32), "E324"),
    (np.ones((2, 2, D), np.float32), "E323"),
])
def test_bad_vectors(tmp_path, bad, code):
    p = tmp_path / "bad.safetensors"
    save_file({"v": bad}, str(p))
    assert _code(lambda: read_vectors(str(p))) == code


def test_unknown_suffix_and_corrupt(tmp_path):
    p = tmp_path / "v.npy"
    p.write_bytes(b"x")
    assert _code(lambda: read_vectors(str(p))) == "E321"
    q = tmp_path / "v.safetensors"
    q.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{garbage")
    assert _code(lambda: read_vectors(str(q))) == "E320"


def test_hash_depends_on_values_and_layer():
    a = vectors_sha256({1: VECS[1]})
    assert a == vectors_sha256({1: VECS[1].copy()})
    assert a != vectors_sha256({2: VECS[1]})
    assert a != vectors_sha256({1: VECS[1] * 2})
