"""`--target lora`: exact weight edits as a PEFT LoRA adapter (one base model, many variants).

Every edit the `weights` target makes is low rank, so it is a LoRA with `lora_alpha = r`
(scaling 1) that reproduces the `weights` output exactly (d = d_model, Q [d, r] the
orthonormal basis of every `ablate ... everywhere` direction, `weight_plan.edit_terms`):

    writer W [d, in] (Linear):    W - Q (Q^T W)       lora_A = Q^T W      [r, in]
    writer W [in, d] (GPT-2 Conv1D, fan_in_fan_out):  lora_A = (W Q)^T    [r, in]
                                                      lora_B = -Q         [d, r]
    embedding E [V, d]:           E - (E Q) Q^T       lora_embedding_A = (E Q)^T, lora_embedding_B = -Q
    add a at resid_pre 0:         E + 1 a^T           one more rank: A row of ones, B column P a
    writer bias b (+ an add a):   P (b + a)           lora_B.bias = a - Q Q^T (b + a)  (lora_bias)

with P = I - Q Q^T. Columns a module does not use are zero (one rank for every module, as
vLLM wants). Tensors are fp32 (PEFT computes adapters in fp32 anyway).

What PEFT cannot carry is refused, never approximated: hook lowerings (E412), `enforce json`
(E413), a LoRA bias in an adapter that also edits an embedding (E414: PEFT's `lora_bias` is
one flag per adapter and its embedding layers reject it), a tensor that is not the weight
of a Linear/Conv1D/Embedding module in transformers' model (E415: Qwen2-MoE's fused experts).
A tied head is saved whole as `modules_to_save` (the original embedding, as the `weights`
target writes it): PEFT's merge of an embedding LoRA writes into the shared tensor, so
without it `merge_and_unload()` would also change the head.
"""

from __future__ import annotations

from pathlib import Path

from steerc.diagnostics import Diagnostic, DiagnosticError
from steerc.targets.base import Artifacts, Job, Refusal
from steerc.targets.engines import LLAMACPP, TGI, TRANSFORMERS, VLLM, EngineSupport

ADAPTER_FILE = "adapter_model.safetensors"
CONFIG_FILE = "adapter_config.json"
PREFIX = "base_model.model."  # PEFT's key prefix: PeftModel -> LoraModel -> the CausalLM


class LoraTarget:
    name = "lora"
    summary = ("`ablate ... everywhere` and folded `steer` adds as a PEFT LoRA adapter (exact "
               "low-rank deltas; PeftModel.from_pretrained(base, OUT))")
    expresses = "a LoRA adapter"
    runs_hooks = False
    library_name = "peft"  # the model card's Hub metadata
    engines = (
        EngineSupport(TRANSFORMERS + " + PEFT", True,
                      "`PeftModel.from_pretrained(base, PATH)`, or `merge_and_unload()` (a bias add "
                      "into a base without that bias does not merge)",
                      "steerc's tests load each adapter with PEFT in an interpreter without steerc: "
                      "logits equal the weights target's"),
        EngineSupport(VLLM, False, "untested: the adapter may use `lora_bias`, embedding LoRA and "
                      "`modules_to_save`, which vLLM's LoRA loader may refuse; use --target weights",
                      "not run by steerc"),
        EngineSupport(LLAMACPP, False, "untested (llama.cpp's LoRA path mishandles a tied head); use "
                      "--target weights and convert", "not run by steerc"),
        EngineSupport(TGI, False, "untested; use --target weights", "not run by steerc"),
    )
    loads_as = "a PEFT LoRA adapter: PeftModel.from_pretrained(base_model, OUT)"  # compile's last line

    def refusal(self, lowering) -> Refusal | None:
        if lowering.kind == "hook":
            return Refusal("E412", lowering.reason + "; a LoRA adapter holds only weight deltas",
                           "use --target hooks (or auto) to compile it as a hook module")
        return None

    def program_refusals(self, program) -> list[Diagnostic]:
        if program.json is None:
            return []
        return [Diagnostic("E413", "`enforce json` needs a decode-time guard (custom_generate "
                           "code), which a LoRA adapter cannot carry", program.json.span,
                           "use --target hooks (or auto)")]

    def emit(self, job: Job, out: Path) -> Artifacts:
        from steerc.targets.lora_tensors import adapter_tensors

        made = adapter_tensors(job)
        _check_modules(job, made)
        tensors = _write(job, out, made)
        _write_config(job, out, made)
        return Artifacts(None, tensors, made.records)

    def card_sections(self, program, plan, manifest: dict) -> list[str]:
        """The model card's "what it is" and "How to load" for an adapter (no base files
        ship with it). What the adapter holds is read back from the manifest's edits."""
        base = program.model_source.repo if program.model_source else "BASE"
        edited = [e["tensor"] for e in manifest["edits"]]
        biased = any(t.endswith(".bias") for t in edited)
        lines = [f"This is a PEFT LoRA adapter (`{CONFIG_FILE}`, `{ADAPTER_FILE}`) that changes "
                 f"{len(edited)} base tensors with exact low-rank deltas; the base model is not in this "
                 "directory.", "",
                 "## How to load", "", "```python",
                 "from peft import PeftModel",
                 "from transformers import AutoModelForCausalLM, AutoTokenizer", "",
                 f'base = AutoModelForCausalLM.from_pretrained("{base}")',
                 f'tok = AutoTokenizer.from_pretrained("{base}")',
                 'model = PeftModel.from_pretrained(base, "PATH")', "```", "",
                 "Its logits equal those of the `--target weights` checkpoint of the same spec "
                 "(fp32, tested with `peft` and no steerc installed)."]
        if biased:
            lines += ["", "It uses LoRA biases (`lora_bias`): `merge_and_unload()` works only "
                      "where every adapted base module has a bias (PEFT raises otherwise), and "
                      "an engine without LoRA-bias support cannot load it."]
        else:
            lines += ["", "`model.merge_and_unload()` gives the same logits."]
        if plan.untie:
            lines += ["", "The base ties its LM head to the token embedding, which the adapter "
                      "edits; the adapter therefore carries the head as the original embedding "
                      "(`modules_to_save`), so the head stays right once merged. An engine that "
                      "ignores `modules_to_save` would run a wrong head."]
        return lines + [""]


