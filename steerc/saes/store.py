"""Lazy tensor stores: read whole tensors, selected rows, or selected columns of one file.

A store knows each tensor's shape and dtype without reading its data (the safetensors
header, the npy header inside an npz, a memory-mapped torch pickle), so shape checks are
free and a 3-feature selection of a 1M-feature SAE touches only the pages it needs.

- safetensors: rows via `safe_open(...).get_slice`; columns of a row-major [d_in, d_sae]
  matrix via `np.memmap` of the data region and one fancy-index `mm[:, idx]` (it touches
  one page per row and column; see bench/sae_column_read.py for the measured alternatives).
- npz: `np.load(mmap_mode=...)` ignores mmap inside a zip, so for members stored
  uncompressed (what `np.savez` writes) we memory-map the member's data at its offset in
  the zip ourselves; compressed members are read whole, once, and cached.
- torch pickles (only after `allow_pickle`): `torch.load(weights_only=True, mmap=True)`.
"""

from __future__ import annotations

import json
import math
import mmap
import struct
import zipfile
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch

from . import errors

# safetensors dtype tag -> (torch dtype, numpy dtype of the same width used for memmap)
_ST_DTYPES = {
    "F64": (torch.float64, np.float64), "F32": (torch.float32, np.float32),
    "F16": (torch.float16, np.float16), "BF16": (torch.bfloat16, np.uint16),
    "I64": (torch.int64, np.int64), "I32": (torch.int32, np.int32),
    "I16": (torch.int16, np.int16), "I8": (torch.int8, np.int8),
    "U8": (torch.uint8, np.uint8), "BOOL": (torch.bool, np.bool_),
}
MAX_HEADER_BYTES = 100_000_000  # the safetensors library's own limit


def _no_readahead(mm: np.memmap) -> None:
    """madvise(MADV_RANDOM): a strided column read then faults in one page per row instead
    of the kernel's readahead window (which reads nearly the whole matrix; see bench/)."""
    raw = getattr(mm, "_mmap", None)
    if raw is not None and hasattr(mmap, "MADV_RANDOM"):
        try:
            raw.madvise(mmap.MADV_RANDOM)
        except OSError:
            pass


