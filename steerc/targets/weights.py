"""`--target weights`: exact weight edits only, a plain checkpoint of the base (or a
re-targeted) family that any engine loading that family runs."""

from __future__ import annotations

from pathlib import Path

from steerc.diagnostics import Diagnostic
from steerc.targets.base import Artifacts, Job, Refusal


class WeightsTarget:
    name = "weights"
    summary = "a plain checkpoint: every rule as an exact weight edit, or refused (E410)"
    expresses = "an exact weight edit"
    runs_hooks = False

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
