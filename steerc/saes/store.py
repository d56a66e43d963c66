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

import mmap
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Sequence

from . import errors
from .headers import ST_DTYPES, read_npy_header, read_npz_headers, read_safetensors_header, torch_dtype

if TYPE_CHECKING:  # torch and numpy are imported where tensor data is read (see headers.py)
    import numpy as np
    import torch

# safetensors tag -> numpy dtype of the same width used for memmap (bf16 read as uint16)
_ST_NUMPY = {"F64": "float64", "F32": "float32", "F16": "float16", "BF16": "uint16",
             "I64": "int64", "I32": "int32", "I16": "int16", "I8": "int8", "U8": "uint8",
             "BOOL": "bool"}


def _no_readahead(mm: "np.memmap") -> None:
    """madvise(MADV_RANDOM): a strided column read then faults in one page per row instead
    of the kernel's readahead window (which reads nearly the whole matrix; see bench/)."""
    raw = getattr(mm, "_mmap", None)
    if raw is not None and hasattr(mmap, "MADV_RANDOM"):
        try:
            raw.madvise(mmap.MADV_RANDOM)
        except OSError:
            pass


def _np_to_torch(arr: "np.ndarray", dtype: "torch.dtype") -> "torch.Tensor":
    """Copy a (possibly memory-mapped) array into a torch tensor of `dtype` (bf16 via view)."""
    import numpy as np
    import torch

    t = torch.from_numpy(np.ascontiguousarray(arr))
    return t.view(dtype) if dtype == torch.bfloat16 else t


class TensorStore:
    """Base class: name -> tensor with lazy whole / row / column reads.

    `keys`, `shape`, `dtype_name` and (for file-backed stores) `raw_chunks` read headers
    and bytes only, never importing torch; the tensor reads import it."""

    path: Path

    def keys(self) -> list[str]:
        raise NotImplementedError

    def shape(self, key: str) -> tuple[int, ...]:
        raise NotImplementedError

    def dtype_name(self, key: str) -> str:
        """torch's name for the tensor's dtype, without the prefix ("float32")."""
        raise NotImplementedError

    def dtype(self, key: str) -> "torch.dtype":
        """The tensor's torch dtype (imports torch)."""
        return torch_dtype(self.dtype_name(key))

    def get(self, key: str) -> "torch.Tensor":
        raise NotImplementedError

    def rows(self, key: str, idx: Sequence[int]) -> "torch.Tensor":
        """`t[idx]` (dim 0), in the order given."""
        return self.get(key)[list(idx)]

    def cols(self, key: str, idx: Sequence[int]) -> "torch.Tensor":
        """`t[:, idx]` (dim 1), in the order given."""
        return self.get(key)[:, list(idx)]

    def raw_chunks(self, key: str) -> Iterator[bytes]:
        """The tensor's little-endian row-major bytes, in chunks (for hashing)."""
        t = self.get(key).contiguous()
        yield _tensor_bytes(t)

    def has(self, key: str) -> bool:
        return key in self.keys()


def _tensor_bytes(t: "torch.Tensor") -> bytes:
    import torch

    t = t.detach().cpu().contiguous()
    if t.dtype in (torch.bfloat16,):
        t = t.view(torch.int16)
    return t.numpy().tobytes()


