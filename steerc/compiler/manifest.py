"""steerc-manifest.json: the audit trail of one compile (schema: specs/schemas/manifest.schema.json).

It records what went in (spec files, base model, SAEs, catalogue: content hashes), what the
plan decided per rule, every tensor edit (before/after content hashes), the content hash of
every tensor steerc wrote, a hash of every output weight file and the sha256 of every code
file, so a reviewer can tell exactly what a checkpoint is. `hash_scope` says what each hash
covers. Hashes are computed over the bytes as they are written (no second read); a
hard-linked base shard is the base file itself, so its hash is the base file's (hashing.py's
stat cache, already filled by the lock's model fingerprint); a rewritten shard is recorded by
its `digest.shard_digest` (header + per-tensor hashes), so the base tensors copied into it
unchanged need no pass over their bytes (their hashes are cached by stat). Deterministic: no
timestamps, sorted keys.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import os
from pathlib import Path

from steerc import __version__
from steerc.files.hashing import file_sha256, files_fingerprint, sha256_uncached
from steerc.compiler.lock import hub_entry
from steerc.compiler.portable import portable_program

MANIFEST = "steerc-manifest.json"
SCHEMA_VERSION = 1


def _jsonable(x):
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return {f.name: _jsonable(getattr(x, f.name)) for f in dataclasses.fields(x)}
    if isinstance(x, enum.Enum):
        return x.value
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    return x


def program_dict(program) -> dict:
    """The serialized Program: the resolve stage's `program_to_dict` when present."""
    try:
        from steerc.compiler.serialize import program_to_dict
    except ImportError:
        return _jsonable(program)
    return program_to_dict(program)


def _file_hash(path: str | None) -> str | None:
    """An input's sha256 (spec, config, catalogue): the lock hashed it already, so this is
    the stat-cached hash, not a second read of a possibly large catalogue."""
    if path and os.path.isfile(Path(path)):
        return file_sha256(path)
    return None


HASH_SCOPE = {
    "tensors": "tensor_hash of each tensor steerc wrote (edited or new): sha256 over the "
               "length-prefixed name, dtype, shape and raw bytes; untouched tensors are covered "
               "by `files`",
    "edits": "before/after: tensor_hash of the base tensor and of its replacement",
    "files": "per output .safetensors file: where `shards` says link or copy, sha256 of the "
             "file's bytes (the base file's own hash); where it says rewritten or new, "
             "steerc.checkpoint.digest.shard_digest: sha256 over the tag 'steerc-shard-digest-v1\\n', "
             "the 8-byte little-endian header length and the header bytes (8-byte size field + "
             "JSON), then the hex tensor_hash of each tensor in data order",
    "tensors_sha256": "sha256 of the sorted lines '<file>\\t<sha256>\\n' over `files` "
                      "(hashing.files_fingerprint's formula)",
    "base_model.tensors_sha256": "the same formula over the base's .safetensors files",
}


# Added to `hash_scope` only when an output holds a weight file that is not safetensors, so
# the manifests of checkpoints stay byte-identical.
OTHER_FILES_SCOPE = ("files (not .safetensors)", "per output file of another format (a "
                     "gguf-cvec control_vector.gguf): sha256 of the file's bytes")


def _hash_scope(files: dict) -> dict:
    if all(f.endswith(".safetensors") for f in files):
        return HASH_SCOPE
    return {**HASH_SCOPE, OTHER_FILES_SCOPE[0]: OTHER_FILES_SCOPE[1]}


def _fingerprint(files: dict[str, str]) -> str:
    """hashing.files_fingerprint's formula over already-known file hashes."""
    return hashlib.sha256("".join(f"{n}\t{files[n]}\n" for n in sorted(files)).encode()).hexdigest()


def lowering_rows(plan) -> list[dict]:
    """One row per intervention: the rule, its op/feature/value and how it was lowered."""
    rows = []
    for lo in plan.lowerings:
        iv = lo.intervention
        rows.append({"rule": iv.origin or f"{iv.op.value} {iv.feature}", "op": iv.op.value,
                     "feature": str(iv.feature), "value": iv.value, "points": list(iv.points),
                     "lowering": lo.kind, "reason": lo.reason, "tensors": list(lo.tensors),
                     "hook_points": list(lo.hook_points)})
    return rows


def _sae_row(b, saes: dict) -> dict:
    row = {"alias": b.alias, "path": b.path, "hook": b.hook,
           "sha256": saes[b.alias].sha256() if b.alias in saes else b.sha256}
    if b.source is not None:
        row["hub"] = hub_entry(b.source)
    if b.direction is not None and b.alias in saes:  # the vector used, for the audit trail
        from steerc.directions.files import vectors_sha256

        v = saes[b.alias].W_dec[0].numpy()
        row["direction"] = {"kind": b.direction.kind, "norm": float((v.astype("float64") ** 2).sum() ** 0.5),
                            "vector_sha256": vectors_sha256({b.hook: v})}
    return row


def build_manifest(program, plan, base, saes: dict, art, out: Path, *, copied: list[str],
                   spec_hashes: dict, final_out: Path | None = None) -> dict:
    """The manifest dict for a finished output directory `out` (code files already written;
    `final_out`: where it will be moved, which recorded paths are relative to)."""
    t = art.tensors
    edits = []
    for rec in art.records:
        name = rec["tensor"]
        edits.append({"tensor": name, "ops": rec["ops"], "before_sha256": t.before.get(name),
                      "after_sha256": t.hashes.get(name)})
    # `program` is the checkpoint's view (portable.portable_program): paths relative to the
    # checkpoint; `local` is the one on disk, to hash
    local = program
    program = portable_program(local, final_out or out)
    rel = {f: r for f, r in zip(local.files, program.files)}
    specs = ({rel.get(f, f): h for f, h in spec_hashes.items()} or
             {r: _file_hash(f) for f, r in zip(local.files or (local.spec_file,),
                                                program.files or (program.spec_file,))})
    base_model = {"path": program.model, "tensors_sha256": files_fingerprint(base.root, base.files),
                  "config_sha256": _file_hash(str(Path(local.model) / "config.json"))}
    if local.model_source is not None:
        base_model["hub"] = hub_entry(local.model_source)
    return {
        "schema_version": SCHEMA_VERSION,
        "compiler": {"name": "steerc", "version": __version__},
        "target": plan.target,
        "requested_target": plan.requested,
        "family": plan.family,
        "spec": {"file": program.spec_file, "sha256": specs},
        "base_model": base_model,
        "saes": [_sae_row(b, saes) for b in program.saes],
        "catalogue": {"path": program.catalogue, "sha256": _file_hash(local.catalogue)},
        "program": program_dict(program),
        "lowering": lowering_rows(plan),
        "edits": edits,
        "hooks": art.hooks,
        "tensors": dict(sorted(t.hashes.items())),
        "files": dict(sorted(t.files.items())),
        "tensors_sha256": _fingerprint(t.files),
        "hash_scope": _hash_scope(t.files),
        "shards": dict(sorted(t.shards.items())),
        "code_files": {f: sha256_uncached(out / f) for f in art.code_files},
        "side_files": {f: sha256_uncached(out / f) for f in copied},
        "config_sha256": sha256_uncached(out / "config.json")
        if os.path.isfile(out / "config.json") else None,
    }
