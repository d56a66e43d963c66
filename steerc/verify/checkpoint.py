"""Open a compiled checkpoint for `steerc verify`: manifest, Program, integrity, models.

    ck = open_steered("build/no_code")            # E501-E506 on anything wrong, no traceback
    base, steered, tok = load_models(ck)

Integrity before any code runs: a checkpoint that needs custom code (target `hooks`, or an
`enforce json` guard) is loaded with `trust_remote_code=True`, so every code file must hash
to what the manifest recorded, no unrecorded `.py` file may sit in it, and config.json (whose
`auto_map` names the classes to import) must be unchanged. Anything else is refused (E504).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from steerc.compiler.hashing import sha256_uncached
from steerc.compiler.ir import Program
from steerc.diagnostics import Diagnostic, DiagnosticError
from steerc.files import read

MANIFEST = "steerc-manifest.json"
GUARD_DIR = "custom_generate"


@dataclass(frozen=True)
class SteeredCheckpoint:
    """A verified-intact compiled checkpoint and what its manifest says about it."""

    path: Path
    manifest: dict
    program: Program
    base_model: Path           # resolved on disk
    sae_paths: dict            # alias -> Path resolved on disk
    target: str                # weights | hooks
    needs_code: bool           # load with trust_remote_code=True
    guard: bool                # ships custom_generate (enforce json)
    warnings: tuple[Diagnostic, ...] = ()


def _fail(code: str, message: str, hint: str | None = None):
    raise DiagnosticError([Diagnostic(code, message, None, hint)])


def read_manifest(ckpt: Path) -> dict:
    """The parsed manifest; E501 (no directory), E502 (no manifest), E503 (unreadable)."""
    if not os.path.isdir(ckpt):
        _fail("E501", f"checkpoint directory not found: '{ckpt}'",
              "pass the output directory of `steerc compile SPEC -o OUT`")
    mpath = ckpt / MANIFEST
    if not os.path.isfile(mpath):
        _fail("E502", f"'{ckpt}' is not a steerc checkpoint: it has no {MANIFEST}",
              "verify works on directories written by `steerc compile`")
    manifest = read.read_json(mpath, read.MANIFEST)  # E503: not JSON, not an object, too large
    required = ("target", "program", "base_model", "code_files", "saes")
    missing = [k for k in required if not isinstance(manifest, dict) or k not in manifest]
    if missing:
        _fail("E503", f"{mpath} lacks {', '.join(missing)}: not a steerc manifest",
              "recompile the checkpoint with `steerc compile`")
    return manifest


def check_integrity(ckpt: Path, manifest: dict) -> None:
    """E504 when a code file differs from its manifest hash, is missing, is not recorded,
    or config.json (which names the code to import) was changed."""
    recorded = manifest.get("code_files") or {}
    for rel, want in sorted(recorded.items()):
        f = ckpt / rel
        if not os.path.isfile(f):
            _fail("E504", f"code file '{rel}' recorded in the manifest is missing from {ckpt}",
                  "the checkpoint is incomplete; recompile it")
        got = sha256_uncached(f)
        if got != want:
            _fail("E504", f"refusing to run '{rel}': its content hash {got[:12]}... differs from "
                  f"the manifest's {want[:12]}... (the file was modified after compiling)",
                  "recompile the checkpoint; never load a modified one with trust_remote_code")
    for f in sorted(ckpt.rglob("*.py")):
        rel = f.relative_to(ckpt).as_posix()
        if rel not in recorded:
            _fail("E504", f"refusing to load {ckpt}: '{rel}' is code the manifest does not record",
                  "remove the file or recompile the checkpoint")
    want = manifest.get("config_sha256")
    cfg = ckpt / "config.json"
    if want and (not os.path.isfile(cfg) or sha256_uncached(cfg) != want):
        _fail("E504", f"config.json of {ckpt} differs from the manifest (it names the model "
              "code to import)", "recompile the checkpoint")


def resolve_path(recorded: str, ckpt: Path) -> Path | None:
    """A path as recorded at compile time: absolute, or relative to the checkpoint (what
    steerc writes, so verify works from any working directory); manifests written before
    that recorded paths relative to the compile's working directory, tried next."""
    p = Path(recorded)
    for cand in ([p] if p.is_absolute() else [ckpt / p, p, ckpt.parent / p]):
        if os.path.exists(cand):
            return cand
    return None


