"""Helpers shared by the format loaders: JSON configs, dtype strings, hook checks."""

from __future__ import annotations

import os
import json
import math
from pathlib import Path
from typing import Any, Optional

from .. import errors
from ...diagnostics import did_you_mean
from ...files import read
from ..hooks import normalize_hook_name

# config dtype string -> torch dtype name (names, not torch dtypes: configs are read torch-free)
DTYPES = {
    "float32": "float32", "float16": "float16", "bfloat16": "bfloat16",
    "float64": "float64", "float": "float32", "half": "float16",
}


def read_json(path: Path) -> dict:
    """A JSON object from `path`; E300 when missing, E303 when unreadable."""
    if not os.path.isfile(path):
        errors.fail(errors.MISSING_FILE, path, "file not found")
    text = read.read_text(path, read.SAE_CONFIG)  # E303: not a regular file, too large, not UTF-8
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as e:
        errors.fail(errors.BAD_CONFIG, path, f"not valid JSON ({str(e)[:200] or 'nested too deeply'})")
    if not isinstance(data, dict):
        errors.fail(errors.BAD_CONFIG, path, "expected a JSON object")
    return data


def require(cfg: dict, key: str, path: Path, kind: "type | tuple[type, ...]" = object) -> Any:
    """cfg[key], E303 naming file and key if it is missing or of the wrong type."""
    if key not in cfg or cfg[key] is None:
        errors.fail(errors.BAD_CONFIG, path, f"missing config key '{key}'",
                    did_you_mean(key, cfg.keys()))
    value = cfg[key]
    if kind is int and not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value) \
            and int(value) == value:
        if value < 1:  # d_in, d_sae, k, expansion factors: a width of 0 or -3 is no SAE
            errors.fail(errors.BAD_CONFIG, path, f"config key '{key}' should be a positive whole number, got {value}")
        return int(value)
    if kind is not object and not isinstance(value, kind):
        errors.fail(errors.BAD_CONFIG, path,
                    f"config key '{key}' should be {_kind_name(kind)}, got {type(value).__name__}")
    return value


def section(cfg: dict, key: str, path: Path) -> dict:
    """cfg[key] when it is a JSON object, {} when it is absent or null; E303 for any other
    type (a `metadata` that is a list used to end in an AttributeError)."""
    value = cfg.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        errors.fail(errors.BAD_CONFIG, path, f"config key '{key}' should be an object, got {type(value).__name__}")
    return value


def positive_number(value: Any, path: Path, key: str) -> float:
    """A finite number > 0 (a scale steerc divides by); E303 otherwise (0 used to end in
    ZeroDivisionError, a string in ValueError)."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0
    if not ok:
        errors.fail(errors.BAD_CONFIG, path, f"config key '{key}' should be a finite number > 0, got {value!r:.40}")
    return float(value)


def _kind_name(kind: "type | tuple[type, ...]") -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(k.__name__ for k in kinds)


def parse_dtype(s: Any, path: Path, key: str = "dtype") -> str:
    """'float32' or the old 'torch.float32' -> the torch dtype name ('float32'); E306 otherwise."""
    name = str(s).removeprefix("torch.")
    if name not in DTYPES:
        errors.fail(errors.UNKNOWN_ARCH, path, f"unknown dtype '{s}' in config key '{key}'",
                    did_you_mean(name, DTYPES) or f"expected one of {sorted(DTYPES)}")
    return DTYPES[name]


def dtype_name(dt: object) -> str:
    """'float32' for torch.float32, 'float32' or 'torch.float32'."""
    return str(dt).removeprefix("torch.")


def hook_or_fail(raw: Optional[str], path: Path, key: str) -> str:
    """Normalise a hook name read from config key `key`; E311 if unrecognised."""
    if raw is None:
        errors.fail(errors.NO_HOOK, path, f"no hook point (config key '{key}' missing)",
                    "pass hook_name= to load_sae")
    hook = normalize_hook_name(str(raw))
    if hook is None:
        errors.fail(errors.NO_HOOK, path, f"unrecognised hook point '{raw}' (config key '{key}')",
                    "steerc understands TransformerLens names such as blocks.3.hook_resid_post")
    return hook


def explicit_hook(hook_name: Optional[str], path: Path) -> Optional[str]:
    """Normalise a caller-given hook name (None passes through)."""
    return None if hook_name is None else hook_or_fail(hook_name, path, "hook_name argument")
