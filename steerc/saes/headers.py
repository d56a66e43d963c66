"""Tensor names, shapes and dtypes read from file headers, without torch or numpy.

`steerc check` needs only this much of an SAE (its config, the shapes to check against it,
and the bytes to hash), so this module imports neither torch nor numpy: importing torch
alone costs seconds. Reading tensor data lives in store.py, which imports them lazily.

- safetensors: u64 little-endian header length, then a JSON header
  `{name: {"dtype", "shape", "data_offsets": [begin, end]}}`, then the data section.
- .npy (a member of an .npz): magic `\\x93NUMPY`, version (1.0 / 2.0 / 3.0), u16 (1.0) or
  u32 header length, then a Python dict literal `{'descr', 'fortran_order', 'shape'}`
  (numpy's NEP 1 format; parsed with `ast.literal_eval`, as numpy itself does).

Dtypes are named as torch names them without the `torch.` prefix ("float32", "bfloat16").
"""

from __future__ import annotations

import ast
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Optional

from steerc.checkpoint.dtypes import TORCH_NAMES as ST_DTYPES  # tag -> torch dtype name
from steerc.checkpoint.header import BadHeader, parse_header
from . import errors

# .npy `descr` kind+size (byte order stripped) -> torch dtype name (what torch.from_numpy gives)
NPY_DTYPES = {
    "f2": "float16", "f4": "float32", "f8": "float64", "i1": "int8", "i2": "int16",
    "i4": "int32", "i8": "int64", "u1": "uint8", "u2": "uint16", "u4": "uint32", "u8": "uint64",
    "b1": "bool", "c8": "complex64", "c16": "complex128",
}
NPY_MAGIC = b"\x93NUMPY"


def torch_dtype(name: "str | object"):
    """The torch dtype for a dtype name ("float32" or "torch.float32"); imports torch."""
    import torch

    if isinstance(name, torch.dtype):
        return name
    return getattr(torch, str(name).removeprefix("torch."))


def read_safetensors_header(path: Path) -> tuple[dict, int]:
    """Parse and check a safetensors header (`steerc.checkpoint.header.parse_header`: sizes,
    dtypes, offsets, the file length), without `__metadata__`.

    Returns ({name: entry}, byte offset of the data section); E300/E308 naming the file."""
    try:
        header, start = parse_header(path, dtypes=ST_DTYPES)
    except BadHeader as e:
        errors.fail(errors.MISSING_FILE if e.missing else errors.CORRUPT_FILE, path, e.message, e.hint)
    header.pop("__metadata__", None)
    return header, start


@dataclass(frozen=True)
class NpyHeader:
    """One .npy array's header: shape, dtype (`descr` as numpy spells it, and torch's name)."""

    shape: tuple[int, ...]
    descr: str             # e.g. "<f4"; hand it to numpy.dtype when reading the data
    dtype_name: str        # e.g. "float32"
    fortran_order: bool


def read_npy_header(f: BinaryIO) -> NpyHeader:
    """The header of the .npy stream `f`, leaving `f` at the array data.

    ValueError for anything numpy would not read, or steerc could not turn into a tensor
    (object / structured / non-native byte order arrays)."""
    magic = f.read(8)
    if len(magic) < 8 or magic[:6] != NPY_MAGIC:
        raise ValueError("not a .npy array (bad magic)")
    version = (magic[6], magic[7])
    if version == (1, 0):
        (hlen,) = struct.unpack("<H", f.read(2))
    elif version in ((2, 0), (3, 0)):
        (hlen,) = struct.unpack("<I", f.read(4))
    else:
        raise ValueError(f"unsupported .npy format version {version}")
    raw = f.read(hlen)
    if len(raw) < hlen:
        raise ValueError("truncated .npy header")
    try:
        d = ast.literal_eval(raw.decode("utf-8" if version == (3, 0) else "latin1"))
    except (SyntaxError, ValueError, UnicodeDecodeError, MemoryError, RecursionError) as e:
        raise ValueError(f"cannot parse .npy header ({e})") from None
    if not (isinstance(d, dict) and {"descr", "fortran_order", "shape"} <= d.keys()):
        raise ValueError(f".npy header is not a dict with descr/fortran_order/shape: {d!r:.200}")
    descr, shape, fortran = d["descr"], d["shape"], d["fortran_order"]
    if not (isinstance(shape, tuple) and all(isinstance(s, int) and s >= 0 for s in shape)):
        raise ValueError(f".npy shape is not a tuple of sizes: {shape!r:.200}")
    if not isinstance(fortran, bool):
        raise ValueError(f".npy fortran_order is not a bool: {fortran!r:.200}")
    name = NPY_DTYPES.get(descr[1:]) if isinstance(descr, str) and descr[:1] in "<|=" else None
    if name is None:
        raise ValueError(f"unsupported array dtype {descr!r:.200} (expected a little-endian "
                         "number or bool array)")
    return NpyHeader(tuple(shape), descr, name, fortran)


@dataclass(frozen=True)
class NpzMember:
    """An .npz member's header and where its data starts in the zip (None: compressed)."""

    header: NpyHeader
    offset: Optional[int]


def read_npz_headers(path: Path) -> dict[str, NpzMember]:
    """Every array of an .npz by name, from the zip directory and .npy headers only."""
    out: dict[str, NpzMember] = {}
    try:
        with zipfile.ZipFile(path) as z, open(path, "rb") as raw:
            for info in z.infolist():
                if not info.filename.endswith(".npy"):
                    continue
                with z.open(info) as m:
                    header = read_npy_header(m)
                    header_len = m.tell()
                offset = None
                if info.compress_type == zipfile.ZIP_STORED:
                    # the local file header: 30 fixed bytes, then name and extra field
                    raw.seek(info.header_offset)
                    local = raw.read(30)
                    name_len, extra_len = struct.unpack("<HH", local[26:30])
                    offset = info.header_offset + 30 + name_len + extra_len + header_len
                out[info.filename[:-4]] = NpzMember(header, offset)
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, struct.error) as e:
        errors.fail(errors.CORRUPT_FILE, path, f"not a readable .npz archive ({e})")
    return out