def _from_hub(src, what: str, weights: bool = False) -> Path:
    """The Hub cache folder of the exact commit the checkpoint was compiled from (a dict from
    the manifest's base_model, or the program's HubSource); E505/E506 style errors as E260."""
    from steerc.hub import HubError, fetch_folder, fetch_model

    if isinstance(src, dict):
        repo, commit, folder = src["repo"], src["commit"], src.get("folder")
    else:
        repo, commit, folder = src.repo, src.commit, src.folder
    try:
        if weights:
            return Path(fetch_model(repo, commit, weights=True, what=what).path)
        return Path(fetch_folder(repo, commit, folder, what=what).path)
    except HubError as e:
        _fail(e.code, e.message, e.hint)


def open_steered(ckpt: str | os.PathLike, *, base_model: str | None = None) -> SteeredCheckpoint:
    """Read and check a compiled checkpoint; `base_model` overrides the manifest's path."""
    from steerc.compiler.serialize import program_from_dict

    ckpt = Path(ckpt)
    manifest = read_manifest(ckpt)
    check_integrity(ckpt, manifest)
    try:
        program = program_from_dict(manifest["program"])
    except (KeyError, TypeError, ValueError) as e:
        _fail("E503", f"the program in {ckpt / MANIFEST} cannot be read ({type(e).__name__}: {e})",
              "recompile the checkpoint with this steerc version")
    recorded = base_model or manifest["base_model"].get("path") or program.model
    hub = None if base_model else manifest["base_model"].get("hub")
    base = _from_hub(hub, "base model", weights=True) if hub else resolve_path(recorded, ckpt)
    if base is None or not os.path.isfile(base / "config.json"):
        _fail("E505", f"base model '{recorded}' (from the manifest) not found",
              "the manifest records it relative to the checkpoint: was the checkpoint moved? "
              "Pass --base-model PATH")
    warnings = []
    want_cfg = manifest["base_model"].get("config_sha256")
    if want_cfg and sha256_uncached(base / "config.json") != want_cfg:
        warnings.append(Diagnostic("W501", f"the base model at '{base}' is not the one compiled "
                                   "against (config.json hash differs)", None,
                                   "base-vs-steered figures compare different models"))
    sae_paths = {}
    for b in program.saes:
        p = _from_hub(b.source, f"SAE '{b.alias}'") if b.source else resolve_path(b.path, ckpt)
        if p is None:
            _fail("E506", f"SAE '{b.alias}' not found at '{b.path}' (from the manifest)",
                  "the manifest records it relative to the checkpoint: was the checkpoint moved?")
        sae_paths[b.alias] = p
    guard = os.path.isfile(ckpt / GUARD_DIR / "generate.py")
    needs_code = manifest["target"] == "hooks" or bool(manifest.get("code_files")) or guard
    return SteeredCheckpoint(ckpt, manifest, program, base, sae_paths, manifest["target"],
                             needs_code, guard, tuple(warnings))


def load_models(ck: SteeredCheckpoint):
    """(base model, steered model, tokenizer), fp32, eval mode. E507 when loading fails."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # the steerc_<base> model_type notice is expected
    hf_logging.disable_progress_bar()

    def load(path, **kw):
        try:
            return AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32, **kw).eval()
        except Exception as e:  # transformers raises many types; the user needs the message
            _fail("E507", f"cannot load the model at '{path}': {type(e).__name__}: {e}",
                  "check that the directory is a complete transformers checkpoint")

    base = load(ck.base_model)
    steered = load(ck.path, trust_remote_code=True) if ck.needs_code else load(ck.path)
    tok_dir = ck.path if os.path.isfile(ck.path / "tokenizer_config.json") else ck.base_model
    try:
        tok = AutoTokenizer.from_pretrained(str(tok_dir), trust_remote_code=ck.needs_code)
    except Exception as e:
        _fail("E507", f"cannot load the tokenizer from '{tok_dir}': {type(e).__name__}: {e}")
    return base, steered, tok
