"""The lock's `calibration` entry: the strength `steerc calibrate` chose for a spec's `auto`
rules, and what it was measured on.

    "calibration": {"t": 0.25, "grid": [...], "kl": 0.012, "inputs": {...}}

`inputs` is a snapshot of what the choice depends on (every rule's text, the expectations,
the model, the SAEs, the catalogue, the prompt and schema files; paths relative to the
spec), taken when it was calibrated.
`check --write-lock` carries the entry over unchanged, so the snapshot stays the one the
search saw; `--locked` compares it with the inputs now and fails with E283 ("recalibrate")
when they differ. A lock without `auto` rules has no entry and keeps its bytes.
"""

from __future__ import annotations

import math
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from steerc.compiler.ir import Program
from steerc.compiler.resolve.auto import Strength
from steerc.diagnostics import Diagnostic, DiagnosticError
from steerc.files import read

KEY = "calibration"


def read_strength(lock_path: Path, spec: str) -> tuple[Strength, dict | None]:
    """The calibrated t in the lock at `lock_path` (None when there is none, with why), and
    its `calibration` entry (to carry into a rewritten lock). Reads plain JSON, no schema:
    `--locked` validates the whole file (E223); here a bad entry only means "not calibrated"."""
    shown = os.path.relpath(lock_path)
    if not os.path.lexists(lock_path):
        return Strength(None, shown, spec, "the lock does not exist"), None
    try:  # the guarded reader: a FIFO or a device is refused, never read
        doc = read.read_json(lock_path, read.LOCK, want=None)
    except DiagnosticError as e:
        return Strength(None, shown, spec, f"the lock cannot be read ({e.diagnostics[0].message})"), None
    entry = doc.get(KEY) if isinstance(doc, dict) else None
    t = entry.get("t") if isinstance(entry, dict) else None
    if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t):
        return Strength(None, shown, spec, "the lock has no calibration"), None
    return Strength(float(t), shown, spec), entry


def inputs_of(lock: dict, program: Program, lock_dir: Path) -> dict[str, Any]:
    """The snapshot a calibration depends on, from a lock document built for `program` in
    `lock_dir`. Paths are relative to the spec's folder, not the lock's, so a lock written
    elsewhere (`--lock PATH`) records the same snapshot."""
    spec_dir = Path(os.path.dirname(os.path.abspath(program.spec_file)))

    def rebase(path: str) -> str:
        return os.path.relpath(os.path.normpath(os.path.join(lock_dir, path)), spec_dir).replace(os.sep, "/")

    cat = lock.get("catalogue")
    model = dict(lock.get("model") or {})
    if model.get("fingerprint") is not None and "hub" not in model:  # a local folder
        model["ref"] = rebase(model["ref"])
    return {
        "rules": [r["origin"] for r in lock.get("rules", [])],
        "expects": [_expect(e, spec_dir) for e in program.expects],
        "model": model,
        "saes": {a: s["sha256"] for a, s in lock.get("saes", {}).items()},
        "catalogue": None if cat is None else cat["sha256"],
        "prompt_files": {rebase(k): v for k, v in lock.get("prompt_files", {}).items()},
        "schemas": {rebase(k): v for k, v in lock.get("schemas", {}).items()},
    }


def _expect(e, base: Path) -> str:
    """One expectation as written, its file relative to `base` (not to the working
    directory, which would make every other directory look like a change)."""
    from steerc.compiler.expect_text import expect_line

    texts = None if not e.texts else os.path.relpath(os.path.abspath(e.texts), base).replace(os.sep, "/")
    return expect_line(replace(e, texts=texts, baseline=None))


def entry(t: float, grid: list[float], kl: float, inputs: dict) -> dict[str, Any]:
    """A new `calibration` entry: the chosen t, the grid searched, the KL at t, the snapshot."""
    return {"t": float(t), "grid": [float(g) for g in grid], "kl": float(kl), "inputs": inputs}


def drift(old: dict, new: dict) -> list[str]:
    """Readable differences between two input snapshots (empty when they agree)."""
    from steerc.compiler.lock import diff_map, short_hash

    out: list[str] = []
    ro, rn = old.get("rules", []), new.get("rules", [])
    out += [f"rule removed: {r}" for r in ro if r not in rn]
    out += [f"rule added: {r}" for r in rn if r not in ro]
    eo, en = old.get("expects", []), new.get("expects", [])
    out += [f"expectation removed: {e}" for e in eo if e not in en]
    out += [f"expectation added: {e}" for e in en if e not in eo]
    mo, mn = old.get("model") or {}, new.get("model") or {}
    if mo != mn:
        if mo.get("ref") != mn.get("ref"):
            out.append(f"model {mo.get('ref')} -> {mn.get('ref')}")
        else:
            out.append(f"model {mn.get('ref')} changed (fingerprint {short_hash(mo.get('fingerprint'))} "
                       f"-> {short_hash(mn.get('fingerprint'))})")
    out += diff_map("SAE", old.get("saes", {}), new.get("saes", {}))
    if old.get("catalogue") != new.get("catalogue"):
        out.append(f"catalogue changed {short_hash(old.get('catalogue'))} -> {short_hash(new.get('catalogue'))}")
    out += diff_map("prompt file", old.get("prompt_files", {}), new.get("prompt_files", {}))
    out += diff_map("schema", old.get("schemas", {}), new.get("schemas", {}))
    return out


def check_calibration(new: dict, program: Program, lock_path: Path, spec: str) -> list[Diagnostic]:
    """E283 when the lock's calibration was measured on other inputs than `new`'s (the lock
    just built, calibration entry carried over); [] when it matches or there is none."""
    cal = new.get(KEY)
    if not isinstance(cal, dict) or not isinstance(cal.get("inputs"), dict):
        return []
    lines = drift(cal["inputs"], inputs_of(new, program, Path(os.path.abspath(lock_path)).parent))
    if not lines:
        return []
    return [Diagnostic("E283", f"the calibrated strength in {lock_path} (t = {cal['t']:g}) was measured "
                       "on other inputs:\n    " + "\n    ".join(lines), None,
                       f"recalibrate: `steerc calibrate {spec}` searches the strength again and "
                       "rewrites the lock")]
