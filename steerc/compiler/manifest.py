"""steerc-manifest.json: the audit trail of one compile (schema: specs/schemas/manifest.schema.json).

It records what went in (spec files, base model, SAEs, catalogue: content hashes), what the
plan decided per rule, every tensor edit (before/after content hashes), and the content hash
of every output tensor and code file, so a reviewer can tell exactly what a checkpoint is.
Deterministic: no timestamps, sorted keys when written.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
from pathlib import Path

from steerc import __version__
from steerc.compiler.emit import combined_hash, file_sha256

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
    if path and Path(path).is_file():
        return file_sha256(Path(path))
    return None


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


def build_manifest(program, plan, base, saes: dict, art, out: Path, *, copied: list[str],
                   spec_hashes: dict) -> dict:
    """The manifest dict for a finished output directory `out` (code files already written)."""
    t = art.tensors
    base_hashes = {n: t.before.get(n, t.hashes.get(n)) for n in base.tensors}
    edits = []
    for rec in art.records:
        name = rec["tensor"]
        edits.append({"tensor": name, "ops": rec["ops"], "before_sha256": t.before.get(name),
                      "after_sha256": t.hashes[name]})
    specs = dict(spec_hashes) or {f: _file_hash(f) for f in (program.files or (program.spec_file,))}
    return {
        "schema_version": SCHEMA_VERSION,
        "compiler": {"name": "steerc", "version": __version__},
        "target": plan.target,
        "requested_target": plan.requested,
        "family": plan.family,
        "spec": {"file": program.spec_file, "sha256": specs},
        "base_model": {"path": program.model, "tensors_sha256": combined_hash(base_hashes),
                       "config_sha256": _file_hash(str(Path(program.model) / "config.json"))},
        "saes": [{"alias": b.alias, "path": b.path, "hook": b.hook,
                  "sha256": saes[b.alias].sha256() if b.alias in saes else b.sha256}
                 for b in program.saes],
        "catalogue": {"path": program.catalogue, "sha256": _file_hash(program.catalogue)},
        "program": program_dict(program),
        "lowering": lowering_rows(plan),
        "edits": edits,
        "hooks": art.hooks,
        "tensors": dict(sorted(t.hashes.items())),
        "tensors_sha256": combined_hash(t.hashes),
        "shards": dict(sorted(t.shards.items())),
        "code_files": {f: file_sha256(out / f) for f in art.code_files},
        "side_files": {f: file_sha256(out / f) for f in copied},
        "config_sha256": hashlib.sha256((out / "config.json").read_bytes()).hexdigest()
        if (out / "config.json").is_file() else None,
    }
