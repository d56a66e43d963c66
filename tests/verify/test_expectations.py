"""Measured expectations on a tiny model: rates over a prompt file, KL bounds, a feature's
change, the prompting baseline, and the prompt-file checks at verify time (E550-E552).

Each bound is stated twice, once loose enough to hold and once impossible, so every test
shows the expectation can fail as well as pass."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from steerc.cli import main
from steerc.verify import Options, to_json, verify_checkpoint
from steerc.verify.expectations import MeasuredResult

HEAD = 'model "model"\nsae res = "sae"\ncatalogue "catalogue.json"\nsuppress res["alpha topic"]\n'
PROMPTS = "\n".join(["ab", "the cat", "once upon a time", "hello there", "list three colours"]) + "\n"
SPECS = {
    "loose": HEAD + 'expect at least 100% of "prompts.txt" not mentions "qqqq"\n'
                    'expect kl on "prompts.txt" below 1000\n'
                    'expect res["alpha topic"] down by at least 90%\n',
    "tight": HEAD + 'expect at least 20% of "prompts.txt" mentions "qqqq"\n'
                    'expect kl below 1e-12\n'
                    'expect res["alpha topic"] up by at least 10% on "prompts.txt"\n',
    "baseline": HEAD + 'baseline prompt "Answer only in JSON.\\n"\n'
                       'expect "ab" not mentions "qqqq"\n'
                       'expect at least 100% of "prompts.jsonl" not mentions "qqqq"\n'
                       'expect kl below 1000\n'
                       'expect res["alpha topic"] down by at least 90%\n',
}


@pytest.fixture(scope="module")
def built(tiny):
    from steerc.compiler.build_checkpoint import compile_program
    from steerc.compiler.load import load_program

    (tiny / "prompts.txt").write_text(PROMPTS)
    (tiny / "prompts.jsonl").write_text("".join(json.dumps({"text": p}) + "\n" for p in PROMPTS.splitlines()))
    out, cwd = {}, os.getcwd()
    os.chdir(tiny)
    try:
        for name, text in SPECS.items():
            (tiny / f"x_{name}.steer").write_text(text)
            compile_program(load_program(f"x_{name}.steer"), f"out_x_{name}", force=True)
            out[name] = tiny / f"out_x_{name}"
    finally:
        os.chdir(cwd)
    return out


def _opts(tiny):
    return Options(neutral=str(tiny / "neutral.txt"), max_windows=4, max_new_tokens=6)


def test_loose_bounds_pass(built, tiny):
    r = verify_checkpoint(built["loose"], _opts(tiny))
    rate, kl, change = r.expects
    assert all(isinstance(e, MeasuredResult) for e in r.expects) and r.ok
    assert rate.count == 5 and rate.steered.value == 100.0 and rate.base.value == 100.0
    assert kl.unit == "nats/token" and 0 < kl.steered.value < 1000 and kl.count > 0
    assert change.steered.value == pytest.approx(-100.0, abs=1e-3)   # encoder = decoder^T


def test_impossible_bounds_fail_with_the_measured_figure_at_the_line(built, tiny, capsys, tmp_path,
                                                                        monkeypatch):
    monkeypatch.chdir(tiny)
    rc = main(["verify", str(built["tight"]), "--neutral", str(tiny / "neutral.txt"), "--max-windows", "4",
               "--max-new-tokens", "6", "--json", str(tmp_path / "r.json")])
    out = capsys.readouterr().out
    assert rc == 1 and "result: FAILED (0/3 expectations passed)" in out
    assert ("x_tight.steer:5:1: error[E550]: expectation failed: 0/5 prompts pass (0.0%, need 20%) "
            "on prompts.txt") in out.replace(str(tiny) + os.sep, "")
    assert "x_tight.steer:6:1: error[E550]: expectation failed: mean " in out
    assert "x_tight.steer:7:1: error[E550]: expectation failed: summed mean " in out and "need +10%" in out
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["version"] == 4 and doc["ok"] is False and doc["baseline"] is None
    rate, kl, change = doc["expects"]
    assert (rate["kind"], rate["percent"], rate["steered"]["value"], rate["texts"]["count"]) == \
        ("mentions", 20.0, 0.0, 5)
    assert len(rate["failures"]) == 5 and rate["failures"][0]["prompt"] == "ab"
    assert kl["kind"] == "kl_below" and kl["bound"] == 1e-12 and kl["steered"]["passed"] is False
    assert change["kind"] == "up" and change["features"] == [["res", 0]] and change["steered"]["value"] < 0


def test_machine_formats_carry_e550(built, tiny, capsys):
    rc = main(["verify", str(built["tight"]), "--neutral", str(tiny / "neutral.txt"), "--max-windows", "4",
               "--max-new-tokens", "6", "--format", "json"])
    got = capsys.readouterr()
    assert rc == 1 and (got.out + got.err).count('"E550"') == 3


def test_the_baseline_is_measured_beside_base_and_steered(built, tiny):
    r = verify_checkpoint(built["baseline"], _opts(tiny))
    assert r.baseline == "Answer only in JSON.\n" and r.ok
    one, rate, kl, change = r.expects
    assert one.prompted is not None and isinstance(one.prompted_text, str)
    assert rate.prompted.value == 100.0 and rate.count == 5                 # JSON lines file
    assert kl.prompted.value > 0                   # a prompt changes the next-token distribution
    assert change.prompted is not None and change.prompted.value != change.steered.value
    doc = to_json(r)
    assert doc["baseline"] == "Answer only in JSON.\n"
    assert doc["expects"][0]["prompted"]["text"] == one.prompted_text
    assert doc["expects"][2]["prompted"]["value"] == kl.prompted.value


def test_a_prompt_file_changed_since_compile_is_refused(built, tiny, tmp_path, capsys):
    ck = tmp_path / "ck"
    shutil.copytree(built["loose"], ck)
    # the manifest records inputs relative to the checkpoint: a sibling prompts.txt is read
    for name in ("model", "sae", "catalogue.json"):
        os.symlink(tiny / name, tmp_path / name)
    (tmp_path / "prompts.txt").write_text(PROMPTS + "one more\n")
    rc = main(["verify", str(ck), "--neutral", str(tiny / "neutral.txt")])
    out = capsys.readouterr()
    assert rc == 1 and "error[E552]: prompt file" in out.err + out.out and "changed since" in out.err + out.out
    (tmp_path / "prompts.txt").unlink()
    rc = main(["verify", str(ck), "--neutral", str(tiny / "neutral.txt")])
    out = capsys.readouterr()
    assert rc == 1 and "error[E551]: prompt file '../prompts.txt'" in out.err + out.out
    assert "Traceback" not in out.err
