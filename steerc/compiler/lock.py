"""`<spec>.lock` (`no_code.steer.lock`): what a spec resolved to, and the hashes of everything it read.

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
from steerc.files.hashing import file_sha256, model_fingerprint
from steerc.compiler.ir import HubSource, Program
from steerc.diagnostics import Diagnostic, DiagnosticError
from steerc.files import read
from steerc.files.write import Inputs, dumps_json, write_atomic

LOCK_VERSION = 1
LOCK_SUFFIX = ".lock"  # `no_code.steer` -> `no_code.steer.lock`, beside it
LOCK_NAME = "steer.lock"  # the name inside a compiled checkpoint (one spec per checkpoint)
OLD_SHARED_LOCK = "steer.lock"  # older steerc: one lock shared by every spec of a folder
SCHEMA_PATH = Path(__file__).with_name("lock.schema.json")  # same bytes as specs/schemas/


def default_lock_path(spec_file: str | os.PathLike) -> Path:
    """`<spec>.lock` beside the spec (`specs/no_code.steer` -> `specs/no_code.steer.lock`):
    one lock per spec, so two specs in one folder never compare against each other's."""
    spec = Path(os.path.abspath(spec_file))
    # not with_name: a spec path of "/" has no name, and is reported as no spec file later
    return spec.parent / (spec.name + LOCK_SUFFIX)


def _missing_lock_hint(path: Path) -> str:
    """How to create the lock; when only the old shared `steer.lock` is there, how to move it."""
    old = path.with_name(OLD_SHARED_LOCK)
    if path.name == OLD_SHARED_LOCK or not old.is_file():
        return "create it with `steerc check SPEC --write-lock`"
    try:
        spec = json.loads(old.read_text(encoding="utf-8")).get("spec")
    except (OSError, ValueError, AttributeError):
        spec = None
    if spec is not None and spec == path.name.removesuffix(LOCK_SUFFIX):
        return (f"steerc now keeps one lock per spec, named for it; {old} was written for this "
                f"spec: rename it (`git mv {old} {path}`)")
    whose = f" (it locks {spec})" if spec else ""
    return (f"steerc now keeps one lock per spec, named for it; the old shared {old}{whose} is not "
            f"read: create this spec's lock with `steerc check SPEC --write-lock`")


def _rel(path: str, base: Path) -> str:
    return os.path.relpath(os.path.abspath(path), base).replace(os.sep, "/")


def build_lock(program: Program, lock_dir: str | os.PathLike,
               calibration: dict | None = None) -> dict[str, Any]:
    """The lock document of a resolved program (hashes computed now; cached by stat);
    `calibration`: the entry `steerc calibrate` wrote (steerc/compiler/lock_calibration.py),
    kept only while the program has `auto` rules."""
    # abspath, not resolve(): the paths below are absolutized against the same working
    # directory, so a symlinked spelling of either end cancels out
    base = Path(os.path.abspath(lock_dir))
    schemas = set()
    if program.json is not None and program.json.schema_path:
        schemas.add(program.json.schema_path)
    schemas.update(e.arg for e in program.expects if e.kind == "matches_schema" and e.arg)
    # the hash the spec's reader took of the bytes it parsed (not a second read)
    prompt_files = {_rel(e.texts, base): e.texts_sha256 for e in program.expects if e.texts}
    prompt_files.update({_rel(p, base): h for b in program.saes if b.direction and b.direction.kind == "mean"
                         for p, h in zip(b.direction.paths, b.direction.sha256s)})
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
        "model": _model_entry(program, base),
        "saes": {b.alias: _sae_entry(b, base) for b in program.saes},
        "catalogue": None if program.catalogue is None else {
            "path": _rel(program.catalogue, base), "sha256": file_sha256(program.catalogue)},
        "schemas": {_rel(s, base): file_sha256(s) for s in sorted(schemas)},
        "rules": rules,
        # only when there are some: a lock without prompt files keeps its bytes
        **({"prompt_files": prompt_files} if prompt_files else {}),
        # only for a spec with `auto` rules: every other lock keeps its bytes
        **({"calibration": calibration} if calibration and program.calibrated else {}),
    }


