"""The JSON guard survives a downstream `save_pretrained`: a compiled `enforce json schema`
checkpoint, loaded and re-saved with plain transformers in an interpreter where `import
steerc` fails, still generates only schema-valid JSON when the copy is loaded; a copy that
lost `custom_generate/` (or a model built with `from_config`) refuses to generate instead of
generating unguarded."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from steerc.guard import CONFIG_KEY
from tests.shipped import BLOCK_STEERC

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "demo"
SPEC = ROOT / "specs" / "examples" / "json_schema.steer"
SCHEMA = ROOT / "specs" / "examples" / "schemas" / "ticket.json"
pytestmark = pytest.mark.skipif(not (DEMO / "model" / "config.json").exists(), reason="demo absent")


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    from steerc.compiler.build_checkpoint import compile_program
    from steerc.compiler.load import load_program

    out = tmp_path_factory.mktemp("guarded") / "ticket-bot"
    compile_program(load_program(SPEC), out)
    return out


def test_the_shipped_class_and_steerc_name_the_same_config_key():
    src = (ROOT / "steerc" / "runtime" / "steered_model.py").read_text(encoding="utf-8")
    assert re.findall(r'^GUARD_KEY = "([a-z_]+)"', src, re.M) == [CONFIG_KEY]


def test_only_guarded_checkpoints_carry_the_key(compiled, tmp_path):
    from steerc.compiler.build_checkpoint import compile_program
    from steerc.compiler.load import load_program

    assert json.loads((compiled / "config.json").read_text())[CONFIG_KEY] is True
    plain = compile_program(load_program(ROOT / "specs/examples/no_code.steer"), tmp_path / "nc").out
    assert CONFIG_KEY not in json.loads((plain / "config.json").read_text())


# A fresh interpreter where `import steerc` fails: only transformers, torch and the checkpoint.
_SCRIPT = BLOCK_STEERC + r"""
import json, os, shutil
out, work = sys.argv[1], sys.argv[2]
tok = tf.AutoTokenizer.from_pretrained(out, trust_remote_code=True)
ids = tok("Open a ticket for the broken printer:", return_tensors="pt").input_ids

def sample(model):
    torch.manual_seed(0)
    seqs = model.generate(ids, max_new_tokens=48, do_sample=True, num_return_sequences=6, tokenizer=tok)
    return [tok.decode(s[ids.shape[1]:], skip_special_tokens=True) for s in seqs]

def refusal(model):
    try:
        model.generate(ids, max_new_tokens=4)
    except RuntimeError as e:
        return str(e)
    return None

res = {}
model = tf.AutoModelForCausalLM.from_pretrained(out, trust_remote_code=True)
res["original"] = sample(model)
copy, copy2 = os.path.join(work, "copy"), os.path.join(work, "copy2")
model.save_pretrained(copy)
again = tf.AutoModelForCausalLM.from_pretrained(copy, trust_remote_code=True)
res["copy"] = sample(again)
again.save_pretrained(copy2)  # a copy of a copy
res["copy2"] = sample(tf.AutoModelForCausalLM.from_pretrained(copy2, trust_remote_code=True))
res["files"] = {n: open(os.path.join(copy, "custom_generate", n), "rb").read().hex()
                for n in sorted(os.listdir(os.path.join(copy, "custom_generate")))}
res["steering_kept"] = bool(torch.equal(
    model(ids).logits, tf.AutoModelForCausalLM.from_pretrained(copy, trust_remote_code=True)(ids).logits))
shutil.rmtree(os.path.join(copy, "custom_generate"))
res["lost_folder"] = refusal(tf.AutoModelForCausalLM.from_pretrained(copy, trust_remote_code=True))
cfg = tf.AutoConfig.from_pretrained(out, trust_remote_code=True)
res["from_config"] = refusal(tf.AutoModelForCausalLM.from_config(cfg, trust_remote_code=True))
print(json.dumps(res))
"""


def test_guard_survives_save_pretrained_without_steerc(compiled, tmp_path):
    env = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PATH": "/usr/bin:/bin",
           "HF_MODULES_CACHE": str(tmp_path / "modules"), "HF_HOME": str(tmp_path / "hf"),
           "OMP_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, "-c", _SCRIPT, str(compiled), str(tmp_path)], env=env,
                         cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    res = json.loads(run.stdout.strip().splitlines()[-1])
    schema = json.loads(SCHEMA.read_text())
    for which in ("original", "copy", "copy2"):
        for text in res[which]:
            jsonschema.validate(json.loads(text), schema)  # guarded: every sample is a ticket
    assert res["copy"] == res["original"]
    guard_dir = compiled / "custom_generate"
    assert res["files"] == {p.name: p.read_bytes().hex() for p in sorted(guard_dir.iterdir())}
    assert res["steering_kept"]
    for refused in (res["lost_folder"], res["from_config"]):
        assert refused is not None and "refuses to generate unguarded" in refused
