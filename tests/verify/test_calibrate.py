"""`steerc calibrate` on a tiny model: the search finds the passing t with the lowest KL and
writes it into the lock; check/compile read it from there (byte-identical rebuilds);
`--locked` catches an input changed since calibration (E283); nothing passing is exit 1
with the closest point (E561).

The SAE's encoder is its decoder's transpose (tests/verify/conftest.py), so `scale X by t`
reads back as exactly t times the base activation: `down by at least 40%` holds for
t <= 0.6 and fails above, which pins the passing set of the grid below."""

from __future__ import annotations

import json
import shutil

import pytest

import steerc
from steerc.cli import main
from steerc.compiler.lock import read_lock
from steerc.diagnostics import DiagnosticError

GRID = (0.0, 0.25, 0.5, 0.75, 1.0)
FAST = dict(max_windows=2, max_new_tokens=4)
PROMPTS = "ab\nthe cat\nonce upon a time\n"


def _write(tiny, tmp_path):
    shutil.copy(tiny / "catalogue.json", tmp_path / "catalogue.json")
    (tmp_path / "prompts.txt").write_text(PROMPTS)
    (tmp_path / "neutral.txt").write_text((tiny / "neutral.txt").read_text())
    spec = tmp_path / "auto.steer"
    spec.write_text(f'model "{tiny / "model"}"\nsae res = "{tiny / "sae"}"\ncatalogue "catalogue.json"\n'
                    'scale res["alpha topic"] by auto\n'
                    'expect res["alpha topic"] down by at least 40%\n'
                    'expect at least 100% of "prompts.txt" not mentions "qqqq"\n'
                    'expect kl on "neutral.txt" below 1000\n')
    return spec


@pytest.fixture
def work(tiny, tmp_path):
    """A spec with `scale ... by auto` beside its own copies of the catalogue and files."""
    return _write(tiny, tmp_path)


@pytest.fixture(scope="module")
def _calibrated_once(tiny, tmp_path_factory):
    spec = _write(tiny, tmp_path_factory.mktemp("calibrated"))
    return spec, steerc.calibrate(spec, grid=GRID, **FAST)


@pytest.fixture
def calibrated(_calibrated_once, tmp_path):
    """The calibrated spec, its lock and files copied to a fresh folder at the same depth
    (tests edit them; the model and SAE stay where the lock's relative paths find them)."""
    spec, curve = _calibrated_once
    shutil.copytree(spec.parent, tmp_path, dirs_exist_ok=True)
    return tmp_path / spec.name, curve


def test_the_passing_t_with_the_lowest_kl_is_chosen_and_written(calibrated):
    spec, curve = calibrated
    assert [p.t for p in curve.points] == list(GRID)
    assert [p.passed for p in curve.points] == [True, True, True, False, False]
    down = [p.outcomes[0].value for p in curve.points]
    assert down == pytest.approx([-100.0, -75.0, -50.0, -25.0, 0.0], abs=1e-3)
    passing = [p for p in curve.points if p.passed]
    assert curve.chosen is min(passing, key=lambda p: p.kl) and curve.chosen.t == 0.5
    assert curve.points[-1].kl == pytest.approx(0.0, abs=1e-7)   # t = 1 is the base model
    assert curve.lock_written and curve.failure is None
    lock = read_lock(spec.with_name("auto.steer.lock"))          # validates against the schema
    cal = lock["calibration"]
    assert cal["t"] == 0.5 and cal["grid"] == list(GRID) and cal["kl"] == curve.chosen.kl
    assert cal["inputs"]["rules"] == ['scale res["alpha topic"] by auto']
    assert lock["rules"][0]["features"][0][3] == 0.5
    # what check would write is exactly what calibrate wrote
    steerc.check(spec, locked=True)


