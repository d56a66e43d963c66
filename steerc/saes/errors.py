"""E3xx diagnostics for SAE files. Every message names the file (and key, when there is one).

Codes (documented in docs/saes.md):
    E300 file or folder missing          E307 pickle refused (needs --allow-pickle)
    E301 format unknown / not detected   E308 corrupt or truncated safetensors / npz / pickle
    E302 tensor key missing               E309 SAE d_in differs from the model's hidden size
    E303 config missing, unreadable, or a required config key missing / wrong type
    E304 shape mismatch                   E310 known but unsupported variant (transcoder, ...)
    E305 NaN or Inf in weights            E311 hook point cannot be determined
    E306 unknown architecture / activation / normalisation / dtype string
    E312 feature index out of range
"""

from __future__ import annotations

from pathlib import Path
from typing import NoReturn, Optional

from ..diagnostics import Diagnostic, DiagnosticError

MISSING_FILE = "E300"
UNKNOWN_FORMAT = "E301"
MISSING_KEY = "E302"
BAD_CONFIG = "E303"
SHAPE_MISMATCH = "E304"
NON_FINITE = "E305"
UNKNOWN_ARCH = "E306"
PICKLE_REFUSED = "E307"
CORRUPT_FILE = "E308"
D_MODEL_MISMATCH = "E309"
UNSUPPORTED = "E310"
NO_HOOK = "E311"
BAD_INDEX = "E312"


def fail(code: str, path: "str | Path | None", message: str, hint: Optional[str] = None) -> NoReturn:
    """Raise a one-diagnostic DiagnosticError; the message is prefixed with the file path."""
    where = f"{path}: " if path is not None else ""
    raise DiagnosticError([Diagnostic(code, where + message, None, hint)])
