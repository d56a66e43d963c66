"""compile: Program -> output directory (validate, plan, the target's emit, manifest, card).

    result = compile_program(program, "build/bot", target="auto", force=False)

The whole path of one compile: `validate.validate_program` (what `check` runs), `plan.plan`
(the passes; the target refuses what it cannot express), then `TARGETS[plan.target].emit`
(steerc/targets/) writes the weights into a temp dir beside `out`; this module adds the JSON
guard, the base's side files, config.json, the lock, the manifest and the model card, and
moves the directory into place only when everything is written. Reads the base config and
tensors lazily, never the whole model.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from steerc.checkpoint import output
from steerc.checkpoint.reader import open_checkpoint
from steerc.compiler import numeric
from steerc.compiler.inputs import program_inputs
from steerc.compiler.ir import Program
from steerc.compiler.lock import LOCK_NAME
from steerc.compiler.plan import Plan, plan as make_plan
from steerc.compiler.weight_plan import check_edit_targets, directions_from
from steerc.files.outdir import atomic_dir
from steerc.files.write import write_new
from steerc.targets import TARGETS, Artifacts, BaseModel, Job


@dataclass(frozen=True)
class CompileResult:
    out: Path
    plan: Plan
    manifest: dict
    artifacts: Artifacts


def load_base(model_dir: str | Path):
    """(transformers config, config.json dict, adapter) of a base checkpoint directory
    (found by `modeldesc.model_root`: E602; config.json through the guarded reader: E607;
    E640 when transformers could only read it by running the base's own code: never run)."""
    from steerc.arch.registry import adapter_for
    from steerc.compiler.modeldesc import model_root, read_config
    from steerc.hfload import load_config

    model_dir = model_root(str(model_dir))
    raw = read_config(model_dir)
    config = load_config(model_dir)
    return config, raw, adapter_for(config)


def load_saes(program: Program, saes: dict | None = None, *, allow_pickle: bool = False) -> dict:
    """alias -> SAE for every binding of `program` (loaded lazily from its path; a named
    direction's vector read or computed now, `steerc.directions`); torch-pickled files only
    with `allow_pickle` (E307 otherwise)."""
    from steerc.directions.build import direction_saes
    from steerc.saes import load_sae

    saes = dict(saes or {})
    todo = [b for b in program.saes if b.alias not in saes]
    saes.update(direction_saes(todo, program.model, allow_pickle=allow_pickle))
    for b in todo:
        if b.direction is None:
            saes[b.alias] = load_sae(b.path, allow_pickle=allow_pickle)
    return saes


def compile_program(program: Program, out: str | Path, *, target: str = "auto",
                    force: bool = False, saes: dict | None = None, progress: bool = False,
                    lock_text: str | None = None, spec_hashes: dict | None = None,
                    allow_pickle: bool = False, jobs: int | None = None) -> CompileResult:
    """Compile `program` against its base model into `out`; returns the plan and manifest.

    Runs the validation pass first (`validate.validate_program`: what `check` runs, so a
    spec check accepts is not refused here for its model). Raises DiagnosticError (E410
    refusals, E401 existing output without `force`, E420-E423 an output that is an input,
    the cwd... or, with `force`, not a checkpoint steerc wrote, E430-E433 a zero direction
    or a non-finite value, E6xx model files, E3xx SAE files: E307 a pickle without
    `allow_pickle`; the validation pass's codes). On any failure nothing is left at `out`
    (an existing `out` stays untouched).
    `jobs`: how many tensors are made at once, one thread each (None: `DEFAULT_JOBS`, see
    `write_tensors`); the output does not depend on it."""
    from steerc.compiler import manifest as mf
    from steerc.compiler.modelcard import model_card
    from steerc.compiler.portable import portable_program
    from steerc.compiler.validate import validate_program

    info = validate_program(program)
    config, raw_config, adapter = load_base(info.root)
    p = make_plan(program, config, adapter, target)
    base = open_checkpoint(info.root)
    check_edit_targets(p, base, config)
    saes = load_saes(program, saes, allow_pickle=allow_pickle)
    numeric.check_program([lo.intervention for lo in p.weight_edits + p.hooks],
                          saes, base.float_dtype())
    job = Job(program, p, BaseModel(config, raw_config, adapter, base), saes,
              directions_from(saes), progress, jobs)
    shown = portable_program(program, Path(out))  # what the output records: no build paths
    try:
        with atomic_dir(out, force=force, inputs=program_inputs(program)) as tmp:
            art = TARGETS[p.target].emit(job, tmp)
            if program.json is not None:
                from steerc.guard.checkpoint import guarded_config, write_guard

                guard = write_guard(tmp, shown.json)
                art.config = guarded_config(art.config)
                art.code_files = tuple(art.code_files) + tuple(
                    str(f.relative_to(tmp)) for f in guard)
            copied = []
            if art.config is not None:  # a transformers checkpoint: tokenizer & co. too
                copied = output.copy_side_files(info.root, tmp, skip={"config.json", "README.md"})
                output.write_json(tmp / "config.json", art.config)
            if lock_text is not None:
                write_new(tmp / LOCK_NAME, lock_text)
            manifest = mf.build_manifest(program, p, base, saes, art, tmp, copied=copied,
                                         spec_hashes=spec_hashes or {}, final_out=Path(out))
            output.write_json(tmp / mf.MANIFEST, manifest)
            sources = tuple(zip(program.files or (program.spec_file,), shown.files or (shown.spec_file,)))
            write_new(tmp / "README.md", model_card(shown, p, manifest, sources=sources, out=out))
    except numeric.NonFiniteOutput as e:  # the temp dir is gone already (atomic_dir)
        raise numeric.non_finite_diagnostic(e, p) from None
    return CompileResult(Path(out), p, manifest, art)


__all__ = ["compile_program", "CompileResult", "load_base", "load_saes"]