def test_check_and_compile_use_the_locked_value_byte_identically(calibrated, tmp_path):
    spec, _ = calibrated
    checked = steerc.check(spec)
    assert checked.program.calibrated.t == 0.5 and checked.program.interventions[0].value == 0.5
    a = steerc.compile(spec, tmp_path / "a", locked=True)
    b = steerc.compile(spec, tmp_path / "b", locked=True)
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert files and all((tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes() for f in files)
    assert a.manifest["program"]["calibrated"] == {"t": 0.5, "rules": ['scale res["alpha topic"] by auto']}
    assert "Calibrated strength: t = 0.5" in (tmp_path / "a" / "README.md").read_text()
    assert json.loads((tmp_path / "a" / "steer.lock").read_text())["calibration"]["t"] == 0.5
    assert "calibrated: t = 0.5" in steerc.explain(spec).render()


def test_without_a_calibration_check_and_compile_point_at_the_auto(work, tmp_path):
    for call in (lambda: steerc.check(work), lambda: steerc.compile(work, tmp_path / "out")):
        with pytest.raises(DiagnosticError) as ei:
            call()
        [d] = ei.value.diagnostics
        assert d.code == "E282" and (d.span.line, d.span.col) == (4, 29)
        assert f"steerc calibrate {work}" in d.hint
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("edit,says", [
    (lambda s: (s.parent / "prompts.txt").write_text(PROMPTS + "hello\n"), "prompt file prompts.txt changed"),
    (lambda s: s.write_text(s.read_text() + 'suppress res["greeting"]\n'), 'rule added: suppress res["greeting"]'),
    (lambda s: s.write_text(s.read_text().replace("40%", "30%")), 'expectation removed: expect res["alpha topic"] down by at least 40%'),
    (lambda s: (s.parent / "catalogue.json").write_text(
        (s.parent / "catalogue.json").read_text().replace('"city name"', '"town name"')), "catalogue changed"),
])
def test_locked_detects_an_input_changed_since_calibration(calibrated, edit, says):
    spec, _ = calibrated
    edit(spec)
    with pytest.raises(DiagnosticError) as ei:
        steerc.check(spec, locked=True)
    ds = {d.code: d for d in ei.value.diagnostics}
    assert says in ds["E283"].message and ds["E283"].hint.startswith("recalibrate: `steerc calibrate")
    steerc.check(spec)  # without --locked the recorded t still applies
    # --write-lock keeps the calibration and its snapshot: still stale until recalibrated
    steerc.check(spec, write_lock=True)
    with pytest.raises(DiagnosticError) as ei:
        steerc.check(spec, locked=True)
    assert [d.code for d in ei.value.diagnostics if d.is_error] == ["E283"]


def test_a_lock_written_elsewhere_keeps_the_same_snapshot(calibrated, tmp_path_factory):
    spec, _ = calibrated
    other = tmp_path_factory.mktemp("elsewhere") / "sub" / "x.lock"
    other.parent.mkdir()
    shutil.copy(spec.with_name("auto.steer.lock"), other)
    steerc.check(spec, lock=other, write_lock=True)   # paths in the lock now relative to sub/
    doc = json.loads(other.read_text())
    assert doc["calibration"] == read_lock(spec.with_name("auto.steer.lock"))["calibration"]
    steerc.check(spec, lock=other, locked=True)       # no E283 for the move


def test_nothing_passing_exits_1_with_the_curve_and_the_closest_point(work, capsys, monkeypatch):
    monkeypatch.chdir(work.parent)
    rc = main(["calibrate", "auto.steer", "--grid", "1,0.75", "--max-windows", "2",
               "--max-new-tokens", "4", "--no-progress"])
    out, err = capsys.readouterr()
    assert rc == 1 and not work.with_name("auto.steer.lock").exists()
    assert "chosen: none" in out and "FAIL -25.0%" in out and "FAIL 0.0%" in out
    assert "error[E561]: no strength on the grid passes every expectation; the closest, t = 0.75 " \
           "(2 of 3 pass" in err
    assert "`expect res[\"alpha topic\"] down by at least 40%`" in err


def test_json_curve_and_usage_errors(work, capsys, monkeypatch):
    monkeypatch.chdir(work.parent)
    rc = main(["calibrate", "auto.steer", "--grid", "0.5,0", "--format", "json", "--dry-run",
               "--max-windows", "2", "--max-new-tokens", "4"])
    doc = json.loads(capsys.readouterr().out)
    assert rc == 0 and doc["ok"] and doc["chosen"]["t"] == 0.5 and not doc["lock_written"]
    assert [p["t"] for p in doc["points"]] == [0.0, 0.5]
    assert doc["points"][1]["rules"][0] == {"rule": 'scale res["alpha topic"] by auto',
                                            "where": "auto.steer:4:1", "unit": "1", "low": 0.5, "high": 0.5}
    assert [x["passed"] for x in doc["points"][1]["expects"]] == [True, True, True]
    assert not work.with_name("auto.steer.lock").exists()
    for grid in ("", "0,a", "1,1", "nan"):
        assert main(["calibrate", "auto.steer", "--grid", grid]) == 1
        assert "error[E560]" in capsys.readouterr().err
    work.write_text(work.read_text().replace("by auto", "by 0.5"))
    assert main(["calibrate", "auto.steer"]) == 1
    assert "error[E562]: nothing to calibrate" in capsys.readouterr().err


def test_the_shipped_example_is_calibrated_and_locked():
    """specs/examples/prose_auto.steer's committed lock holds the t docs/calibrate.md measured,
    and matches the demo's inputs (check --locked: no E222, no E283)."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    spec = root / "specs" / "examples" / "prose_auto.steer"
    if not (root / "demo" / "model" / "config.json").exists():
        pytest.skip("demo artefacts absent")
    checked = steerc.check(spec, locked=True)
    assert checked.program.calibrated.t == 0.375
    assert {iv.value for iv in checked.program.interventions} == {0.375}
    assert "t = 0.375" in (root / "docs" / "calibrate.md").read_text()
