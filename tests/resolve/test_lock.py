"""Lock files (`<spec>.lock`): build, write/read round trip, schema, drift diff, `steerc check` flags."""

import json
from pathlib import Path

import jsonschema
import pytest

from steerc.cli import main
from steerc.compiler.load import load_program
from steerc.compiler.lock import (build_lock, default_lock_path, diff_lock, dumps_lock, lock_schema,
                                  read_lock, write_lock)
from steerc.diagnostics import DiagnosticError

from conftest import FIX

BODY = 'suppress res2["email"]\nclamp res2["json key"] to 2x max\nsuppress features tagged "entity:person"\n'


@pytest.fixture
def local(tmp_path):
    """A spec whose catalogue is a copy we can edit."""
    cat = tmp_path / "cat.json"
    cat.write_text((FIX / "catalogue.json").read_text())
    p = tmp_path / "s.steer"
    p.write_text(f'model "{FIX / "model"}"\nsae res2 = "{FIX / "sae_res"}"\ncatalogue "cat.json"\n' + BODY)
    return p, cat


def relabel(cat, label, new_index):
    doc = json.loads(cat.read_text())
    for f in doc["features"]:
        if f["label"] == label:
            f["index"] = new_index
    cat.write_text(json.dumps(doc))


def test_lock_contents_and_schema(local):
    spec, _ = local
    lock = build_lock(load_program(spec), spec.parent)
    jsonschema.validate(lock, lock_schema())
    assert lock["spec"] == "s.steer" and list(lock["files"]) == ["s.steer"]
    assert lock["catalogue"]["path"] == "cat.json"
    assert lock["model"]["fingerprint"] and lock["saes"]["res2"]["d_sae"] == 64
    rules = {r["origin"]: r["features"] for r in lock["rules"]}
    assert rules['suppress res2["email"]'] == [["res2", 0, "email address", 0.0]]
    assert rules['clamp res2["json key"] to 2x max'] == [["res2", 1, "json key", 6.0]]
    assert [f[1] for f in rules['suppress features tagged "entity:person"']] == [8, 13]
    assert lock["rules"][0]["span"] == "s.steer:4:1"


def test_write_read_round_trip_is_byte_stable(local, tmp_path):
    spec, _ = local
    lock = build_lock(load_program(spec), spec.parent)
    path = write_lock(lock, tmp_path / "steer.lock")
    assert read_lock(path) == lock
    assert path.read_text() == dumps_lock(build_lock(load_program(spec), spec.parent))
    assert diff_lock(lock, read_lock(path)) == []


def test_drift_diff_lines(local):
    spec, cat = local
    old = build_lock(load_program(spec), spec.parent)
    relabel(cat, "email address", 40)
    new = build_lock(load_program(spec), spec.parent)
    d = diff_lock(old, new)
    assert d[0].startswith("catalogue hash changed ")
    assert d[0] == f"catalogue hash changed {old['catalogue']['sha256'][:12]} -> {new['catalogue']['sha256'][:12]}"
    assert 'suppress res2["email"]: index 0 -> 40' in d
    assert len(d) == 2


def test_set_and_value_drift(local):
    spec, cat = local
    old = build_lock(load_program(spec), spec.parent)
    doc = json.loads(cat.read_text())
    for f in doc["features"]:
        if f["label"] == "famous person":
            f["tags"] = []
        if f["label"] == "json key":
            f["max_activation"] = 4.0
    cat.write_text(json.dumps(doc))
    d = diff_lock(old, build_lock(load_program(spec), spec.parent))
    assert 'clamp res2["json key"] to 2x max: value 6 -> 8' in d
    assert 'suppress features tagged "entity:person": removed res2[13] "famous person"' in d


def test_rule_edits(local):
    spec, _ = local
    old = build_lock(load_program(spec), spec.parent)
    spec.write_text(spec.read_text().replace('suppress res2["email"]\n', "") + "scale res2[3] by 2\n")
    d = diff_lock(old, build_lock(load_program(spec), spec.parent))
    assert d[0].startswith("spec file s.steer changed")
    assert 'rule removed: suppress res2["email"]' in d and "rule added: scale res2[3] by 2" in d