def _module(key: str) -> str:
    return key.rsplit(".", 1)[0]


def _check_modules(job: Job, made) -> None:
    """E415 unless every edited tensor is the weight of a module PEFT's LoRA wraps, in the
    model transformers builds for this config (on the meta device: no memory, no weights)."""
    import torch
    from transformers import AutoModelForCausalLM
    from transformers.pytorch_utils import Conv1D

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(job.base.config)
    kinds = {"linear": torch.nn.Linear, "conv1d": Conv1D, "embedding": torch.nn.Embedding}
    bad: dict[str, str] = {}
    for key, kind in sorted(made.kinds.items()):
        try:
            m = model.get_submodule(_module(key))
        except AttributeError:
            bad[key] = "no such module"
            continue
        if type(m) is not kinds[kind]:
            bad[key] = f"a {type(m).__name__}, not {kinds[kind].__name__}"
    if bad:
        key, why = next(iter(bad.items()))
        raise DiagnosticError(made.diagnostics(
            "E415", set(bad), f"transformers' {job.base.adapter.name} model has no LoRA-able module "
            f"for {len(bad)} tensor(s) the edit writes ('{key}': {why}); PEFT's LoRA wraps "
            "Linear, Conv1D and Embedding modules", "use --target weights"))


def _write(job: Job, out: Path, made):
    """adapter_model.safetensors through steerc's shard writer (our header, hashed)."""
    from steerc.checkpoint.output import TensorOutput
    from steerc.checkpoint.writer import Entry, ShardWriter, run_tasks

    entries = [Entry(PREFIX + n, dt, shape, produce) for n, (dt, shape, produce) in sorted(made.tensors.items())]
    with ShardWriter(out / ADAPTER_FILE, entries, job.base.checkpoint) as w:
        written = w.finish(run_tasks(w.tasks, None))
    return TensorOutput(hashes=dict(written.tensors), files={ADAPTER_FILE: written.digest},
                        weight_map={e.name: ADAPTER_FILE for e in entries},
                        shards={ADAPTER_FILE: "new"})


def _base_name(program, out: Path) -> str:
    """The base as PEFT records it: the Hub repo, else its path relative to the output (the
    temp dir sits beside the final one, so the relative path is the same)."""
    if program.model_source is not None:
        return program.model_source.repo
    from steerc.compiler.portable import relative_to

    return relative_to(program.model, out)


def _write_config(job: Job, out: Path, made) -> None:
    from steerc.checkpoint.output import write_json

    cfg = {
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "base_model_name_or_path": _base_name(job.program, out),
        "r": made.rank,
        "lora_alpha": made.rank,  # scaling = alpha / r = 1: the deltas are exact as stored
        "use_rslora": False,
        "use_dora": False,
        "lora_dropout": 0.0,
        "bias": "none",
        "lora_bias": made.lora_bias,
        "fan_in_fan_out": made.fan_in_fan_out,
        "target_modules": sorted({_module(k) for k in made.kinds}),
        "modules_to_save": made.modules_to_save or None,
        "init_lora_weights": True,
        "inference_mode": True,
    }
    write_json(out / CONFIG_FILE, cfg)
