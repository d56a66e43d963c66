"""Hooks backend: exact weight edits where possible, fused hook modules for the rest.

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

import torch

from steerc.compiler.backends.weights import Artifacts, patched_config, plan_weight_edits
from steerc.compiler.codefiles import AUTO_MAP, CODE_FILES, code_bytes
from steerc.compiler.emit import ST_DTYPES, TORCH_TO_ST, Entry
from steerc.files.write import write_new

STEERING_SHARD = "steering.safetensors"


def write_code(out: Path, base_type: str) -> tuple[str, ...]:
    """Write the three flat code files into `out`; returns their names."""
    for name in CODE_FILES:
        write_new(out / name, code_bytes(name, base_type))  # the bytes verify compares against
    return CODE_FILES


def model_dtype(base) -> torch.dtype:
    """The stored dtype of the base's floating tensors (the first one in name order)."""
    for name in sorted(base.tensors):
        dt = ST_DTYPES[base.tensors[name].dtype]
        if dt.is_floating_point:
            return dt
    return torch.float32


def steering_entries(hooks, dtype: torch.dtype) -> list[Entry]:
    """`steerc.*` entries of the hook buffers; floating ones cast to the model dtype (the
    runtime reference casts its hooks to the model dtype too), integer ones kept."""
    entries = []
    for name, t in sorted(hooks.state_dict().items()):
        t = t.detach().to(dtype) if t.is_floating_point() else t.detach()
        t = t.contiguous()
        entries.append(Entry("steerc." + name, TORCH_TO_ST[t.dtype], tuple(t.shape), (lambda t=t: t)))
    return entries


class HooksBackend:
    """Weight edits for the exact lowerings, hook modules for the others."""

    name = "hooks"

    def emit(self, plan, program, config, raw_config, adapter, base, saes, out, progress=False,
             jobs=None):
        from steerc.compiler.backends.base import write_tensors
        from steerc.compiler.build_checkpoint import directions_from
        from steerc.runtime.build_hooks import build_hooks

        we = plan_weight_edits(plan, program, config, adapter, base, directions_from(saes))
        cfg = patched_config(raw_config, config, adapter, we)
        ivs = [lo.intervention for lo in plan.hooks]
        hooks = build_hooks(program, saes, config, adapter, interventions=ivs)
        extra = {STEERING_SHARD: steering_entries(hooks, model_dtype(base))} if ivs else {}
        tensors = write_tensors(base, out, we.replaced, we.new, extra, progress=progress,
                                jobs=jobs)
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
