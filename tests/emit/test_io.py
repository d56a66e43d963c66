"""Emit mechanics: sharded input (untouched shards hard-linked), bf16 kept, tied heads
untied, byte determinism, atomic output (--force, failure leaves nothing), manifest schema."""

from __future__ import annotations

import json
import os
from pathlib import Path

import jsonschema
import pytest
import torch
import transformers as tf

from steerc.compiler import edits
from steerc.compiler.build_checkpoint import compile_program
from steerc.files.hashing import sha256_uncached
from steerc.checkpoint.digest import file_shard_digest, tensor_hash
from steerc.checkpoint.layout import INDEX, read_header
from steerc.checkpoint.reader import open_checkpoint
from steerc.diagnostics import DiagnosticError
from steerc.runtime.apply import apply

ROOT = Path(__file__).resolve().parents[2]


def _files(d: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(d.iterdir())}


def test_sharded_input_links_untouched_shards(bases, tmp_path):
    base_dir, model = bases.base("llama", sharded=True)
    base = open_checkpoint(base_dir)
    assert base.sharded and len(base.files) > 2
    prog = bases.program("llama", "add", sharded=True)
    res = compile_program(prog, tmp_path / "out", saes={"r": bases.sae})
    out = tmp_path / "out"
    kinds = res.manifest["shards"]
    # new tensors (biases) go to one new shard; only shards holding an edited base tensor
    # (the embedding, for the add at resid_pre 0) are rewritten, all others linked
    edited = {base.info(e["tensor"]).file for e in res.manifest["edits"] if base.has(e["tensor"])}
    assert {f for f, k in kinds.items() if k == "rewritten"} == edited
    assert list(kinds.values()).count("new") == 1 and "link" in kinds.values()
    for f, how in kinds.items():
        if how == "link":
            assert os.stat(out / f).st_ino == os.stat(base_dir / f).st_ino
    wm = json.loads((out / INDEX).read_text())["weight_map"]
    assert set(wm) >= set(base.tensors) and "model.layers.1.mlp.down_proj.bias" in wm
    got = tf.AutoModelForCausalLM.from_pretrained(out).eval()
    ids = torch.randint(4, 100, (2, 8))
    with torch.no_grad(), apply(model, prog, {"r": bases.sae}):
        ref = model(ids).logits
    with torch.no_grad():
        assert (got(ids).logits - ref).abs().max().item() <= 1e-4


def test_bf16_dtype_kept_and_edit_is_fp32_math(bases, tmp_path):
    base_dir, _ = bases.base("llama", dtype=torch.bfloat16)
    prog = bases.program("llama", "add_ablate", dtype=torch.bfloat16)
    compile_program(prog, tmp_path / "out", saes={"r": bases.sae})
    out, base = open_checkpoint(tmp_path / "out"), open_checkpoint(base_dir)
    assert {t.dtype for t in out.tensors.values()} == {"BF16"}
    key = "model.layers.0.self_attn.o_proj.weight"
    Q = edits.orthonormal_basis([bases.sae.decoder_rows([7])[0]])
    want = edits.finish(edits.project_writer(base.tensor(key), Q, "linear"), torch.bfloat16)
    assert torch.equal(out.tensor(key), want)
    key = "model.layers.0.input_layernorm.weight"  # untouched: same bytes
    assert out.raw(key) == base.raw(key)


def test_tied_head_is_untied_with_the_original_embedding(bases):
    out_dir, res = bases.compile("llama_tied", "add_ablate")
    base_dir, _ = bases.base("llama_tied")
    base, out = open_checkpoint(base_dir), open_checkpoint(out_dir)
    assert res.plan.untie and not base.has("lm_head.weight")
    assert out.raw("lm_head.weight") == base.raw("model.embed_tokens.weight")
    assert out.raw("model.embed_tokens.weight") != base.raw("model.embed_tokens.weight")
    assert json.loads((out_dir / "config.json").read_text())["tie_word_embeddings"] is False


