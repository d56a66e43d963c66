"""`steerc verify` on tiny compiled checkpoints: report fields, exit codes, integrity refusals."""

from __future__ import annotations

import json
import shutil

import pytest

from steerc.cli import main
from steerc.verify import Options, to_json, verify_checkpoint


def _verify(capsys, *argv):
    rc = main(["verify", *map(str, argv)])
    out = capsys.readouterr()
    return rc, out.out, out.err


@pytest.fixture(scope="module")
def reports(compiled, tiny):
    opts = Options(neutral=str(tiny / "neutral.txt"), max_windows=8, max_new_tokens=12)
    return {n: verify_checkpoint(compiled[n], opts) for n in ("suppress", "steer")}


def test_suppress_hook_drops_feature_to_zero(reports):
    r = reports["suppress"]
    assert r.target == "hooks"
    [f] = r.features
    assert (f.target.feature.sae, f.target.feature.index) == ("res", 0)
    assert f.base_mean > 0.01 and f.base_active > 0.05     # the feature fires on the prompts
    assert f.steered_mean == pytest.approx(0.0, abs=1e-5)   # encoder = decoder^T: read back as 0
    assert f.change_pct <= -99.9
    assert r.kl.mean > 0 and r.kl.n_tokens > 0
    assert r.ok


def test_steer_weight_edit_raises_feature(reports):
    r = reports["steer"]
    assert r.target == "weights"
    [f] = r.features
    # steer by 3 along an orthonormal decoder row adds exactly 3 to its pre-activation
    assert f.steered_mean > f.base_mean + 2.0
    assert f.steered_max == pytest.approx(f.base_max + 3.0, abs=1e-3) or f.steered_max > f.base_max
    assert r.kl.mean > 0


def test_json_report_fields(reports):
    doc = to_json(reports["suppress"])
    assert doc["version"] == 4 and doc["ok"] is True and doc["target"] == "hooks"
    f = doc["features"][0]
    assert set(f) >= {"sae", "index", "label", "hook", "ops", "base", "steered", "change_pct", "verdict"}
    assert f["label"] == "alpha topic" and f["verdict"] == "ok" and f["ops"] == ["set_activation=0"]
    assert set(doc["kl"]) == {"source", "mean", "p95", "max", "tokens"}
    assert doc["totals"]["down"]["features"] == 1 and doc["totals"]["down"]["change_pct"] <= -99.9
    e = doc["expects"][0]
    assert e["kind"] == "not_mentions" and e["passed"] and isinstance(e["steered"]["text"], str)
    json.dumps(doc)  # JSON-safe


def test_failing_expect_exits_1(compiled, tiny, capsys, tmp_path):
    rc, out, _ = _verify(capsys, compiled["failing"], "--neutral", tiny / "neutral.txt",
                         "--max-windows", 4, "--max-new-tokens", 8, "--json", tmp_path / "r.json")
    assert rc == 1
    assert 'FAIL  expect "ab" mentions "qqqq"' in out and 'PASS  expect "ab" not mentions' in out
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["ok"] is False and [e["passed"] for e in doc["expects"]] == [False, True]


def test_passing_expects_exit_0_and_plot(compiled, tiny, capsys, tmp_path):
    pytest.importorskip("matplotlib")
    png = tmp_path / "p.png"
    rc, out, _ = _verify(capsys, compiled["steer"], "--neutral", tiny / "neutral.txt",
                         "--max-windows", 4, "--max-new-tokens", 8, "--plot", png)
    assert rc == 0 and "result: OK" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_json_guard_expect_passes(compiled, tiny, capsys):
    rc, out, _ = _verify(capsys, compiled["json"], "--neutral", tiny / "neutral.txt",
                         "--max-windows", 2, "--max-new-tokens", 16)
    assert "JSON guard" in out
    assert rc == 0, out
    assert 'PASS  expect "ab" is json' in out


def test_tampered_modeling_file_refused(compiled, tmp_path, capsys):
    ck = tmp_path / "ck"
    shutil.copytree(compiled["suppress"], ck)
    f = ck / "modeling_steerc.py"
    f.write_text(f.read_text() + "\nimport os  # injected\n")
    rc, _, err = _verify(capsys, ck)
    assert rc == 1 and "E504" in err and "modeling_steerc.py" in err and "Traceback" not in err


def test_unrecorded_code_file_refused(compiled, tmp_path, capsys):
    ck = tmp_path / "ck"
    shutil.copytree(compiled["suppress"], ck)
    (ck / "extra.py").write_text("print('hi')\n")
    rc, _, err = _verify(capsys, ck)
    assert rc == 1 and "E504" in err and "extra.py" in err


def test_not_a_checkpoint(tmp_path, capsys):
    rc, _, err = _verify(capsys, tmp_path)
    assert rc == 1 and "E502" in err
    rc, _, err = _verify(capsys, tmp_path / "nope")
    assert rc == 1 and "E501" in err
    (tmp_path / "steerc-manifest.json").write_text("{not json")
    rc, _, err = _verify(capsys, tmp_path)
    assert rc == 1 and "E503" in err


def test_missing_base_model(compiled, tmp_path, capsys):
    ck = tmp_path / "ck"
    shutil.copytree(compiled["steer"], ck)  # the manifest's relative "model" no longer resolves
    rc, _, err = _verify(capsys, ck)
    assert rc == 1 and "E505" in err and "--base-model" in err
