"""The code files a compiled checkpoint ships, and their bytes: one place for `compile`, which
writes them, and `verify`, which refuses any other code (steerc/verify/integrity.py).

Importing this module imports neither torch nor transformers: verify checks the code before
it loads anything.

    hooks checkpoints   configuration_steerc.py (one line rendered: the base model type),
                        modeling_steerc.py and steered_model.py (steerc/runtime/, verbatim)
    `enforce json`      custom_generate/generate.py (steerc/guard/shipped_generate.py)
"""

from __future__ import annotations

import re
from pathlib import Path

_PKG = Path(__file__).resolve().parents[1]  # the steerc package
RUNTIME_DIR = _PKG / "runtime"
CONFIG_FILE = "configuration_steerc.py"
MODELING_FILE = "modeling_steerc.py"
WRAPPER_FILE = "steered_model.py"
CODE_FILES = (CONFIG_FILE, MODELING_FILE, WRAPPER_FILE)
AUTO_MAP = {"AutoConfig": "configuration_steerc.SteercConfig",
            "AutoModelForCausalLM": "steered_model.SteercForCausalLM"}
GUARD_DIR = "custom_generate"
GUARD_CODE = f"{GUARD_DIR}/generate.py"
SHIPPED_GENERATE = _PKG / "guard" / "shipped_generate.py"
GUARD_FILE = "guard.json"    # data the guard reads, recorded (and hashed) with the code
SCHEMA_FILE = "schema.json"
REQUIREMENTS_FILE = "requirements.txt"
GUARD_DATA = tuple(f"{GUARD_DIR}/{n}" for n in (REQUIREMENTS_FILE, GUARD_FILE, SCHEMA_FILE))
_BASE_LINE = re.compile(r'^BASE_MODEL_TYPE = "[a-z0-9_]+"$', re.M)
_BASE_LINE_BYTES = re.compile(rb'^BASE_MODEL_TYPE = "([a-z0-9_]+)"$', re.M)


def render_configuration(base_type: str) -> str:
    """configuration_steerc.py with BASE_MODEL_TYPE set to `base_type` (its only change)."""
    src = (RUNTIME_DIR / CONFIG_FILE).read_text(encoding="utf-8")
    out, n = _BASE_LINE.subn(f'BASE_MODEL_TYPE = "{base_type}"', src)
    assert n == 1, "configuration_steerc.py must hold exactly one BASE_MODEL_TYPE line"
    return out


def code_bytes(path: str, base_type: str) -> bytes | None:
    """The bytes compile writes at checkpoint-relative `path` for a base of `base_type`, or
    None when it never writes code there."""
    if path == GUARD_CODE:
        return SHIPPED_GENERATE.read_bytes()
    if path in (MODELING_FILE, WRAPPER_FILE):
        return (RUNTIME_DIR / path).read_bytes()  # verbatim
    if path == CONFIG_FILE:
        return render_configuration(base_type).encode("utf-8")
    return None


def shipped_code(path: str, data: bytes) -> bytes | None:
    """What this steerc version writes at `path`, for checking a file found there (`data`),
    or None when it never writes code there. `data` only supplies the base model type of
    `configuration_steerc.py`: one line that must match the strict pattern."""
    if path != CONFIG_FILE:
        return code_bytes(path, "")
    found = _BASE_LINE_BYTES.findall(data)
    if len(found) != 1:
        return b""  # equal to no file holding the line
    return code_bytes(path, found[0].decode())