def _np_to_torch(arr: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
    """Copy a (possibly memory-mapped) array into a torch tensor of `dtype` (bf16 via view)."""
    t = torch.from_numpy(np.ascontiguousarray(arr))
    return t.view(dtype) if dtype == torch.bfloat16 else t


class TensorStore:
    """Base class: name -> tensor with lazy whole / row / column reads."""

    path: Path

    def keys(self) -> list[str]:
        raise NotImplementedError

    def shape(self, key: str) -> tuple[int, ...]:
        raise NotImplementedError

    def dtype(self, key: str) -> torch.dtype:
        raise NotImplementedError

    def get(self, key: str) -> torch.Tensor:
        raise NotImplementedError

    def rows(self, key: str, idx: Sequence[int]) -> torch.Tensor:
        """`t[idx]` (dim 0), in the order given."""
        return self.get(key)[list(idx)]

    def cols(self, key: str, idx: Sequence[int]) -> torch.Tensor:
        """`t[:, idx]` (dim 1), in the order given."""
        return self.get(key)[:, list(idx)]

    def raw_chunks(self, key: str) -> Iterator[bytes]:
        """The tensor's little-endian row-major bytes, in chunks (for hashing)."""
        t = self.get(key).contiguous()
        yield _tensor_bytes(t)

    def has(self, key: str) -> bool:
        return key in self.keys()


def _tensor_bytes(t: torch.Tensor) -> bytes:
    t = t.detach().cpu().contiguous()
    if t.dtype in (torch.bfloat16,):
        t = t.view(torch.int16)
    return t.numpy().tobytes()


class SafetensorsStore(TensorStore):
    """A .safetensors file; the header is validated by us first so errors name the file."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._entries, self._data_start = _read_st_header(self.path)
        self._mm: dict[str, np.memmap] = {}

    def keys(self) -> list[str]:
        return list(self._entries)

    def shape(self, key: str) -> tuple[int, ...]:
        return tuple(self._entries[key]["shape"])

    def dtype(self, key: str) -> torch.dtype:
        return _ST_DTYPES[self._entries[key]["dtype"]][0]

    def _memmap(self, key: str) -> np.memmap:
        if key not in self._mm:
            e = self._entries[key]
            begin = self._data_start + e["data_offsets"][0]
            np_dtype = _ST_DTYPES[e["dtype"]][1]
            shape = tuple(e["shape"]) or (1,)
            mm = np.memmap(self.path, dtype=np_dtype, mode="r", offset=begin, shape=shape)
            _no_readahead(mm)
            self._mm[key] = mm
        return self._mm[key]

    def get(self, key: str) -> torch.Tensor:
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(self.path), framework="pt", device="cpu") as f:
                return f.get_tensor(key)
        except (SafetensorError, OSError) as e:
            errors.fail(errors.CORRUPT_FILE, self.path, f"cannot read tensor '{key}': {e}")

    def rows(self, key: str, idx: Sequence[int]) -> torch.Tensor:
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(self.path), framework="pt", device="cpu") as f:
                sl = f.get_slice(key)
                parts = [sl[i : i + 1] for i in idx]
        except (SafetensorError, OSError) as e:
            errors.fail(errors.CORRUPT_FILE, self.path, f"cannot read rows of '{key}': {e}")
        if not parts:
            return torch.empty((0, *self.shape(key)[1:]), dtype=self.dtype(key))
        return torch.cat(parts, dim=0)

    def cols(self, key: str, idx: Sequence[int]) -> torch.Tensor:
        mm = self._memmap(key)
        return _np_to_torch(mm[:, list(idx)], self.dtype(key))

    def raw_chunks(self, key: str) -> Iterator[bytes]:
        e = self._entries[key]
        begin, end = e["data_offsets"]
        with open(self.path, "rb") as f:
            f.seek(self._data_start + begin)
            left = end - begin
            while left > 0:
                chunk = f.read(min(left, 1 << 24))
                if not chunk:
                    errors.fail(errors.CORRUPT_FILE, self.path, f"tensor '{key}' is truncated")
                left -= len(chunk)
                yield chunk


def _read_st_header(path: Path) -> tuple[dict, int]:
    """Parse and check a safetensors header: sizes, dtypes, offsets, and the file length."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                errors.fail(errors.CORRUPT_FILE, path, "not a safetensors file (shorter than 8 bytes)")
            (n,) = struct.unpack("<Q", head)
            if n > MAX_HEADER_BYTES or n + 8 > size:
                errors.fail(errors.CORRUPT_FILE, path,
                            f"safetensors header claims {n} bytes but the file has {size}",
                            "the file is truncated or not a safetensors file; download it again")
            raw = f.read(n)
    except OSError as e:
        errors.fail(errors.MISSING_FILE, path, f"cannot read file: {e}")
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        errors.fail(errors.CORRUPT_FILE, path, f"safetensors header is not valid JSON ({e})")
    if not isinstance(header, dict):
        errors.fail(errors.CORRUPT_FILE, path, "safetensors header is not a JSON object")
    header.pop("__metadata__", None)
    data_len = size - 8 - n
    for key, e in header.items():
        try:
            dt, shape, (begin, end) = e["dtype"], [int(s) for s in e["shape"]], e["data_offsets"]
        except (KeyError, TypeError, ValueError):
            errors.fail(errors.CORRUPT_FILE, path, f"safetensors header entry '{key}' is malformed")
        if dt not in _ST_DTYPES:
            errors.fail(errors.CORRUPT_FILE, path, f"tensor '{key}' has unsupported dtype {dt}")
        nbytes = math.prod(shape) * np.dtype(_ST_DTYPES[dt][1]).itemsize
        if not (0 <= begin <= end) or end - begin != nbytes:
            errors.fail(errors.CORRUPT_FILE, path,
                        f"tensor '{key}' claims shape {shape} ({nbytes} bytes) but offsets {begin}..{end}")
        if end > data_len:
            errors.fail(errors.CORRUPT_FILE, path,
                        f"tensor '{key}' ends at byte {end} but the data section has {data_len} bytes",
                        "the file is truncated; download it again")
    return header, 8 + n


class DictStore(TensorStore):
    """Tensors already in memory (or memory-mapped by torch.load(mmap=True))."""

    def __init__(self, path: Path, tensors: dict[str, torch.Tensor]):
        self.path = Path(path)
        self._t = tensors

    def keys(self) -> list[str]:
        return list(self._t)

    def shape(self, key: str) -> tuple[int, ...]:
        return tuple(self._t[key].shape)

    def dtype(self, key: str) -> torch.dtype:
        return self._t[key].dtype

    def get(self, key: str) -> torch.Tensor:
        return self._t[key]


def _npy_header(f) -> tuple[tuple[int, ...], bool, np.dtype]:
    """(shape, fortran_order, dtype) of the .npy stream `f`, leaving it at the data."""
    fmt = np.lib.format
    version = fmt.read_magic(f)
    if version == (1, 0):
        return fmt.read_array_header_1_0(f)
    if version == (2, 0):
        return fmt.read_array_header_2_0(f)
    raise ValueError(f"unsupported .npy format version {version}")


class NpzStore(TensorStore):
    """A numpy .npz; uncompressed members are memory-mapped at their offset in the zip."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._meta: dict[str, tuple[tuple[int, ...], np.dtype, bool, int | None]] = {}
        self._cache: dict[str, np.ndarray] = {}
        try:
            with zipfile.ZipFile(self.path) as z, open(self.path, "rb") as raw:
                for info in z.infolist():
                    if not info.filename.endswith(".npy"):
                        continue
                    key = info.filename[:-4]
                    with z.open(info) as m:
                        shape, fortran, dtype = _npy_header(m)
                        header_len = m.tell()
                    offset = None
                    if info.compress_type == zipfile.ZIP_STORED and not dtype.hasobject:
                        raw.seek(info.header_offset)
                        local = raw.read(30)
                        name_len, extra_len = struct.unpack("<HH", local[26:30])
                        offset = info.header_offset + 30 + name_len + extra_len + header_len
                    self._meta[key] = (tuple(shape), dtype, fortran, offset)
        except (zipfile.BadZipFile, ValueError, OSError, EOFError) as e:
            errors.fail(errors.CORRUPT_FILE, self.path, f"not a readable .npz archive ({e})")

    def keys(self) -> list[str]:
        return list(self._meta)

    def shape(self, key: str) -> tuple[int, ...]:
        return self._meta[key][0]

    def dtype(self, key: str) -> torch.dtype:
        return torch.from_numpy(np.zeros(0, dtype=self._meta[key][1])).dtype

    def _array(self, key: str) -> np.ndarray:
        if key not in self._cache:
            shape, dtype, fortran, offset = self._meta[key]
            try:
                if offset is not None:
                    arr = np.memmap(self.path, dtype=dtype, mode="r", offset=offset,
                                    shape=shape or (1,), order="F" if fortran else "C")
                    arr = arr.reshape(shape) if not shape else arr
                else:
                    with np.load(self.path, allow_pickle=False) as z:
                        arr = z[key]
            except (ValueError, OSError, zipfile.BadZipFile) as e:
                errors.fail(errors.CORRUPT_FILE, self.path, f"cannot read array '{key}': {e}")
            self._cache[key] = arr
        return self._cache[key]

    def get(self, key: str) -> torch.Tensor:
        return torch.from_numpy(np.array(self._array(key)))

    def rows(self, key: str, idx: Sequence[int]) -> torch.Tensor:
        return torch.from_numpy(np.array(self._array(key)[list(idx)]))

    def cols(self, key: str, idx: Sequence[int]) -> torch.Tensor:
        return torch.from_numpy(np.array(self._array(key)[:, list(idx)]))
