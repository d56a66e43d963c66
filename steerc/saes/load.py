"""load_sae: pick a format by sniffing (or by name) and load it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from . import errors
from .registry import FORMATS
from .sae import SAE
from ..diagnostics import did_you_mean


def detect_format(path: "str | Path") -> Optional[str]:
    """The name of the first registered format whose `sniff` accepts `path`, else None."""
    p = Path(path)
    for name, mod in FORMATS.items():
        if mod.sniff(p):
            return name
    return None


def load_sae(path: "str | Path", *, format: Optional[str] = None, allow_pickle: bool = False,
             device: str = "cpu", hook_name: Optional[str] = None,
             norm_scaling_factor: Optional[float] = None) -> SAE:
    """Load the SAE at `path` (a folder or file) lazily.

    format: a key of FORMATS; default: detected from the files present.
    allow_pickle: torch-pickled formats (OpenAI, Goodfire) are refused without it (E307);
        with it they are read with `torch.load(weights_only=True)`.
    hook_name: overrides / supplies the hook point (needed where the layout lacks one).
    norm_scaling_factor: SAELens `expected_average_only_in` factor to fold into the weights.
    Raises DiagnosticError (E3xx) naming the file and key on any problem.
    """
    p = Path(path)
    if not os.path.exists(p):
        errors.fail(errors.MISSING_FILE, p, "no such file or folder")
    if format is None:
        format = detect_format(p)
        if format is None:
            listing = sorted(x.name for x in p.iterdir())[:12] if os.path.isdir(p) else [p.name]
            errors.fail(errors.UNKNOWN_FORMAT, p, f"not a recognised SAE layout (found {listing})",
                        f"supported formats: {', '.join(FORMATS)}; pass format= to choose one")
    if format not in FORMATS:
        errors.fail(errors.UNKNOWN_FORMAT, p, f"unknown SAE format '{format}'",
                    did_you_mean(format, FORMATS) or f"supported formats: {', '.join(FORMATS)}")
    sae = FORMATS[format].load(p, device=device, allow_pickle=allow_pickle, hook_name=hook_name,
                               norm_scaling_factor=norm_scaling_factor)
    check_config(sae)
    return sae


def check_config(sae: SAE) -> None:
    """E303 for config values no format may hold, whichever loader read them: a TopK `k`
    that is not a positive integer compiles, then fails on the first forward pass."""
    c = sae.cfg
    k = c.k
    whole = isinstance(k, (int, float)) and not isinstance(k, bool) and float(k).is_integer()
    if c.architecture == "topk" and not (whole and k >= 1):
        errors.fail(errors.BAD_CONFIG, sae.path, f"TopK k is {c.k!r}; it must be a positive integer",
                    "k is how many features fire per token (e.g. 32)")
