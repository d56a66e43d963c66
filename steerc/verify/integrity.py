"""What `steerc verify` checks before it loads a compiled checkpoint: its code and its weights.

    check_code(ckpt, manifest)      # E504: only code this steerc version writes, byte for byte
    check_weights(ckpt, manifest)   # E520/E521: every weight file matches the manifest's hash

A checkpoint that needs hook modules or a JSON guard is loaded with `trust_remote_code=True`,
so its `.py` files run. The manifest cannot vouch for them: whoever edits a `.py` file can
edit its recorded hash too. So the expected bytes come from steerc itself, from the function
`compile` writes them with (compiler/codefiles.py), and every `.py` (or `.pyc`, `.so`) file
in the checkpoint must equal one of them. config.json's `auto_map` (which classes transformers
imports, possibly from another repository in the local Hugging Face cache) must be the one
`compile` writes. The manifest's hashes are still checked first, for the clearer message.

Weight files are checked against the manifest's `files` hashes (hash_scope in the manifest
says what each covers): a flipped byte anywhere in a shard fails before anything is loaded.
Hashes are streamed and cached under the strict stat signature (hashing.sha256_checked), so
a second verify of an untouched checkpoint reads no weights again.
"""

from __future__ import annotations

import json
from pathlib import Path

from steerc.compiler.codefiles import AUTO_MAP, CODE_FILES, GUARD_CODE, GUARD_DATA, GUARD_DIR, shipped_code
from steerc.files.hashing import cached_by_files, sha256_checked, sha256_uncached
from steerc.diagnostics import Diagnostic, DiagnosticError
from steerc.files import read

KNOWN_RECORDED = frozenset(CODE_FILES + (GUARD_CODE,) + GUARD_DATA)  # manifest `code_files`
E_CODE = "E504"
E_WEIGHTS = "E520"      # a weight file differs from the manifest's hash, or is missing
E_WEIGHT_SET = "E521"   # a weight file the manifest does not record


def _fail(code: str, message: str, hint: str | None = None):
    raise DiagnosticError([Diagnostic(code, message, None, hint)])


def _check_manifest_code(ckpt: Path, manifest: dict) -> dict:
    recorded = manifest.get("code_files") or {}
    if not isinstance(recorded, dict):
        _fail(E_CODE, f"the manifest of {ckpt} records its code files in an unknown form",
              "recompile the checkpoint")
    for rel, want in sorted(recorded.items()):
        f = ckpt / rel
        if rel not in KNOWN_RECORDED:  # read nothing a crafted manifest names ("/dev/zero", "../x")
            _fail(E_CODE, f"refusing to load {ckpt}: its manifest records '{str(rel)[:200]}' as "
                  "code, which is not a file steerc writes", "recompile the checkpoint")
        if not f.is_file():
            _fail(E_CODE, f"code file '{rel}' recorded in the manifest is missing from {ckpt}",
                  "the checkpoint is incomplete; recompile it")
        got = sha256_uncached(f)
        if got != want:
            _fail(E_CODE, f"refusing to run '{rel}': its content hash {got[:12]}... differs from "
                  f"the manifest's {str(want)[:12]}... (the file was modified after compiling)",
                  "recompile the checkpoint; never load a modified one with trust_remote_code")
    return recorded


CODE_SUFFIXES = (".py", ".pyc", ".so")


def _code_files(ckpt: Path) -> set[str]:
    """Relative paths of the code files under `ckpt`: everywhere `Path.rglob` looks (it does
    not enter symlinked directories), plus the two folders transformers imports from (the
    top level and custom_generate/), read through a symlink too."""
    found = {p.relative_to(ckpt).as_posix() for p in ckpt.rglob("*") if p.suffix in CODE_SUFFIXES}
    for d, prefix in ((ckpt, ""), (ckpt / GUARD_DIR, f"{GUARD_DIR}/")):
        if d.is_dir():
            found |= {prefix + p.name for p in d.iterdir() if p.suffix in CODE_SUFFIXES}
    return found


