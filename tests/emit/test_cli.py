"""`steerc compile` / `steerc explain` on a fixture spec; explain output is a golden file.

Regenerate the golden file with STEERC_UPDATE_GOLDEN=1 after an intended change."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from steerc.cli import main
from tests.tinymodels import save_tiny

ROOT = Path(__file__).resolve().parents[2]
FIX = ROOT / "tests" / "fixtures"
GOLDEN = Path(__file__).parent / "golden"
BODY = '''steer res2["json key"] by 4
ablate res2[2] everywhere
suppress res2["email"]
'''


@pytest.fixture(scope="module")
def spec_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    save_tiny("llama", d / "model", hidden_size=16, intermediate_size=32, head_dim=8)
    (d / "s.steer").write_text(f'model "{d / "model"}"\nsae res2 = "{FIX / "sae_res"}"\n'
                               f'catalogue "{FIX / "catalogue.json"}"\n\n' + BODY)
    (d / "exact.steer").write_text(f'model "{d / "model"}"\nsae res2 = "{FIX / "sae_res"}"\n'
                                   f'catalogue "{FIX / "catalogue.json"}"\n\n' + BODY.split("suppress")[0])
    return d


def _golden(name: str, text: str, d: Path) -> None:
    text = text.replace(str(d), "<tmp>").replace(str(ROOT), "<repo>")
    path = GOLDEN / name
    if os.environ.get("STEERC_UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text()


@pytest.mark.parametrize("target", ["auto", "weights"])
def test_explain_golden(spec_dir, capsys, target):
    code = main(["explain", str(spec_dir / "s.steer"), "--target", target])
    out = capsys.readouterr()
    assert code == (0 if target == "auto" else 1)
    _golden(f"explain_{target}.txt", out.out + ("--- stderr\n" + out.err if out.err else ""), spec_dir)


def test_compile_cli_writes_lock_and_refuses_existing_output(spec_dir, tmp_path, capsys):
    out = tmp_path / "bot"
    assert main(["compile", str(spec_dir / "exact.steer"), "-o", str(out)]) == 0
    assert "target weights" in capsys.readouterr().out
    assert (out / "steer.lock").is_file() and (out / "steerc-manifest.json").is_file()
    assert json.loads((out / "config.json").read_text())["model_type"] == "llama"
    assert main(["compile", str(spec_dir / "exact.steer"), "-o", str(out)]) == 1
    assert "E401" in capsys.readouterr().err
    assert main(["compile", str(spec_dir / "s.steer"), "-o", str(out), "--target", "weights",
                 "--force"]) == 1
    err = capsys.readouterr().err
    assert "E410" in err and "--target hooks" in err
    assert json.loads((out / "config.json").read_text())["model_type"] == "llama"  # untouched
    assert main(["compile", str(spec_dir / "s.steer"), "-o", str(out), "--force"]) == 0
    assert json.loads((out / "config.json").read_text())["model_type"] == "steerc_llama"


def test_enforce_json_needs_code_and_fails_closed(spec_dir, tmp_path, capsys):
    import transformers as tf

    spec = spec_dir / "json.steer"
    spec.write_text((spec_dir / "exact.steer").read_text() + "enforce json format\n")
    assert main(["compile", str(spec), "-o", str(tmp_path / "w"), "--target", "weights"]) == 1
    assert "E411" in capsys.readouterr().err and not (tmp_path / "w").exists()
    assert main(["compile", str(spec), "-o", str(tmp_path / "h")]) == 0
    out = tmp_path / "h"
    assert (out / "custom_generate" / "generate.py").is_file()
    m = json.loads((out / "steerc-manifest.json").read_text())
    assert m["target"] == "hooks" and "custom_generate/generate.py" in m["code_files"]
    with pytest.raises(ValueError, match="trust_remote_code"):
        tf.AutoModelForCausalLM.from_pretrained(out)


SETS = '''suppress features matching "json" limit 6
steer features tagged "tone:friendly" by 2
ablate res2[7] everywhere
'''


@pytest.fixture(scope="module")
def sets_spec(spec_dir):
    spec = spec_dir / "sets.steer"
    spec.write_text(f'model "{spec_dir / "model"}"\nsae res2 = "{FIX / "sae_res"}"\n'
                    f'catalogue "{FIX / "catalogue.json"}"\n\n' + SETS)
    return spec


@pytest.mark.parametrize("target", ["auto", "weights"])
def test_explain_summarises_each_source_rule(sets_spec, spec_dir, capsys, target):
    """A rule over a feature set is one block (with its count), not one per feature; under
    --target weights it is one E410 naming the count (was one E410 per feature)."""
    code = main(["explain", str(sets_spec), "--target", target])
    out = capsys.readouterr()
    assert code == (0 if target == "auto" else 1)
    _golden(f"explain_sets_{target}.txt", out.out + ("--- stderr\n" + out.err if out.err else ""), spec_dir)
    if target == "weights":
        assert out.err.count("error[E410]") == 1 and "(2 features)" in out.err


def test_explain_features_and_json_list_every_feature(sets_spec, capsys):
    from steerc.api import explain

    ex = explain(sets_spec)
    n = len(ex.program.interventions)
    assert main(["explain", str(sets_spec), "--features"]) == 0
    full = capsys.readouterr().out
    assert full.count("  # ") == 2 * n  # each intervention: once in the program, once in the plan
    assert main(["explain", str(sets_spec), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [r["n_features"] for r in doc["rules"]] == [len(r.features) for r in ex.rules]
    assert sum(len(r["features"]) for r in doc["rules"]) == n
    assert len(doc["rules"]) == 3 < n