def hub_entry(src: HubSource) -> dict[str, Any]:
    """A Hub source as the lock and the manifest record it."""
    out = {"repo": src.repo, "revision": src.revision, "commit": src.commit}
    if src.folder is not None:
        out["folder"] = src.folder
    if src.release is not None:
        out.update(release=src.release, sae_id=src.sae_id)
    return out


def _model_entry(program: Program, base: Path) -> dict[str, Any]:
    """A local model: its path and content fingerprint; a Hub model: its id and the commit
    the revision resolved to (the Hub pins the content)."""
    src = program.model_source
    if src is not None:
        return {"ref": src.repo, "fingerprint": None, "hub": hub_entry(src)}
    if os.path.isdir(program.model):
        return {"ref": _rel(program.model, base), "fingerprint": model_fingerprint(program.model)}
    return {"ref": program.model, "fingerprint": None}


def _sae_entry(b, base: Path) -> dict[str, Any]:
    out = {"path": b.source.uri() if b.source else _rel(b.path, base), "sha256": b.sha256,
           "hook": b.hook, "d_sae": b.d_sae}
    if b.source is not None:
        out["hub"] = hub_entry(b.source)
    d = b.direction
    if d is not None:
        out["direction"] = {"kind": d.kind, "files": {_rel(p, base): h for p, h in zip(d.paths, d.sha256s)},
                            **({"key": d.key} if d.key is not None else {}),
                            **({"layer": d.layer} if d.layer is not None else {}),
                            **({"last": True} if d.last else {})}
    return out


def dumps_lock(lock: dict) -> str:
    """Canonical text: sorted keys, 2-space indent, trailing newline (byte-stable); strict
    JSON (a non-finite rule value is E426)."""
    return dumps_json(lock, "the lock", sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def write_lock(lock: dict, path: str | os.PathLike, inputs: Inputs = ()) -> Path:
    """Write the lock through `files.write.write_atomic` (temp file, fsync, rename; never
    over an input in `inputs`, a symlink or a special file); returns the path."""
    write_atomic(path, dumps_lock(lock), inputs, "lock file")
    return Path(path)


def lock_schema() -> dict:
    """The lock file's JSON schema."""
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


def read_lock(path: str | os.PathLike) -> dict:
    """Read and validate a lock file; E223 (DiagnosticError) if missing or malformed."""
    path = Path(path)
    if not os.path.lexists(path):
        raise DiagnosticError([Diagnostic("E223", f"lock file not found: '{path}'", None,
                                          _missing_lock_hint(path))])
    doc = read.read_json(path, read.LOCK, want=None)  # the schema below names a wrong top level
    err = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(lock_schema()).iter_errors(doc))
    if err is not None:
        raise DiagnosticError([Diagnostic("E223", f"malformed lock file '{path}' at {err.json_path}: "
                                          f"{err.message}", None,
                                          "regenerate it with `steerc check SPEC --write-lock`")])
    return doc


# ---- diff ---------------------------------------------------------------------------------


def short_hash(x: str | None) -> str:
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


def diff_map(what: str, a: dict, b: dict) -> list[str]:
    out = []
    for k in sorted(set(a) | set(b)):
        if k not in b:
            out.append(f"{what} {k} removed")
        elif k not in a:
            out.append(f"{what} {k} added")
        elif a[k] != b[k]:
            out.append(f"{what} {k} changed {short_hash(a[k])} -> {short_hash(b[k])}")
    return out


def _diff_hub(what: str, a: dict | None, b: dict | None) -> list[str]:
    """A Hub source's differences; a moved revision names both commits."""
    if a == b:
        return []
    if a is None or b is None:
        return [f"{what} {'is now named on the Hub' if a is None else 'is no longer named on the Hub'}"]
    out = [f"{what} {k} {a.get(k)} -> {b.get(k)}" for k in ("repo", "revision", "folder", "release", "sae_id")
           if a.get(k) != b.get(k)]
    if a.get("commit") != b.get("commit"):
        rev = b.get("revision") or "the default branch"
        out.append(f"{what}: revision {rev} moved, commit {short_hash(a.get('commit'))} -> {short_hash(b.get('commit'))}"
                   if not out else f"{what} commit {short_hash(a.get('commit'))} -> {short_hash(b.get('commit'))}")
    return out


