"""`enforce json` end to end on the demo model: a compiled `enforce json schema` checkpoint,
loaded the way a downstream user loads it, only generates schema-valid JSON; `steerc check`
rejects schemas the guard cannot enforce; the model card says where the guard runs;
`steerc explain` lists the features the rule resolved to.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import jsonschema
import pytest
import torch

from steerc.cli import main

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "demo"
SPEC = ROOT / "specs" / "examples" / "json_schema.steer"
SCHEMA = ROOT / "specs" / "examples" / "schemas" / "ticket.json"
PROMPTS = ROOT / "bench" / "prompts" / "json_prompts.jsonl"
REQUIRED = (DEMO / "model" / "config.json", DEMO / "saes" / "blocks.2.hook_resid_post" / "cfg.json",
            DEMO / "catalogue.json")

pytestmark = pytest.mark.skipif(not all(p.exists() for p in REQUIRED),
                                reason="demo artefacts absent (demo/model, demo/saes, demo/catalogue.json)")


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    """(program, CompileResult) of specs/examples/json_schema.steer, compiled once."""
    from steerc.compiler.build_checkpoint import compile_program
    from steerc.compiler.load import load_program

    out = tmp_path_factory.mktemp("json") / "ticket-bot"
    program = load_program(SPEC)
    return program, compile_program(program, out)


def sample_prompts(n: int = 8) -> list[str]:
    """n prompts spread over the bench file (prose, code and JSON-context starts)."""
    rows = [json.loads(line) for line in PROMPTS.read_text(encoding="utf-8").splitlines()]
    step = len(rows) // n
    return [rows[i * step]["prompt"] for i in range(n)]


def test_compiled_schema_checkpoint_only_generates_valid_tickets(compiled):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _, res = compiled
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model = AutoModelForCausalLM.from_pretrained(res.out, trust_remote_code=True).eval()
        tok = AutoTokenizer.from_pretrained(DEMO / "model", padding_side="left")
        prompts = sample_prompts()
        enc = tok(prompts, return_tensors="pt", padding=True)
        torch.manual_seed(0)
        # the checkpoint's own generate (custom_generate/generate.py), unconstrained sampling
        out = model.generate(**enc, do_sample=True, temperature=1.0, top_k=0, max_new_tokens=48)
    finally:
        torch.set_num_threads(n)
    assert model.json_guard_truncated == []
    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text()))
    texts = tok.batch_decode(out[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
    for prompt, text in zip(prompts, texts):
        doc = json.loads(text)  # strict: no raw control characters (see test_guard_strings.py)
        assert validator.is_valid(doc), (prompt, text, [e.message for e in validator.iter_errors(doc)])
    # the guard is what makes them valid: the same weights, sampled without it, are not JSON
    from transformers import GenerationMixin

    torch.manual_seed(0)
    raw = GenerationMixin.generate(model, **enc, do_sample=True, temperature=1.0, top_k=0,
                                   max_new_tokens=48)
    raw_texts = tok.batch_decode(raw[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
    assert sum(_is_json(t) for t in raw_texts) < len(prompts)


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def _check(tmp_path, schema: dict, capsys) -> tuple[int, str]:
    (tmp_path / "s.json").write_text(json.dumps(schema))
    spec = tmp_path / "bad.steer"
    spec.write_text(f'model "{DEMO / "model"}"\nsae res2 = "{DEMO / "saes" / "blocks.2.hook_resid_post"}"\n'
                    f'catalogue "{DEMO / "catalogue.json"}"\n\nenforce json schema "s.json"\n')
    rc = main(["check", str(spec)])
    out = capsys.readouterr()
    return rc, out.err + out.out


@pytest.mark.parametrize("schema,code,word", [
    ({"type": "array", "items": {"type": "string"}, "uniqueItems": True}, "E471", "uniqueItems"),
    ({"type": "object", "properties": {"a": {"$ref": "other.json#/x"}}}, "E471", "external $ref"),
])
def test_check_rejects_unenforceable_schema_at_the_spec_line(tmp_path, capsys, schema, code, word):
    rc, text = _check(tmp_path, schema, capsys)
    assert rc == 1
    assert f"error[{code}]" in text and word in text
    assert "bad.steer:5:21:" in text  # the schema string on the `enforce json schema` line
    assert "Traceback" not in text


def test_xgrammar_verdict_comes_from_compile_then_check_reuses_it(tmp_path, capsys, monkeypatch):
    """xgrammar's own verdict needs `import xgrammar` (torch, seconds), so a cold `check`
    leaves it out; `compile` asks xgrammar, fails at the spec line writing nothing, and
    caches the verdict by the schema's content, so the next `check` reports it too."""
    monkeypatch.setenv("STEERC_CACHE_DIR", str(tmp_path / "cache"))
    schema = {"oneOf": [{"type": "integer"}, {"type": "integer", "minimum": 3}]}
    rc, text = _check(tmp_path, schema, capsys)
    assert rc == 0, text
    assert main(["compile", str(tmp_path / "bad.steer"), "-o", str(tmp_path / "out")]) == 1
    text = capsys.readouterr().err
    assert "error[E471]" in text and "approximate" in text and "bad.steer:5:1:" in text
    assert not (tmp_path / "out").exists()
    rc, text = _check(tmp_path, schema, capsys)
    assert rc == 1 and "error[E471]" in text and "approximate" in text and "bad.steer:5:21:" in text