def test_read_lock_errors(tmp_path):
    with pytest.raises(DiagnosticError) as e:
        read_lock(tmp_path / "none.lock")
    assert e.value.diagnostics[0].code == "E223"
    (tmp_path / "bad.lock").write_text('{"version": 1}')
    with pytest.raises(DiagnosticError) as e:
        read_lock(tmp_path / "bad.lock")
    assert e.value.diagnostics[0].code == "E223" and "required" in e.value.diagnostics[0].message


def test_cli_write_lock_then_locked(local, capsys):
    spec, cat = local
    assert main(["check", str(spec), "--locked"]) == 1
    assert "E223" in capsys.readouterr().err
    assert main(["check", str(spec), "--write-lock"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("ok: 4 interventions on 1 SAE (3 rules)") and "wrote" in out
    assert default_lock_path(spec).is_file()
    assert main(["check", str(spec), "--locked"]) == 0
    relabel(cat, "email address", 40)
    assert main(["check", str(spec), "--locked"]) == 1
    err = capsys.readouterr().err
    assert "error[E222]" in err and 'suppress res2["email"]: index 0 -> 40' in err


def test_cli_lock_path_and_failure(local, tmp_path, capsys):
    spec, _ = local
    target = tmp_path / "elsewhere.lock"
    assert main(["check", str(spec), "--write-lock", "--lock", str(target)]) == 0
    assert target.is_file() and not default_lock_path(spec).exists()
    spec.write_text(spec.read_text() + 'suppress res2["nope"]\n')
    assert main(["check", str(spec)]) == 1
    assert "error[E203]" in capsys.readouterr().err


def test_schema_copies_agree():
    from pathlib import Path
    import steerc.compiler.lock as lk
    repo = Path(lk.__file__).resolve().parents[2]
    assert (repo / "specs/schemas/lock.schema.json").read_text() == lk.SCHEMA_PATH.read_text()
    jsonschema.Draft202012Validator.check_schema(lock_schema())


def test_each_spec_of_a_folder_has_its_own_lock(local, capsys):
    """Two specs in one folder: each writes and checks `<spec>.lock` (they shared one
    `steer.lock` before, so `--locked` on the second reported drift against the first)."""
    spec, _ = local
    other = spec.with_name("other.steer")
    other.write_text(spec.read_text().replace(BODY, 'suppress res2["email"]\n'))
    for s in (spec, other):
        assert main(["check", str(s), "--write-lock"]) == 0
    assert default_lock_path(spec).name == "s.steer.lock"
    assert default_lock_path(other) == other.with_name("other.steer.lock")
    assert main(["check", str(spec), "--locked"]) == 0
    assert main(["check", str(other), "--locked"]) == 0
    assert not (spec.parent / "steer.lock").exists()
    capsys.readouterr()


@pytest.mark.parametrize("whose", ["this spec", "another spec"])
def test_old_shared_lock_gets_a_hint(local, capsys, whose):
    spec, _ = local
    assert main(["check", str(spec), "--write-lock", "--lock", str(spec.parent / "steer.lock")]) == 0
    if whose == "another spec":
        doc = json.loads((spec.parent / "steer.lock").read_text())
        (spec.parent / "steer.lock").write_text(json.dumps(dict(doc, spec="first.steer")))
    capsys.readouterr()
    assert main(["check", str(spec), "--locked"]) == 1
    err = capsys.readouterr().err
    assert "error[E223]" in err and "one lock per spec" in err
    if whose == "this spec":
        assert "rename it" in err and "s.steer.lock" in err
    else:
        assert "it locks first.steer" in err and "--write-lock" in err


def test_a_lock_without_auto_keeps_its_bytes_and_validates():
    """The `calibration` entry is only written for a spec with `auto`: the committed lock of
    no_code.steer (written before it existed) is still exactly what `--write-lock` writes,
    and still valid under the schema that added it."""
    from steerc.compiler.load import load_program

    root = Path(__file__).resolve().parents[2]
    spec = root / "specs" / "examples" / "no_code.steer"
    committed = spec.with_name(spec.name + ".lock")
    if not (root / "demo" / "model" / "config.json").exists():
        pytest.skip("demo artefacts absent")
    doc = read_lock(committed)
    assert "calibration" not in doc
    new = build_lock(load_program(spec), committed.parent)
    assert dumps_lock({**new, "steerc": doc["steerc"]}).encode() == committed.read_bytes()
