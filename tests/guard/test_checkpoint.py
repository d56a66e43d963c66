"""The guard inside a checkpoint: files, self-containment, from_pretrained(...).generate()."""

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from steerc.compiler import ir
from steerc.guard import GUARD_DIR, REQUIREMENTS, write_guard
from steerc.guard import checkpoint as ck
from steerc.guard import shipped_generate as tpl
from tests.guard.conftest import SCHEMA
from tests.shipped import BLOCK_STEERC, top_level_imports
from tests.tinymodels import save_tiny

# numpy: a dependency of xgrammar itself, so `pip install xgrammar` brings it
ALLOWED_IMPORTS = {"json", "os", "warnings", "numpy", "torch", "transformers", "xgrammar"}
ROOT = Path(__file__).resolve().parents[2]


def test_shipped_generate_imports_only_allowed_modules():
    names = top_level_imports(ck.SHIPPED_GENERATE)
    assert names <= ALLOWED_IMPORTS, names - ALLOWED_IMPORTS
    assert tpl.GUARD_FILE == ck.GUARD_FILE


def test_write_guard_files(tmp_path):
    files = write_guard(tmp_path, ir.JsonConstraint("schemas/t.json", SCHEMA))
    d = tmp_path / GUARD_DIR
    assert {f.name for f in files} == {"generate.py", "requirements.txt", "guard.json", "schema.json"}
    assert (d / "generate.py").read_bytes() == ck.SHIPPED_GENERATE.read_bytes()
    assert json.loads((d / "schema.json").read_text()) == json.loads(SCHEMA)
    assert json.loads((d / "guard.json").read_text())["schema_file"] == "schema.json"
    # Rewriting as "any JSON" must drop the old schema.
    files = write_guard(tmp_path, ir.JsonConstraint(None, None))
    assert not (d / "schema.json").exists()
    assert json.loads((d / "guard.json").read_text())["schema_file"] is None


def test_requirements_pass_transformers_check(tmp_path):
    from transformers.dynamic_module_utils import check_python_requirements

    (tmp_path / "requirements.txt").write_text(REQUIREMENTS)
    check_python_requirements(str(tmp_path))  # installed xgrammar satisfies both bounds
    (tmp_path / "requirements.txt").write_text("xgrammar>=99.0\n")
    with pytest.raises(ImportError, match="xgrammar"):
        check_python_requirements(str(tmp_path))


def test_unsupported_schema_writes_nothing(tmp_path):
    from steerc.diagnostics import DiagnosticError

    bad = json.dumps({"type": "array", "items": {"type": "integer"}, "uniqueItems": True})
    with pytest.raises(DiagnosticError):
        write_guard(tmp_path, ir.JsonConstraint("u.json", bad))
    assert not (tmp_path / GUARD_DIR).exists()


# Runs in a fresh interpreter where `import steerc` fails: the checkpoint must not need it.
_LOAD_AND_GENERATE = BLOCK_STEERC + r"""
import json
res = {}
for d in sys.argv[1:]:
    model = tf.AutoModelForCausalLM.from_pretrained(d, trust_remote_code=True)
    tok = tf.AutoTokenizer.from_pretrained(d)
    ids = tok("Hi", return_tensors="pt").input_ids
    torch.manual_seed(0)
    out = model.generate(ids, max_new_tokens=40, do_sample=True, num_return_sequences=8)
    res[d] = {"texts": [tok.decode(r[ids.shape[1]:], skip_special_tokens=True) for r in out],
              "truncated": model.json_guard_truncated,
              "plain": type(tf.AutoModelForCausalLM.from_pretrained(d).generate).__name__}
print(json.dumps(res))
"""


def test_checkpoint_generates_valid_json_without_steerc(tmp_path):
    dirs = {"schema": tmp_path / "schema", "any": tmp_path / "any"}
    for kind, d in dirs.items():
        save_tiny("llama", d, max_position_embeddings=256)
        write_guard(d, ir.JsonConstraint(None, None) if kind == "any" else ir.JsonConstraint("t.json", SCHEMA))
    env = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PATH": "/usr/bin:/bin",
           "HF_MODULES_CACHE": str(tmp_path / "modules"), "HF_HOME": str(tmp_path / "hf"),
           "OMP_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, "-c", _LOAD_AND_GENERATE, *map(str, dirs.values())],
                         env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    res = json.loads(run.stdout.strip().splitlines()[-1])
    for kind, d in dirs.items():
        r = res[str(d)]
        assert r["truncated"] == []
        docs = [json.loads(t) for t in r["texts"]]
        assert len(set(r["texts"])) > 1
        for doc in docs:
            if kind == "schema":
                jsonschema.validate(doc, json.loads(SCHEMA))
            else:
                assert isinstance(doc, (dict, list))
        # Without trust_remote_code a llama-typed checkpoint silently runs the stock generate:
        # the compiler gives guarded checkpoints a custom model_type so that load fails instead.
        assert r["plain"] == "method"


def test_missing_guard_config_fails_closed(tmp_path, tok):
    import transformers as tf

    save_tiny("llama", tmp_path, max_position_embeddings=256)
    write_guard(tmp_path, ir.JsonConstraint(None, None))
    model = tf.AutoModelForCausalLM.from_pretrained(tmp_path, trust_remote_code=True)
    (tmp_path / GUARD_DIR / "guard.json").unlink()
    ids = tok("Hi", return_tensors="pt").input_ids
    with pytest.raises(FileNotFoundError, match="refusing to generate"):
        model.generate(ids, max_new_tokens=5)
