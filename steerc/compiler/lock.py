"""`steer.lock`: what a spec resolved to, and the hashes of everything it read.

Like a package lockfile: `steerc check --write-lock` records it; `check --locked` (and
`compile --locked`) recompute it and fail with a readable diff when anything differs, so a
catalogue relabel or a swapped SAE can never silently change a compiled model.

Layout (specs/schemas/lock.schema.json): JSON with sorted keys, paths relative to the lock
file's directory, `/`-separated. Rules are listed in source order, each with its span, its
canonical text and the features it resolved to as `[sae, index, label, value]`.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

import jsonschema

from steerc import __version__
from steerc.compiler.hashing import file_sha256, model_fingerprint
from steerc.compiler.ir import Program
from steerc.diagnostics import Diagnostic, DiagnosticError
from steerc.files import read

LOCK_VERSION = 1
LOCK_NAME = "steer.lock"
SCHEMA_PATH = Path(__file__).with_name("lock.schema.json")  # same bytes as specs/schemas/


def default_lock_path(spec_file: str | os.PathLike) -> Path:
    """`<spec dir>/steer.lock`."""
    return Path(os.path.dirname(os.path.abspath(spec_file))) / LOCK_NAME


def _rel(path: str, base: Path) -> str:
    return os.path.relpath(os.path.abspath(path), base).replace(os.sep, "/")


def build_lock(program: Program, lock_dir: str | os.PathLike) -> dict[str, Any]:
    """The lock document of a resolved program (hashes computed now; cached by stat)."""
    base = Path(lock_dir).resolve()
    model_local = os.path.isdir(program.model)
    schemas = set()
    if program.json is not None and program.json.schema_path:
        schemas.add(program.json.schema_path)
    schemas.update(e.arg for e in program.expects if e.kind == "matches_schema" and e.arg)
    rules: list[dict] = []
    index: dict[tuple, dict] = {}
    for iv in program.interventions:
        span = f"{_rel(iv.span.file, base)}:{iv.span.line}:{iv.span.col}" if iv.span else ""
        key = (span, iv.origin)
        if key not in index:
            index[key] = {"span": span, "origin": iv.origin, "features": []}
            rules.append(index[key])
        row = [iv.feature.sae, iv.feature.index, iv.feature.label, float(iv.value)]
        if row not in index[key]["features"]:
            index[key]["features"].append(row)
    return {
        "version": LOCK_VERSION,
        "steerc": __version__,
        "spec": _rel(program.spec_file, base),
        "files": {_rel(f, base): file_sha256(f) for f in program.files},
        "model": {"ref": _rel(program.model, base) if model_local else program.model,
                  "fingerprint": model_fingerprint(program.model) if model_local else None},
        "saes": {b.alias: {"path": _rel(b.path, base), "sha256": b.sha256, "hook": b.hook,
                           "d_sae": b.d_sae} for b in program.saes},
        "catalogue": None if program.catalogue is None else {
            "path": _rel(program.catalogue, base), "sha256": file_sha256(program.catalogue)},
        "schemas": {_rel(s, base): file_sha256(s) for s in sorted(schemas)},
        "rules": rules,
    }


def dumps_lock(lock: dict) -> str:
    """Canonical text: sorted keys, 2-space indent, trailing newline (byte-stable)."""
    return json.dumps(lock, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def write_lock(lock: dict, path: str | os.PathLike) -> Path:
    """Write the lock atomically (temp file + rename); returns the path."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(dumps_lock(lock), encoding="utf-8")
    os.replace(tmp, path)
    return path


def lock_schema() -> dict:
    """The lock file's JSON schema."""
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


def read_lock(path: str | os.PathLike) -> dict:
    """Read and validate a lock file; E223 (DiagnosticError) if missing or malformed."""
    path = Path(path)
    if not os.path.lexists(path):
        raise DiagnosticError([Diagnostic("E223", f"lock file not found: '{path}'", None,
                                          "create it with `steerc check SPEC --write-lock`")])
    doc = read.read_json(path, read.LOCK, want=None)  # the schema below names a wrong top level
    err = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(lock_schema()).iter_errors(doc))
    if err is not None:
        raise DiagnosticError([Diagnostic("E223", f"malformed lock file '{path}' at {err.json_path}: "
                                          f"{err.message}", None,
                                          "regenerate it with `steerc check SPEC --write-lock`")])
    return doc


# ---- diff ---------------------------------------------------------------------------------


def _h(x: str | None) -> str:
    return "none" if x is None else x[:12]


def _keyed(rules: list[dict]) -> dict[tuple[str, int], dict]:
    seen: Counter = Counter()
    out = {}
    for r in rules:
        out[(r["origin"], seen[r["origin"]])] = r
        seen[r["origin"]] += 1
    return out


