"""`--target lora`: the adapter PEFT loads (in a fresh interpreter where `import steerc`
fails) gives the logits of the `--target weights` checkpoint of the same program, unmerged
and merged, on several families (tied and untied heads, GPT-2's Conv1D writers); what PEFT
cannot carry is refused at the rule."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

pytest.importorskip("peft")

from steerc.compiler.build_checkpoint import compile_program  # noqa: E402
from steerc.compiler.ir import JsonConstraint, Op, Program  # noqa: E402
from steerc.diagnostics import DiagnosticError, Span  # noqa: E402
from tests.emit.conftest import P1, Bases, _iv, interventions  # noqa: E402
from tests.shipped import NO_STEERC, run_without_steerc  # noqa: E402

SCRIPT = NO_STEERC + r'''
import json, warnings
warnings.filterwarnings("ignore")
import torch
import transformers as tf
from peft import PeftModel
cases = torch.load(sys.argv[2])
for c in cases:
    base = tf.AutoModelForCausalLM.from_pretrained(c["base"]).eval()
    model = PeftModel.from_pretrained(base, c["lora"]).eval()
    assert "steerc" not in sys.modules
    with torch.no_grad():
        diff = (model(c["ids"]).logits - c["ref"]).abs().max().item()
        assert diff <= 1e-4, (c["lora"], "unmerged", diff)
        if c["merge"]:
            merged = model.merge_and_unload()
            mdiff = (merged(c["ids"]).logits - c["ref"]).abs().max().item()
            assert mdiff <= 1e-4, (c["lora"], "merged", mdiff)
    print("ok", c["lora"], diff)
'''

# (family case, scenario): ablations on untied and tied heads, Conv1D writers (GPT-2 with
# zero writer biases: a biased writer is E414), embedding adds, bias adds (LoRA bias).
CASES = (("llama", "ablate"), ("llama_tied", "ablate"), ("llama_tied", "add_embed"),
         ("qwen2", "ablate"), ("phi3", "ablate"), ("mistral", "ablate"), ("qwen3", "ablate"), ("gpt2_nobias", "ablate"),
         ("gpt2", "add_embed"), ("gpt2", "add_bias"), ("llama", "add_bias"),
         ("qwen2_moe", "add_embed"))


class LoraBases(Bases):
    """emit's tiny bases, plus a GPT-2 whose writer biases are zero and a bias-only program."""

    def base(self, case: str, **kw):
        if case != "gpt2_nobias":
            return super().base(case, **kw)
        d, model = super().base("gpt2")
        out = self.root / "bases" / "gpt2_nobias"
        if not out.exists():
            with torch.no_grad():
                for L in range(model.config.n_layer):
                    for m in (model.transformer.h[L].attn.c_proj, model.transformer.h[L].mlp.c_proj):
                        m.bias.zero_()
            model.save_pretrained(out)
        return out, model

    def program(self, case: str, scenario: str, **kw) -> Program:
        d, _ = self.base(case, **kw)
        ivs = (interventions("add")[0::2] if scenario == "add_bias"  # resid_post adds only
               else interventions(scenario))
        return Program(f"{scenario}.steer", str(d), (self.binding,), None, ivs)


@pytest.fixture(scope="module")
def bases(tmp_path_factory, monkeypatch_module):
    root = tmp_path_factory.mktemp("lora")
    monkeypatch_module.setenv("STEERC_CACHE_DIR", str(root / "cache"))
    return LoraBases(root)


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


def _weights_logits(out: Path, ids: torch.Tensor) -> torch.Tensor:
    import transformers as tf

    model = tf.AutoModelForCausalLM.from_pretrained(out).eval()
    with torch.no_grad():
        return model(ids).logits