def check_code(ckpt: Path, manifest: dict) -> None:
    """E504 unless every `.py` file under `ckpt` is byte for byte what this steerc version
    writes there (and is recorded in the manifest), and config.json names only that code."""
    recorded = _check_manifest_code(ckpt, manifest)
    for rel in sorted(_code_files(ckpt) | {r for r in recorded if r.endswith(CODE_SUFFIXES)}):
        f = ckpt / rel
        if rel not in recorded:
            _fail(E_CODE, f"refusing to load {ckpt}: '{rel}' is code the manifest does not record",
                  "remove the file or recompile the checkpoint")
        data = read.read_bytes(f, read.CODE)  # a FIFO or device named *.py is refused, not read
        want = shipped_code(rel, data)
        if want is None or data != want:
            what = "is not a file steerc writes" if want is None else \
                "differs from the code this steerc version ships"
            _fail(E_CODE, f"refusing to run '{rel}' of {ckpt}: it {what} (the manifest's hash "
                  "does not vouch for code: anyone who edits the file can edit the manifest)",
                  "recompile the checkpoint with this steerc version; never load a modified "
                  "one with trust_remote_code")
    want_cfg = manifest.get("config_sha256")
    cfg_path = ckpt / "config.json"
    if want_cfg and (not cfg_path.is_file() or sha256_uncached(cfg_path) != want_cfg):
        _fail(E_CODE, f"config.json of {ckpt} differs from the manifest (it names the model "
              "code to import)", "recompile the checkpoint")
    try:
        cfg = json.loads(read.read_bytes(cfg_path, read.CODE))
    except (DiagnosticError, ValueError):
        _fail(E_CODE, f"config.json of {ckpt} is missing or not JSON", "recompile the checkpoint")
    auto_map = cfg.get("auto_map") if isinstance(cfg, dict) else None
    if auto_map is not None and auto_map != AUTO_MAP:
        _fail(E_CODE, f"config.json of {ckpt} names code steerc does not ship in its `auto_map` "
              f"({json.dumps(auto_map)[:200]})", "recompile the checkpoint")


def shard_hash(path: Path, how: str) -> str:
    """A weight file's hash as the manifest's `files` records it (see its hash_scope):
    sha256 of the bytes for a linked or copied base shard, else `digest.shard_digest`."""
    from steerc.checkpoint.digest import file_shard_digest

    if how in ("link", "copy"):
        return sha256_checked(path)
    return cached_by_files("shard-digest-strict-v1", [path], lambda: file_shard_digest(path),
                           strict=True)


def check_weights(ckpt: Path, manifest: dict) -> None:
    """E520 when a weight file the manifest records is missing or its hash differs (a
    flipped byte, an edited `steering.safetensors`); E521 for a `.safetensors` file it does
    not record (transformers could load it); E60x when the shard index is inconsistent."""
    from steerc.checkpoint.reader import open_checkpoint

    files, shards = manifest.get("files"), manifest.get("shards") or {}
    if not isinstance(files, dict) or not files or not isinstance(shards, dict):
        _fail(E_WEIGHTS, f"the manifest of {ckpt} records no weight file hashes",
              "recompile the checkpoint with this steerc version")
    on_disk = {p.name for p in ckpt.iterdir() if p.name.endswith(".safetensors")}
    for extra in sorted(on_disk - set(files)):
        _fail(E_WEIGHT_SET, f"refusing to load {ckpt}: weight file '{extra}' is not in its "
              "manifest", "remove the file or recompile the checkpoint")
    for name, want in sorted(files.items()):
        path = ckpt / name
        if "/" in name or name.startswith(".") or not path.is_file():
            _fail(E_WEIGHTS, f"weight file '{name}' recorded in the manifest is missing from {ckpt}",
                  "the checkpoint is incomplete; recompile it")
        try:
            got = shard_hash(path, shards.get(name, "rewritten"))
        except (OSError, ValueError, KeyError, TypeError, DiagnosticError):
            got = None  # a header that does not parse cannot match a recorded digest
        if got != want:
            _fail(E_WEIGHTS, f"weight file '{name}' of {ckpt} differs from the hash its manifest "
                  "records (the file was modified or damaged after compiling)",
                  "recompile the checkpoint, or copy it again from its source")
    open_checkpoint(ckpt)  # the shard index must name exactly the tensors of the shards (E603/E606)