def _feat(row: list) -> str:
    return f"{row[0]}[{row[1]}]" + (f' "{row[2]}"' if row[2] else "")


def _diff_rule(origin: str, a: list[list], b: list[list]) -> list[str]:
    if a == b:
        return []
    if len(a) == len(b) == 1:
        (sa, ia, la, va), (sb, ib, lb, vb) = a[0], b[0]
        out = []
        if (sa, ia) != (sb, ib):
            out.append(f"{origin}: index {ia} -> {ib}" if sa == sb else
                       f"{origin}: {sa}[{ia}] -> {sb}[{ib}]")
        elif la != lb:
            out.append(f"{origin}: label {la!r} -> {lb!r}")
        if va != vb:
            out.append(f"{origin}: value {va:g} -> {vb:g}")
        return out
    old = {(r[0], r[1]): r for r in a}
    new = {(r[0], r[1]): r for r in b}
    out = [f"{origin}: removed {_feat(old[k])}" for k in old if k not in new]
    out += [f"{origin}: added {_feat(new[k])}" for k in new if k not in old]
    out += [f"{origin}: {_feat(new[k])} value {old[k][3]:g} -> {new[k][3]:g}"
            for k in new if k in old and old[k][3] != new[k][3]]
    return out


def _diff_map(what: str, a: dict, b: dict) -> list[str]:
    out = []
    for k in sorted(set(a) | set(b)):
        if k not in b:
            out.append(f"{what} {k} removed")
        elif k not in a:
            out.append(f"{what} {k} added")
        elif a[k] != b[k]:
            out.append(f"{what} {k} changed {_h(a[k])} -> {_h(b[k])}")
    return out


def diff_lock(old: dict, new: dict) -> list[str]:
    """Human-readable differences between two lock documents, empty when they agree on
    everything but the steerc version and the rules' line numbers."""
    out: list[str] = []
    if old.get("version") != new.get("version"):
        out.append(f"lock format version {old.get('version')} -> {new.get('version')}")
    if old.get("spec") != new.get("spec"):
        out.append(f"spec {old.get('spec')} -> {new.get('spec')}")
    out += _diff_map("spec file", old.get("files", {}), new.get("files", {}))
    mo, mn = old.get("model") or {}, new.get("model") or {}
    if mo.get("ref") != mn.get("ref"):
        out.append(f"model {mo.get('ref')} -> {mn.get('ref')}")
    elif mo.get("fingerprint") != mn.get("fingerprint"):
        out.append(f"model fingerprint changed {_h(mo.get('fingerprint'))} -> {_h(mn.get('fingerprint'))}")
    so, sn = old.get("saes", {}), new.get("saes", {})
    for alias in sorted(set(so) | set(sn)):
        a, b = so.get(alias), sn.get(alias)
        if a is None or b is None:
            out.append(f"SAE {alias} {'added' if a is None else 'removed'}")
            continue
        if a["path"] != b["path"]:
            out.append(f"SAE {alias} path {a['path']} -> {b['path']}")
        if a["sha256"] != b["sha256"]:
            out.append(f"SAE {alias} hash changed {_h(a['sha256'])} -> {_h(b['sha256'])}")
    co, cn = old.get("catalogue"), new.get("catalogue")
    if (co is None) != (cn is None):
        out.append(f"catalogue {'added' if co is None else 'removed'}")
    elif co and cn:
        if co["path"] != cn["path"]:
            out.append(f"catalogue path {co['path']} -> {cn['path']}")
        if co["sha256"] != cn["sha256"]:
            out.append(f"catalogue hash changed {_h(co['sha256'])} -> {_h(cn['sha256'])}")
    out += _diff_map("schema", old.get("schemas", {}), new.get("schemas", {}))
    ro, rn = _keyed(old.get("rules", [])), _keyed(new.get("rules", []))
    for k, r in ro.items():
        if k not in rn:
            out.append(f"rule removed: {r['origin']}")
    for k, r in rn.items():
        if k not in ro:
            out.append(f"rule added: {r['origin']}")
        else:
            out += _diff_rule(r["origin"], ro[k]["features"], r["features"])
    return out


def check_locked(new: dict, lock_path: str | os.PathLike, spec: str,
                 carried: list[Diagnostic] = ()) -> None:
    """Raise E222 (with the diff, plus `carried` warnings) when `new` differs from the lock file."""
    diff = diff_lock(read_lock(lock_path), new)
    if diff:
        raise DiagnosticError(list(carried) + [Diagnostic(
            "E222", f"resolution differs from {lock_path}:\n    " + "\n    ".join(diff), None,
            f"if the change is intended, run `steerc check {spec} --write-lock`")])
