"""A base checkpoint can ship Python code (`auto_map` in config.json / tokenizer_config.json).
steerc never runs it and never asks: every command that reads a base (check, explain,
compile, trace, verify) runs here as a real process with "y" on stdin, the answer that used
to make transformers import the code. The code would write a marker file: it must not appear."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.hostile.world import FIX, ROOT, write_spec
from tests.tinymodels import save_tiny

EVIL = '''import pathlib
pathlib.Path({marker!r}).write_text("base model code ran")
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast


class EvilConfig(LlamaConfig):
    model_type = "evilnet"


class EvilModel(LlamaForCausalLM):
    config_class = EvilConfig


class EvilTokenizer(PreTrainedTokenizerFast):
    pass
'''
PROMPT_WORDS = ("[y/N]", "Do you wish to run the custom code")


def _with_code(d: Path, marker: Path, model_type: str | None) -> Path:
    """A tiny Llama whose config and tokenizer name `evil.py` (writes `marker` on import);
    `model_type` replaces the config's (an unknown one can only load through the code)."""
    save_tiny("llama", d, hidden_size=16, intermediate_size=32, head_dim=8)
    (d / "evil.py").write_text(EVIL.format(marker=str(marker)))
    cfg = json.loads((d / "config.json").read_text())
    cfg["auto_map"] = {"AutoConfig": "evil.EvilConfig", "AutoModelForCausalLM": "evil.EvilModel"}
    if model_type:
        cfg["model_type"] = model_type
    (d / "config.json").write_text(json.dumps(cfg))
    tcfg = json.loads((d / "tokenizer_config.json").read_text())
    tcfg["auto_map"] = {"AutoTokenizer": [None, "evil.EvilTokenizer"]}
    (d / "tokenizer_config.json").write_text(json.dumps(tcfg))
    return d


def steerc(args: list[str], tmp: Path) -> tuple[int, str]:
    """`python -m steerc ARGS` in a fresh process, "y" answered on stdin."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_MODULES_CACHE=str(tmp / "hf-modules"),
               STEERC_CACHE_DIR=str(tmp / "cache"), PYTHONPATH=str(ROOT))
    p = subprocess.run([sys.executable, "-m", "steerc", *args], input="y\ny\ny\n", text=True,
                       capture_output=True, env=env, cwd=tmp, timeout=300)
    out = p.stdout + p.stderr
    assert "Traceback" not in out and "internal error" not in out, out[-2000:]
    assert not any(w in out for w in PROMPT_WORDS), out[-2000:]
    return p.returncode, out


@pytest.fixture(scope="module")
def worlds(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("remote-code")
    marker = tmp / "MARKER"
    known = _with_code(tmp / "known", marker, None)         # llama: loads without the code
    unknown = _with_code(tmp / "unknown", marker, "evilnet")  # only the code knows evilnet
    return tmp, marker, known, unknown


def test_a_base_that_needs_its_code_is_refused_and_never_run(worlds):
    tmp, marker, _, unknown = worlds
    spec = write_spec(tmp / "u.steer", unknown, FIX / "sae_res")
    sae = f"res2={FIX / 'sae_res'}"
    # check, explain and compile refuse the architecture from config.json (the validation
    # pass: no adapter for it, E490) before anything could load it; trace loads the model
    # itself and refuses the code (E640)
    for args in (["check", str(spec)], ["explain", str(spec)],
                 ["compile", str(spec), "-o", str(tmp / "u-out")]):
        rc, out = steerc(args, tmp)
        assert rc == 1 and "error[E490]" in out and "evilnet" in out, (args, out)
        assert not (tmp / "u-out").exists()
    rc, out = steerc(["trace", "def f(x):", "--model", str(unknown), "--sae", sae], tmp)
    assert rc == 1 and "error[E640]" in out and "auto_map" in out, out
    assert not marker.exists(), "the base model's code ran"


def test_code_beside_a_known_model_type_is_ignored_and_not_shipped(worlds):
    tmp, marker, known, unknown = worlds
    spec = write_spec(tmp / "k.steer", known, FIX / "sae_res")
    out_dir = tmp / "k-out"
    rc, out = steerc(["compile", str(spec), "-o", str(out_dir)], tmp)
    assert rc == 0, out
    # the output names and ships no base code: a user who trusts it runs only steerc's
    assert not list(out_dir.glob("*.py"))
    assert "auto_map" not in json.loads((out_dir / "config.json").read_text())
    assert "auto_map" not in json.loads((out_dir / "tokenizer_config.json").read_text())
    rc, out = steerc(["verify", str(out_dir)], tmp)
    # 1 only for a failed expectation or feature verdict (E540: the fixture SAE is random)
    assert rc in (0, 1) and not re.search(r"error\[E(?!540)", out), out
    rc, out = steerc(["trace", "def f(x):", "--model", str(known), "--sae", f"res2={FIX / 'sae_res'}"], tmp)
    assert rc == 0, out
    # verify against a base that needs its code: refused, not run
    rc, out = steerc(["verify", str(out_dir), "--base-model", str(unknown)], tmp)
    assert rc == 1 and "error[E640]" in out, out
    assert not marker.exists(), "the base model's code ran"


def test_every_checkpoint_load_goes_through_the_no_code_helper():
    """Any `X.from_pretrained(...)` call in steerc outside steerc/hfload.py could load a
    base's code (or prompt for it): only the helper may call transformers' loaders. The
    guard template and the checkpoint's model class are exempt: code shipped inside a
    checkpoint that runs downstream."""
    import ast

    exempt = {"hfload.py", "shipped_generate.py", "steered_model.py"}  # shipped: run downstream
    offenders = []
    for path in sorted((ROOT / "steerc").rglob("*.py")):
        if path.name in exempt:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and node.func.attr == "from_pretrained":
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not offenders, offenders
