"""Broken catalogues through `steerc check`: exit 1, the E1xx/E2xx code, a JSON path where
there is one, never a traceback."""

from __future__ import annotations

import copy
import json

import pytest

from tests.hostile.world import FIX, run_cli, write_spec

BASE = json.loads((FIX / "catalogue.json").read_text())
BODY = 'suppress res2["email"]\nclamp res2["json key"] to 5x max\n'


def _doc(edit):
    d = copy.deepcopy(BASE)
    edit(d)
    return json.dumps(d)


def _stat(text: str) -> str:
    return json.dumps(BASE).replace('"max_activation": 4.0', f'"max_activation": {text}', 1)


CASES = [
    ("invalid JSON", '{"version": 1, "saes": [}', "E101", "invalid JSON"),
    ("empty file", "", "E101", "invalid JSON"),
    ("not UTF-8", b'{"version": 1, "\xff": 2}', "E101", "not UTF-8"),
    ("NaN", _stat("NaN"), "E101", "NaN is not valid JSON"),
    ("1e400", _stat("1e400"), "E101", "out of range for a double"),
    ("400-digit integer", _stat("1" + "0" * 400), "E101", "out of the 64-bit range"),
    ("5000-digit integer", _stat("1" + "0" * 5000), "E101", "out of the 64-bit range"),
    ("100k nested arrays", "[" * 100_000 + "]" * 100_000, "E101", "nested too deeply"),
    ("wrong type", _doc(lambda d: d["features"][3].__setitem__("max_activation", "high")),
     "E102", "$.features[3].max_activation"),
    ("missing key", _doc(lambda d: d["features"][2].pop("index")), "E102", "$.features[2]"),
    ("duplicate id", _doc(lambda d: d["features"].append(copy.deepcopy(d["features"][0]))),
     "E104", "duplicate feature res[0]"),
    ("colliding labels", _doc(lambda d: d["features"][1].__setitem__("label", d["features"][0]["label"])),
     "E105", "$.features[1].label"),
    ("index out of range", _doc(lambda d: d["features"][0].__setitem__("index", 10 ** 6)),
     "E107", "out of range"),
    ("catalogue of a different SAE", _doc(lambda d: d["saes"][0].__setitem__("sha256", "0" * 64)),
     "E212", "describes a different SAE"),
    ("alias shared by two features", _doc(lambda d: d["features"][1].__setitem__("aliases", ["email"])),
     "E205", "names 2 features"),
]


@pytest.mark.parametrize("case,content,code,text", CASES, ids=[c[0] for c in CASES])
def test_broken_catalogue(base_model, tmp_path, case, content, code, text):
    cat = tmp_path / "cat.json"
    cat.write_bytes(content if isinstance(content, bytes) else content.encode())
    spec = write_spec(tmp_path / "s.steer", base_model, FIX / "sae_res", BODY, catalogue=cat)
    rc, out, err = run_cli(["check", str(spec)])
    assert rc == 1, (out, err)
    assert f"[{code}]" in err and text in err, err


def test_the_unbroken_catalogue_passes(base_model, tmp_path):
    cat = tmp_path / "cat.json"
    cat.write_text(json.dumps(BASE))
    spec = write_spec(tmp_path / "s.steer", base_model, FIX / "sae_res", BODY, catalogue=cat)
    assert run_cli(["check", str(spec)])[0] == 0


def test_missing_catalogue_file(base_model, tmp_path):
    spec = write_spec(tmp_path / "s.steer", base_model, FIX / "sae_res", BODY, catalogue=tmp_path / "nope.json")
    rc, out, err = run_cli(["check", str(spec)])
    assert rc == 1 and "not found" in err and "nope.json" in err, err


@pytest.mark.skipif(not __import__("os").path.exists("/dev/zero"), reason="needs /dev/zero")
def test_catalogue_that_never_ends_is_refused(base_model, tmp_path):
    """`catalogue "/dev/zero"` read until memory ran out (MemoryError, or the machine's RAM)."""
    spec = write_spec(tmp_path / "s.steer", base_model, FIX / "sae_res", BODY, catalogue="/dev/zero")
    rc, out, err = run_cli(["check", str(spec)])
    assert rc == 1 and "[E100]" in err and "not a regular file" in err, err
