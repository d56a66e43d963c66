"""Torch-pickled state dicts (OpenAI, Goodfire): the pickle policy and safe sniffing.

Policy: unpickling can run arbitrary code, so a pickle is refused (E307) unless the user
passes --allow-pickle; even then it is read with `torch.load(weights_only=True)`, whose
restricted unpickler admits only tensors and plain containers/strings. Sniffing never
unpickles: it looks for key names in the raw bytes of the archive's `data.pkl`.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

from .. import errors

if TYPE_CHECKING:  # imported only when a pickle is actually loaded (after --allow-pickle)
    import torch

SUFFIXES = (".pt", ".pth", ".bin", ".ckpt")


def pickle_bytes(path: Path, limit: int = 1 << 22) -> bytes:
    """The pickle stream of a torch.save file (zip `*/data.pkl`, or the legacy raw file), at
    most `limit` bytes; b"" when unreadable."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as z:
                names = [n for n in z.namelist() if n.endswith("data.pkl")]
                if names:
                    with z.open(names[0]) as f:
                        return f.read(limit)
                return b""
        with open(path, "rb") as f:
            return f.read(limit)
    except (OSError, zipfile.BadZipFile):
        return b""


def mentions(path: Path, *needles: str) -> bool:
    """True if `path` is a torch pickle whose key names include every needle (no unpickling)."""
    if not (os.path.isfile(path) and path.suffix in SUFFIXES):
        return False
    data = pickle_bytes(path)
    return all(n.encode() in data for n in needles)


def load_state_dict(path: Path, allow_pickle: bool) -> dict:
    """torch.load(weights_only=True, mmap when possible) after the allow_pickle check."""
    if not os.path.isfile(path):
        errors.fail(errors.MISSING_FILE, path, "file not found")
    if not allow_pickle:
        errors.fail(errors.PICKLE_REFUSED, path,
                    "is a Python pickle (torch.save); loading pickles can run arbitrary code, "
                    "so it is refused without --allow-pickle",
                    "pass --allow-pickle (allow_pickle=True) if you trust this file; it is then "
                    "read with torch.load(weights_only=True)")
    import torch

    try:
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as e:  # legacy (non-zip) files cannot be memory-mapped
            if "mmap" not in str(e):
                raise
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        errors.fail(errors.CORRUPT_FILE, path,
                    f"pickle holds objects other than tensors and plain data, refused ({str(e).splitlines()[0]})",
                    "re-save it as a plain state dict of tensors, or as safetensors")
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as e:
        errors.fail(errors.CORRUPT_FILE, path, f"cannot read torch file ({str(e).splitlines()[0]})")
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        errors.fail(errors.CORRUPT_FILE, path, f"expected a state dict, found {type(obj).__name__}")
    return obj


def tensors_of(d: dict) -> "dict[str, torch.Tensor]":
    """The tensor entries of a state dict."""
    import torch

    return {k: v for k, v in d.items() if isinstance(v, torch.Tensor)}