def test_peft_loads_the_adapter_without_steerc(bases, tmp_path):
    ids = torch.randint(4, 100, (2, 9), generator=torch.Generator().manual_seed(5))
    cases = []
    for case, scenario in CASES:
        wout, _ = bases.compile(case, scenario, "weights")
        lout, res = bases.compile(case, scenario, "lora")
        assert res.plan.target == "lora" and res.artifacts.config is None
        assert sorted(os.listdir(lout)) == ["README.md", "adapter_config.json",
                                            "adapter_model.safetensors", "steerc-manifest.json"]
        cfg = json.loads((lout / "adapter_config.json").read_text())
        assert cfg["lora_alpha"] == cfg["r"]  # scaling 1: the deltas are exact as stored
        assert cfg["fan_in_fan_out"] == any(m.endswith("c_proj") for m in cfg["target_modules"])
        # the head keeps the original embedding where the base ties it and an embedding changes
        assert (cfg["modules_to_save"] == ["lm_head"]) == res.plan.untie
        assert cfg["lora_bias"] == (scenario == "add_bias")
        merge = not (scenario == "add_bias" and case == "llama")  # no base bias: PEFT refuses
        cases.append({"base": str(bases.base(case)[0]), "lora": str(lout), "ids": ids,
                      "ref": _weights_logits(wout, ids), "merge": merge})
    run_without_steerc(tmp_path, SCRIPT, cases, HF_HUB_OFFLINE="1")


def test_adapter_is_deterministic_and_honest(bases):
    out, res = bases.compile("llama", "ablate", "lora")
    twin = out.parent / "again"  # same depth: the recorded relative paths are equal too
    again = compile_program(bases.program("llama", "ablate"), twin, target="lora",
                            saes={"r": bases.sae})
    for name in ("adapter_model.safetensors", "adapter_config.json", "steerc-manifest.json", "README.md"):
        assert (out / name).read_bytes() == (twin / name).read_bytes(), name
    manifest = json.loads((out / "steerc-manifest.json").read_text())
    assert manifest["target"] == "lora" and manifest["shards"] == {"adapter_model.safetensors": "new"}
    assert set(manifest["tensors"]) == set(again.artifacts.tensors.hashes)
    card = (out / "README.md").read_text()
    assert "library_name: peft" in card and "PeftModel.from_pretrained" in card
    assert "trust_remote_code" not in card
    cfg = json.loads((out / "adapter_config.json").read_text())
    assert not os.path.isabs(cfg["base_model_name_or_path"])


def _span_line(e) -> set:
    return {(d.code, d.span.line if d.span else None) for d in e.value.diagnostics}


def _with_spans(ivs):
    import dataclasses

    return tuple(dataclasses.replace(iv, span=Span("x.steer", 5 + k, 1, 3)) for k, iv in enumerate(ivs))


def test_refusals_name_the_rule_and_write_nothing(bases, tmp_path):
    d, _ = bases.base("gpt2")
    cases = {
        # a hook lowering
        "E412": (_iv(Op.SET, 3, 2.0, P1, "clamp r[3] to 2"),),
        # GPT-2's biased writers need LoRA biases, beside an embedding LoRA
        "E414": interventions("ablate")[:1],
    }
    for code, ivs in cases.items():
        program = Program("x.steer", str(d), (bases.binding,), None, _with_spans(ivs))
        with pytest.raises(DiagnosticError) as e:
            compile_program(program, tmp_path / code, target="lora", saes={"r": bases.sae})
        assert _span_line(e) == {(code, 5)}, e.value.diagnostics
        assert not (tmp_path / code).exists()
    guarded = Program("x.steer", str(d), (bases.binding,), None, (),
                      json=JsonConstraint(None, None, Span("x.steer", 7, 1, 6)))
    with pytest.raises(DiagnosticError) as e:  # the decode-time guard is code
        compile_program(guarded, tmp_path / "json", target="lora", saes={"r": bases.sae})
    assert _span_line(e) == {("E413", 7)}
    assert not (tmp_path / "json").exists()
    moe, _ = bases.base("qwen2_moe")  # fused experts in transformers: no module to wrap
    program = Program("x.steer", str(moe), (bases.binding,), None, _with_spans(interventions("ablate")[:1]))
    with pytest.raises(DiagnosticError) as e:
        compile_program(program, tmp_path / "moe", target="lora", saes={"r": bases.sae})
    assert _span_line(e) == {("E415", 5)}
    assert "--target weights" in e.value.diagnostics[0].hint
    assert not (tmp_path / "moe").exists()