@pytest.mark.parametrize("case,scenario", [("gpt2", "add_ablate"), ("qwen2", "hooks")])
def test_compile_is_byte_deterministic(bases, tmp_path, case, scenario):
    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        compile_program(bases.program(case, scenario), d, saes={"r": bases.sae})
    fa, fb = _files(a), _files(b)
    assert fa.keys() == fb.keys() and fa == fb
    for name in fa:
        if name.endswith(".safetensors"):
            header, _ = read_header(a / name)
            assert header.get("__metadata__", {"format": "pt"}) == {"format": "pt"}


def test_existing_output_needs_force(bases, tmp_path):
    prog = bases.program("gpt2", "add")
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(DiagnosticError) as ei:
        compile_program(prog, out, saes={"r": bases.sae})
    assert ei.value.diagnostics[0].code == "E401" and "--force" in ei.value.diagnostics[0].hint
    assert (out / "keep.txt").exists()
    with pytest.raises(DiagnosticError) as ei:  # not a checkpoint steerc wrote: kept even so
        compile_program(prog, out, force=True, saes={"r": bases.sae})
    assert ei.value.diagnostics[0].code == "E423" and (out / "keep.txt").exists()
    (out / "keep.txt").unlink()
    compile_program(prog, out, force=True, saes={"r": bases.sae})
    compile_program(prog, out, force=True, saes={"r": bases.sae})  # over its own checkpoint
    assert (out / "steerc-manifest.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_failure_mid_compile_leaves_nothing(bases, tmp_path, monkeypatch):
    prog = bases.program("gpt2", "add_ablate")
    calls = {"n": 0}
    real = edits.finish

    def flaky(t, dtype):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("disk full")
        return real(t, dtype)

    monkeypatch.setattr(edits, "finish", flaky)
    with pytest.raises(RuntimeError):
        compile_program(prog, tmp_path / "new", saes={"r": bases.sae})
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "x").write_text("old")
    (tmp_path / "old" / "steerc-manifest.json").write_text('{"schema_version": 1, "compiler": {"name": "steerc"}}')
    calls["n"] = 0
    with pytest.raises(RuntimeError):
        compile_program(prog, tmp_path / "old", force=True, saes={"r": bases.sae})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old"]
    assert (tmp_path / "old" / "x").read_text() == "old"
    assert sorted(p.name for p in (tmp_path / "old").iterdir()) == ["steerc-manifest.json", "x"]


@pytest.mark.parametrize("scenario", ["add_ablate", "hooks"])
def test_manifest_matches_schema_and_files(bases, scenario):
    out, res = bases.compile("llama", scenario)
    m = json.loads((out / "steerc-manifest.json").read_text())
    schema = json.loads((ROOT / "specs/schemas/manifest.schema.json").read_text())
    jsonschema.validate(m, schema)
    ck = open_checkpoint(out)
    assert {e["tensor"] for e in m["edits"]} <= set(m["tensors"]) <= set(ck.tensors)
    assert set(m["files"]) == set(ck.files)
    for f, sha in m["files"].items():  # hashed while writing == hashed from disk
        how = m["shards"][f]
        assert sha == (sha256_uncached(out / f) if how in ("link", "copy") else file_shard_digest(out / f)), f
    for n, sha in m["tensors"].items():
        info = ck.info(n)
        assert sha == tensor_hash(n, info.dtype, info.shape, ck.raw(n)), n
    assert all(e["before_sha256"] != e["after_sha256"] for e in m["edits"])
    card = (out / "README.md").read_text()
    if scenario == "hooks":
        assert m["target"] == "hooks" and "trust_remote_code=True" in card
        assert set(m["code_files"]) == {"configuration_steerc.py", "modeling_steerc.py", "steered_model.py"}
        shipped = (out / "modeling_steerc.py").read_bytes()
        assert shipped == (ROOT / "steerc/runtime/modeling_steerc.py").read_bytes()
        cfg = json.loads((out / "config.json").read_text())
        assert cfg["model_type"] == "steerc_llama" and "AutoConfig" in cfg["auto_map"]
    else:
        assert m["target"] == "weights" and "trust_remote_code" not in card
        assert not list(out.glob("*.py"))
