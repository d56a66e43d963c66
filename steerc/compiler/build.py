"""compile: Program -> standalone checkpoint directory (plan, weight edits, hooks, manifest).

    result = compile_program(program, "build/bot", target="auto", force=False)

Reads the base config and tensors lazily, never the whole model; writes into a temp dir
beside `out` and moves it into place only when everything (manifest included) is written.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from steerc.compiler import basefiles, emit
from steerc.compiler.backends import BACKENDS
from steerc.compiler.backends.base import TensorOutput
from steerc.compiler.ir import FeatureId, Program
from steerc.compiler.plan import Plan, plan as make_plan
from steerc.diagnostics import Diagnostic, DiagnosticError


@dataclass(frozen=True)
class CompileResult:
    out: Path
    plan: Plan
    manifest: dict


def load_base(model_dir: str | Path):
    """(transformers config, config.json dict, adapter) of a base checkpoint directory."""
    from steerc.arch.registry import adapter_for
    from steerc.hfload import load_config

    model_dir = Path(model_dir)
    if not (model_dir / "config.json").is_file():
        raise DiagnosticError([Diagnostic(
            "E602", f"no config.json in {model_dir}", None,
            "`model` must name a local transformers checkpoint directory")])
    config = load_config(model_dir)  # E607 unreadable, E640 needs its own code: never run
    try:
        raw = json.loads((model_dir / "config.json").read_text())
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise DiagnosticError([Diagnostic(
            "E607", f"transformers cannot read {model_dir / 'config.json'}: {str(e).splitlines()[0][:300]}",
            None, "check model_type and the JSON syntax of config.json")]) from None
    return config, raw, adapter_for(config)


def load_saes(program: Program, saes: dict | None = None, *, allow_pickle: bool = False) -> dict:
    """alias -> SAE for every binding of `program` (loaded lazily from its path);
    torch-pickled SAEs only with `allow_pickle` (E307 otherwise)."""
    from steerc.saes import load_sae

    saes = dict(saes or {})
    for b in program.saes:
        if b.alias not in saes:
            saes[b.alias] = load_sae(b.path, allow_pickle=allow_pickle)
    return saes


def check_sae_widths(saes: dict, config) -> None:
    """E309 for an SAE on a residual-space hook whose d_in is not the model's hidden size
    (an SAE trained on another model): caught here, not as a shape error mid-write."""
    from steerc.compiler.resolve import RESIDUAL_SPACE_HOOKS
    from steerc.saes import check_d_model

    cfg = getattr(config, "text_config", None) or config
    d_model = getattr(cfg, "hidden_size", None) or getattr(cfg, "n_embd", None)
    if d_model is None:
        return
    for sae in saes.values():
        if sae.hook_name.rsplit(".", 1)[-1] in RESIDUAL_SPACE_HOOKS:
            check_d_model(sae, d_model)


def directions_from(saes: dict):
    """feature -> decoder row d_i (fp32 [d_in]), cached."""
    cache: dict[FeatureId, torch.Tensor] = {}

    def get(f: FeatureId) -> torch.Tensor:
        key = FeatureId(f.sae, f.index)
        if key not in cache:
            cache[key] = saes[f.sae].decoder_rows([f.index])[0].to(torch.float32)
        return cache[key]

    return get


def compile_program(program: Program, out: str | Path, *, target: str = "auto",
                    force: bool = False, saes: dict | None = None, progress: bool = False,
                    lock_text: str | None = None, spec_hashes: dict | None = None,
                    allow_pickle: bool = False, jobs: int | None = None) -> CompileResult:
    """Compile `program` against its base model into `out`; returns the plan and manifest.

    Raises DiagnosticError (E410 refusals, E401 existing output without `force`, E6xx model
    files, E3xx SAE files: E307 a pickle without `allow_pickle`, E309 a d_in mismatch).
    On any failure nothing is left at `out` (an existing `out` stays untouched).
    `jobs`: how many tensors are made at once, one thread each (None: `DEFAULT_JOBS`, see
    `write_tensors`); the output does not depend on it."""
    from steerc.compiler import manifest as mf

    config, raw_config, adapter = load_base(program.model)
    p = make_plan(program, config, adapter, target)
    base = emit.open_checkpoint(program.model)
    basefiles.check_edit_targets(p, base, config)
    saes = load_saes(program, saes, allow_pickle=allow_pickle)
    check_sae_widths(saes, config)
    backend = BACKENDS[p.target]
    with emit.atomic_dir(out, force=force) as tmp:
        art = backend.emit(p, program, config, raw_config, adapter, base, saes, tmp, progress,
                           jobs=jobs)
        if program.json is not None:
            from steerc.guard.checkpoint import write_guard

            guard = write_guard(tmp, program.json)
            art.code_files = tuple(art.code_files) + tuple(
                str(f.relative_to(tmp)) for f in guard)
        copied = emit.copy_side_files(Path(program.model), tmp, skip={"config.json", "README.md"})
        emit.write_json(tmp / "config.json", art.config)
        if lock_text is not None:
            (tmp / "steer.lock").write_text(lock_text, encoding="utf-8")
        manifest = mf.build_manifest(program, p, base, saes, art, tmp, copied=copied,
                                     spec_hashes=spec_hashes or {})
        emit.write_json(tmp / mf.MANIFEST, manifest)
        from steerc.compiler.modelcard import model_card

        (tmp / "README.md").write_text(model_card(program, p, manifest), encoding="utf-8")
    return CompileResult(Path(out), p, manifest)


__all__ = ["compile_program", "CompileResult", "load_base", "load_saes", "directions_from",
           "TensorOutput"]
