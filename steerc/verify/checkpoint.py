"""Open a compiled checkpoint for `steerc verify`: manifest, Program, integrity, models.

    ck = open_steered("build/no_code")            # E501-E506 on anything wrong, no traceback
    base, steered, tok = load_models(ck)

Integrity before any code runs: a checkpoint that needs custom code (target `hooks`, or an
`enforce json` guard) is loaded with `trust_remote_code=True`, so every code file must be
byte for byte what this steerc version writes (not merely what the manifest records), and
config.json (whose `auto_map` names the classes to import) must be unchanged; every weight
file must match the manifest's hash (steerc/verify/integrity.py). Else E504 / E520 / E521.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from steerc.files.hashing import sha256_uncached
from steerc.compiler.ir import Program
from steerc.diagnostics import Diagnostic, DiagnosticError
from steerc.files import read
from steerc.verify.integrity import check_code, check_weights

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
    """E504 for code that is not byte for byte what this steerc version ships (or is not
    recorded, or a changed config.json); E520/E521 for weight files that differ from the
    manifest's hashes (steerc/verify/integrity.py)."""
    check_code(ckpt, manifest)
    check_weights(ckpt, manifest)


def refuse_non_checkpoint(ckpt: Path, manifest: dict) -> None:
    """E419 for an output that is not a transformers checkpoint (a target that writes no
    config.json records `config_sha256: null`, e.g. a gguf-cvec control vector): verify loads
    the steered model with transformers, which cannot run it."""
    if "config_sha256" in manifest and manifest["config_sha256"] is None:
        files = ", ".join(sorted(manifest.get("files") or {})) or "no weight files"
        _fail("E419", f"'{ckpt}' is a target {str(manifest.get('target'))[:40]!r} output ({files}), "
              "not a transformers checkpoint: steerc verify cannot load it",
              "run it in its own engine (its README.md says how), or compile the spec with "
              "--target weights or hooks and verify that")


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
    refuse_non_checkpoint(ckpt, manifest)
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
    needs_code = bool(manifest.get("code_files")) or guard  # shipped code is what needs trust
    return SteeredCheckpoint(ckpt, manifest, program, base, sae_paths, manifest["target"],
                             needs_code, guard, tuple(warnings))


def load_models(ck: SteeredCheckpoint):
    """(base model, steered model, tokenizer), fp32, eval mode. E507 when loading fails,
    E640 when the base needs its own code. Only the steered checkpoint's code runs, and only
    after `open_steered` checked it is this steerc version's (steerc/hfload.py)."""
    from transformers.utils import logging as hf_logging

    from steerc.hfload import load_model, load_tokenizer

    hf_logging.set_verbosity_error()  # the steerc_<base> model_type notice is expected
    base = load_model(ck.base_model)
    steered = load_model(ck.path, shipped_code=ck.needs_code)
    tok_dir = ck.path if os.path.isfile(ck.path / "tokenizer_config.json") else ck.base_model
    try:
        tok = load_tokenizer(tok_dir)
    except DiagnosticError as e:
        # A tokenizer_config.json without `tokenizer_class` sends AutoTokenizer to config.json,
        # whose steerc_<base> type it only knows through code: the files are the base's copies.
        if tok_dir == ck.base_model or e.diagnostics[0].code != "E640":
            raise
        tok = load_tokenizer(ck.base_model)
    return base, steered, tok