def test_check_accepts_the_example_schema(tmp_path, capsys):
    rc, text = _check(tmp_path, json.loads(SCHEMA.read_text()), capsys)
    assert rc == 0, text


def test_model_card_says_where_the_guard_runs_and_how_it_is_skipped(compiled):
    from steerc.compiler.ir import JsonConstraint
    from steerc.compiler.modelcard import model_card

    program, res = compiled
    card = (res.out / "README.md").read_text(encoding="utf-8")
    # one row per source rule with its feature count (was one identical row per feature)
    rows = [ln for ln in card.splitlines() if ln.startswith("| `")]
    assert rows == [f'| `enforce json schema "schemas/ticket.json"` | {len(program.interventions)} | '
                    "hook module (exact, runs in forward) | set_activation needs the feature's activation "
                    "a_i(x), which only a hook can compute; scale_activation needs the feature's "
                    "activation a_i(x), which only a hook can compute |"]
    assert 'AutoTokenizer.from_pretrained("PATH", trust_remote_code=True)' in card
    # a hooks checkpoint runs in no serving engine: the card gives no vLLM / llama.cpp recipe
    # for a guard those engines would never load it with
    assert "structured_outputs" not in card and "--json-schema-file" not in card
    assert "JSON matching `custom_generate/schema.json`" in card
    assert "save_pretrained" in card and "does not run when" in card
    assert (res.out / "custom_generate" / "schema.json").read_text() == SCHEMA.read_text()
    # `enforce json format`: any JSON, no schema file
    fmt = dataclasses.replace(program, json=JsonConstraint(None, None, program.json.span))
    card = model_card(fmt, res.plan, res.manifest)
    assert "a JSON object or array" in card and "schema.json" not in card
    # no `enforce json`: no guard section
    plain = dataclasses.replace(program, json=None)
    assert "## JSON guard" not in model_card(plain, res.plan, res.manifest)


def test_explain_summarises_enforce_json_in_one_block(compiled, capsys, monkeypatch):
    """One source line is one summary (was 3,677 lines: one per feature, twice)."""
    program, _ = compiled
    monkeypatch.chdir(ROOT)
    assert main(["explain", str(SPEC.relative_to(ROOT))]) == 0
    out = capsys.readouterr().out
    assert len(out.splitlines()) < 20
    n_set = sum(iv.op.value == "set_activation" for iv in program.interventions)
    n_scale = len(program.interventions) - n_set
    assert f"{len(program.interventions)} features: set_activation = 0 x{n_set}, " \
           f"scale_activation by 2 x{n_scale}" in out
    assert out.count("# enforce json schema") == 2  # the program line and the plan block


def test_explain_features_lists_the_features_enforce_json_resolved_to(compiled, capsys, monkeypatch):
    program, _ = compiled
    monkeypatch.chdir(ROOT)
    assert main(["explain", str(SPEC.relative_to(ROOT)), "--features"]) == 0
    out = capsys.readouterr().out
    ours = [iv for iv in program.interventions if iv.origin.startswith("enforce json")]
    assert len(ours) == len(program.interventions) > 0
    steered = [iv for iv in ours if iv.op.value == "scale_activation"]
    suppressed = [iv for iv in ours if iv.op.value == "set_activation"]
    assert steered and suppressed
    program_part = out.split("plan (")[0]
    lines = [ln for ln in program_part.splitlines() if "# enforce json schema" in ln]
    assert len(lines) == len(ours)
    for iv in steered[:5] + suppressed[:5]:
        assert any(f"res2[{iv.feature.index}]" in ln for ln in lines), iv.feature
    assert "json guard: schema" in out
