"""`--target hooks`: exact weight edits where possible, fused hook modules for the rest.

The checkpoint gets its own `model_type` (`steerc_<base>`) with `auto_map` entries for
AutoConfig and AutoModelForCausalLM pointing at flat files shipped beside the weights:
`configuration_steerc.py` (one line rendered: the base type), `modeling_steerc.py` (the
runtime's hook math, copied verbatim) and `steered_model.py` (the CausalLM wrapper). The
hook tensors are `steerc.*` buffers in their own shard `steering.safetensors`, listed in
`model.safetensors.index.json`, so `from_pretrained(..., trust_remote_code=True)` loads
them with everything else; without trust_remote_code transformers refuses the unknown type.
"""

from __future__ import annotations

from pathlib import Path

from steerc.compiler.codefiles import AUTO_MAP, CODE_FILES, code_bytes
from steerc.diagnostics import Diagnostic
from steerc.files.write import write_new
from steerc.targets.base import Artifacts, Job, Refusal
from steerc.targets.engines import LLAMACPP, TGI, TRANSFORMERS, VLLM, EngineSupport

STEERING_SHARD = "steering.safetensors"


def write_code(out: Path, base_type: str) -> tuple[str, ...]:
    """Write the three flat code files into `out`; returns their names."""
    for name in CODE_FILES:
        write_new(out / name, code_bytes(name, base_type))  # the bytes verify compares against
    return CODE_FILES


def steering_entries(hooks, dtype) -> list:
    """`steerc.*` entries of the hook buffers; floating ones cast to the model dtype (the
    runtime reference casts its hooks to the model dtype too), integer ones kept."""
    from steerc.checkpoint.reader import TORCH_TO_ST
    from steerc.checkpoint.writer import Entry

    entries = []
    for name, t in sorted(hooks.state_dict().items()):
        t = t.detach().to(dtype) if t.is_floating_point() else t.detach()
        t = t.contiguous()
        entries.append(Entry("steerc." + name, TORCH_TO_ST[t.dtype], tuple(t.shape), (lambda t=t: t)))
    return entries


class HooksTarget:
    name = "hooks"
    summary = ("exact weight edits plus fused hook modules for the rest; loads with "
               "trust_remote_code=True (transformers only)")
    expresses = "a hook module"
    runs_hooks = True
    # `model_type` steerc_<family>, classes in the checkpoint's own .py files.
    engines = (
        EngineSupport(TRANSFORMERS, True,
                      '`AutoModelForCausalLM.from_pretrained("PATH", trust_remote_code=True)` only',
                      "steerc's tests load every output in an interpreter without steerc"),
        EngineSupport(VLLM, False, "not supported: `SteercForCausalLM` (`steerc_<family>`) is not a "
                      "vLLM architecture, and vLLM's model code has no place for the hook modules",
                      "vLLM's model registry"),
        EngineSupport(LLAMACPP, False, "not supported: `convert_hf_to_gguf.py` refuses the "
                      "`SteercForCausalLM` architecture; GGUF has no hook modules",
                      "llama.cpp's converter"),
        EngineSupport(TGI, False, "not supported: TGI's models do not know `steerc_<family>`; its "
                      "transformers fallback (`--trust-remote-code`) may load the class, untested by "
                      "steerc, and never runs `custom_generate/`",
                      "TGI's `get_model` (server/text_generation_server/models/__init__.py)"),
    )

    def refusal(self, lowering) -> Refusal | None:
        return None  # every lowering is a weight edit or a hook

    def program_refusals(self, program) -> list[Diagnostic]:
        return []

    def emit(self, job: Job, out: Path) -> Artifacts:
        from steerc.checkpoint.output import write_tensors
        from steerc.compiler.weight_plan import patched_config, plan_weight_edits
        from steerc.runtime.build_hooks import build_hooks

        b, plan, program = job.base, job.plan, job.program
        we = plan_weight_edits(plan, program, b.config, b.adapter, b.checkpoint, job.directions)
        cfg = patched_config(b.raw_config, b.config, b.adapter, we)
        ivs = [lo.intervention for lo in plan.hooks]
        hooks = build_hooks(program, job.saes, b.config, b.adapter, interventions=ivs)
        extra = ({STEERING_SHARD: steering_entries(hooks, b.checkpoint.float_dtype())}
                 if ivs else {})
        tensors = write_tensors(b.checkpoint, out, we.replaced, we.new, extra,
                                progress=job.progress, jobs=job.jobs)
        if not ivs and program.json is None:  # every rule was exact: a plain checkpoint
            return Artifacts(cfg, tensors, we.records)
        # With no hook tensors (a JSON guard alone) the wrapper still gives the checkpoint its
        # own model_type, so that loading it without trust_remote_code fails closed.
        base_type = cfg["model_type"]
        cfg.update(model_type=f"steerc_{base_type}", architectures=["SteercForCausalLM"],
                   auto_map=dict(AUTO_MAP),
                   steerc=hooks.spec)
        code = write_code(out, base_type)
        summary = [{"hook": h["hook"], "module": h["path"], "where": h["where"], "ops": h["n_ops"],
                    "local_rank": h["local_rank"]} for h in hooks.spec["hooks"]]
        if hooks.spec.get("everywhere_rank"):
            summary.append({"hook": "everywhere", "module": ",".join(hooks.spec["everywhere_sites"]),
                            "where": "out", "ops": 0, "local_rank": hooks.spec["everywhere_rank"]})
        return Artifacts(cfg, tensors, we.records, code, summary)
