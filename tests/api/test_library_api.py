"""The public library API (`steerc.check/explain/compile/verify/trace`) on a tiny Llama:
typed results with the facts the CLI prints, `steerc.DiagnosticError` carrying the
diagnostics, and `import steerc` without torch."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

import steerc
from steerc.cli import main
from tests.tinymodels import save_tiny

ROOT = Path(__file__).resolve().parents[2]
FIX = ROOT / "tests" / "fixtures"
RULES = '''suppress features matching "json" limit 6
steer res2["greeting"] by 2
'''


def _spec(d: Path, name: str, body: str) -> Path:
    p = d / name
    p.write_text(f'model "{d / "model"}"\nsae res2 = "{FIX / "sae_res"}"\n'
                 f'catalogue "{FIX / "catalogue.json"}"\n\n' + body)
    return p


@pytest.fixture(scope="module")
def d(tmp_path_factory):
    d = tmp_path_factory.mktemp("api")
    save_tiny("llama", d / "model", hidden_size=16, intermediate_size=32, head_dim=8)
    _spec(d, "rules.steer", RULES)
    _spec(d, "exact.steer", 'steer res2["greeting"] by 2\nexpect "ab" not mentions "qqqq"\n')
    return d


def test_import_steerc_is_light_and_exports_the_api():
    code = ("import sys, steerc\n"
            "print(sorted(m for m in ('torch', 'transformers', 'numpy', 'xgrammar', 'safetensors.torch')"
            " if m in sys.modules))\n"
            "print(sorted(n for n in steerc.__all__ if n != 'verify' and not hasattr(steerc, n)))")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert p.returncode == 0, p.stderr
    heavy, missing = p.stdout.splitlines()
    assert heavy == "[]", f"`import steerc` imported {heavy}"
    assert missing == "[]"
    for name in ("check", "explain", "compile", "verify", "trace", "DiagnosticError", "Diagnostic"):
        assert name in steerc.__all__


def test_check_returns_the_rules_and_keeps_the_lock(d):
    spec = d / "rules.steer"
    res = steerc.check(spec, write_lock=True)
    assert isinstance(res, steerc.Checked) and dataclasses.is_dataclass(res)
    assert res.lock_written and res.lock_path == d / "rules.steer.lock" and res.lock_path.is_file()
    assert [r.rule for r in res.rules] == ['suppress features matching "json" limit 6',
                                            'steer res2["greeting"] by 2']
    assert [len(r.features) for r in res.rules] == [2, 1]
    assert res.rules[0].ops == "set_activation = 0 x2" and res.rules[0].span.line == 5
    assert res.summary == "3 interventions on 1 SAE (2 rules)"
    assert steerc.check(spec, locked=True).locked
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.summary = "x"


def test_diagnostics_raise_one_documented_exception(d, tmp_path):
    bad = _spec(d, "bad.steer", 'suppress res2["no such label"]\nsuppress nope[1]\n')
    with pytest.raises(steerc.DiagnosticError) as ei:
        steerc.check(bad)
    codes = [x.code for x in ei.value.diagnostics]
    assert codes == ["E203", "E201"], codes
    assert all(isinstance(x, steerc.Diagnostic) and x.span.file == str(bad) for x in ei.value.diagnostics)
    with pytest.raises(steerc.DiagnosticError) as ei:  # the lock of another spec is not this one's
        steerc.check(d / "exact.steer", locked=True, lock=d / "rules.steer.lock")
    assert [x.code for x in ei.value.diagnostics] == ["E222"]
    with pytest.raises(ValueError):
        steerc.compile(d / "exact.steer", tmp_path / "o", target="gguf")


def test_explain_plans_without_writing(d):
    ex = steerc.explain(d / "rules.steer", target="weights")
    assert isinstance(ex, steerc.Explained)
    assert ex.target == "weights" and not ex.ok
    assert [x.code for x in ex.refusals] == ["E410"] and "(2 features)" in ex.refusals[0].message
    first, second = ex.rules
    assert [(w.kind, w.count, w.code) for w in first.lowered] == [("refused", 2, "E410")]
    assert [(w.kind, w.count) for w in second.lowered] == [("weights", 1)]
    assert steerc.explain(d / "rules.steer").ok  # auto -> hooks


def test_cli_prints_what_the_api_returns(d, capsys):
    assert main(["explain", str(d / "rules.steer"), "--target", "weights"]) == 1
    assert capsys.readouterr().out == steerc.explain(d / "rules.steer", target="weights").render() + "\n"
    assert main(["check", str(d / "rules.steer")]) == 0
    assert capsys.readouterr().out == f"ok: {steerc.check(d / 'rules.steer').summary}\n"


def test_compile_verify_trace(d, tmp_path):
    out = tmp_path / "exact"
    built = steerc.compile(d / "exact.steer", out)
    assert isinstance(built, steerc.Compiled)
    assert built.out == out and (out / "steerc-manifest.json").is_file() and (out / "steer.lock").is_file()
    assert (built.target, built.weight_edits, built.hooks, built.trust_remote_code) == ("weights", 1, 0, False)
    assert built.tensors_rewritten == len(json.loads((out / "steerc-manifest.json").read_text())["edits"])
    with pytest.raises(steerc.DiagnosticError) as ei:
        steerc.compile(d / "exact.steer", out)
    assert [x.code for x in ei.value.diagnostics] == ["E401"]
    hooked = steerc.compile(d / "rules.steer", tmp_path / "hooks")
    assert hooked.target == "hooks" and hooked.trust_remote_code and hooked.hooks == 3

    report = steerc.verify(out, max_windows=2, max_new_tokens=4)
    from steerc.verify import Report  # the package stays importable; it is also the call

    assert isinstance(report, Report) and all(e.passed for e in report.expects)
    # the fixture SAE is random (w_i . d_i < 0 for some features), so a steer may lower its
    # feature: verify says so (verdict `failed`), and only that can make this report not ok
    assert report.ok == (not report.failed_features)

    traced = steerc.trace("a b c", spec=d / "exact.steer", top=3)
    assert isinstance(traced, steerc.Traced) and traced.rows
    assert all(0 < len(r.hits) <= 3 for r in traced.rows)
    assert traced.to_json()["text"] == "a b c" and traced.table()
    for kwargs in ({"spec": d / "exact.steer", "top": 0}, {}):
        with pytest.raises(steerc.DiagnosticError) as ei:
            steerc.trace("a", **kwargs)
        assert [x.code for x in ei.value.diagnostics] == ["E510"]