def diff_lock(old: dict, new: dict) -> list[str]:
    """Human-readable differences between two lock documents, empty when they agree on
    everything but the steerc version and the rules' line numbers."""
    out: list[str] = []
    if old.get("version") != new.get("version"):
        out.append(f"lock format version {old.get('version')} -> {new.get('version')}")
    if old.get("spec") != new.get("spec"):
        out.append(f"spec {old.get('spec')} -> {new.get('spec')}")
    out += diff_map("spec file", old.get("files", {}), new.get("files", {}))
    mo, mn = old.get("model") or {}, new.get("model") or {}
    if mo.get("ref") != mn.get("ref"):
        out.append(f"model {mo.get('ref')} -> {mn.get('ref')}")
    elif mo.get("fingerprint") != mn.get("fingerprint"):
        out.append(f"model fingerprint changed {short_hash(mo.get('fingerprint'))} -> {short_hash(mn.get('fingerprint'))}")
    else:
        out += _diff_hub(f"model {mn.get('ref')}", mo.get("hub"), mn.get("hub"))
    so, sn = old.get("saes", {}), new.get("saes", {})
    for alias in sorted(set(so) | set(sn)):
        a, b = so.get(alias), sn.get(alias)
        what = "direction" if (a or b).get("direction") else "SAE"
        if a is None or b is None:
            out.append(f"{what} {alias} {'added' if a is None else 'removed'}")
            continue
        if a["path"] != b["path"]:
            out.append(f"{what} {alias} path {a['path']} -> {b['path']}")
        if a["sha256"] != b["sha256"]:
            out.append(f"{what} {alias} hash changed {short_hash(a['sha256'])} -> {short_hash(b['sha256'])}")
        if a.get("direction") != b.get("direction") and a["sha256"] == b["sha256"]:
            out.append(f"{what} {alias} source changed")
        out += _diff_hub(f"SAE {alias}", a.get("hub"), b.get("hub"))
    co, cn = old.get("catalogue"), new.get("catalogue")
    if (co is None) != (cn is None):
        out.append(f"catalogue {'added' if co is None else 'removed'}")
    elif co and cn:
        if co["path"] != cn["path"]:
            out.append(f"catalogue path {co['path']} -> {cn['path']}")
        if co["sha256"] != cn["sha256"]:
            out.append(f"catalogue hash changed {short_hash(co['sha256'])} -> {short_hash(cn['sha256'])}")
    out += diff_map("schema", old.get("schemas", {}), new.get("schemas", {}))
    out += diff_map("prompt file", old.get("prompt_files", {}), new.get("prompt_files", {}))
    co, cn = old.get("calibration"), new.get("calibration")
    if (co is None) != (cn is None):
        out.append(f"calibration {'added' if co is None else 'removed'}")
    elif co and cn and co.get("t") != cn.get("t"):
        out.append(f"calibrated strength t {co.get('t')} -> {cn.get('t')}")
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
                 carried: list[Diagnostic] = (), stale: list[Diagnostic] = ()) -> None:
    """Raise E222 (with the diff, plus `carried` warnings) when `new` differs from the lock
    file; `stale` errors (E283, a calibration measured on other inputs) are raised with it."""
    diff = diff_lock(read_lock(lock_path), new)
    errors = list(stale)
    if diff:
        errors.append(Diagnostic(
            "E222", f"resolution differs from {lock_path}:\n    " + "\n    ".join(diff), None,
            f"if the change is intended, run `steerc check {spec} --write-lock`"
            + (f" (a spec with `auto`: `steerc calibrate {spec}`)" if new.get("calibration") else "")))
    if errors:
        raise DiagnosticError(list(carried) + errors)