class SafetensorsStore(TensorStore):
    """A .safetensors file; the header is validated by us first so errors name the file."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._entries, self.data_start = read_safetensors_header(self.path)
        self._mm: dict[str, np.memmap] = {}

    def keys(self) -> list[str]:
        return list(self._entries)

    def shape(self, key: str) -> tuple[int, ...]:
        return tuple(self._entries[key]["shape"])

    def dtype_name(self, key: str) -> str:
        return ST_DTYPES[self._entries[key]["dtype"]]

    def _memmap(self, key: str) -> "np.memmap":
        import numpy as np

        if key not in self._mm:
            e = self._entries[key]
            begin = self.data_start + e["data_offsets"][0]
            shape = tuple(e["shape"]) or (1,)
            mm = np.memmap(self.path, dtype=_ST_NUMPY[e["dtype"]], mode="r", offset=begin, shape=shape)
            _no_readahead(mm)
            self._mm[key] = mm
        return self._mm[key]

    def get(self, key: str) -> "torch.Tensor":
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(self.path), framework="pt", device="cpu") as f:
                return f.get_tensor(key)
        except (SafetensorError, OSError) as e:
            errors.fail(errors.CORRUPT_FILE, self.path, f"cannot read tensor '{key}': {e}")

    def rows(self, key: str, idx: Sequence[int]) -> "torch.Tensor":
        import torch
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

    def cols(self, key: str, idx: Sequence[int]) -> "torch.Tensor":
        mm = self._memmap(key)
        return _np_to_torch(mm[:, list(idx)], self.dtype(key))

    def raw_chunks(self, key: str) -> Iterator[bytes]:
        e = self._entries[key]
        begin, end = e["data_offsets"]
        with open(self.path, "rb") as f:
            f.seek(self.data_start + begin)
            left = end - begin
            while left > 0:
                chunk = f.read(min(left, 1 << 24))
                if not chunk:
                    errors.fail(errors.CORRUPT_FILE, self.path, f"tensor '{key}' is truncated")
                left -= len(chunk)
                yield chunk


class DictStore(TensorStore):
    """Tensors already in memory (or memory-mapped by torch.load(mmap=True))."""

    def __init__(self, path: Path, tensors: "dict[str, torch.Tensor]"):
        self.path = Path(path)
        self._t = tensors

    def keys(self) -> list[str]:
        return list(self._t)

    def shape(self, key: str) -> tuple[int, ...]:
        return tuple(self._t[key].shape)

    def dtype_name(self, key: str) -> str:
        return str(self._t[key].dtype).removeprefix("torch.")

    def dtype(self, key: str) -> "torch.dtype":
        return self._t[key].dtype

    def get(self, key: str) -> "torch.Tensor":
        return self._t[key]


class NpzStore(TensorStore):
    """A numpy .npz; uncompressed members are memory-mapped at their offset in the zip."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._members = read_npz_headers(self.path)
        self._cache: dict[str, np.ndarray] = {}

    def keys(self) -> list[str]:
        return list(self._members)

    def shape(self, key: str) -> tuple[int, ...]:
        return self._members[key].header.shape

    def dtype_name(self, key: str) -> str:
        return self._members[key].header.dtype_name

    def _array(self, key: str) -> "np.ndarray":
        import numpy as np

        if key not in self._cache:
            m = self._members[key]
            shape = m.header.shape
            try:
                if m.offset is not None:
                    arr = np.memmap(self.path, dtype=np.dtype(m.header.descr), mode="r",
                                    offset=m.offset, shape=shape or (1,),
                                    order="F" if m.header.fortran_order else "C")
                    arr = arr.reshape(shape) if not shape else arr
                else:
                    with np.load(self.path, allow_pickle=False) as z:
                        arr = z[key]
            except (ValueError, OSError, zipfile.BadZipFile) as e:
                errors.fail(errors.CORRUPT_FILE, self.path, f"cannot read array '{key}': {e}")
            self._cache[key] = arr
        return self._cache[key]

    def raw_chunks(self, key: str) -> Iterator[bytes]:
        """The member's data as stored: row-major little-endian bytes unless Fortran order
        (then via numpy/torch, as the base class does)."""
        if self._members[key].header.fortran_order:
            yield from super().raw_chunks(key)
            return
        try:
            with zipfile.ZipFile(self.path) as z, z.open(key + ".npy") as m:
                read_npy_header(m)
                while chunk := m.read(1 << 24):
                    yield chunk
        except (zipfile.BadZipFile, ValueError, OSError, EOFError) as e:
            errors.fail(errors.CORRUPT_FILE, self.path, f"cannot read array '{key}': {e}")

    def get(self, key: str) -> "torch.Tensor":
        import numpy as np
        import torch

        return torch.from_numpy(np.array(self._array(key)))

    def rows(self, key: str, idx: Sequence[int]) -> "torch.Tensor":
        import numpy as np
        import torch

        return torch.from_numpy(np.array(self._array(key)[list(idx)]))

    def cols(self, key: str, idx: Sequence[int]) -> "torch.Tensor":
        import numpy as np
        import torch

        return torch.from_numpy(np.array(self._array(key)[:, list(idx)]))
