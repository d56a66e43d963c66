"""Reading a base checkpoint tensor by tensor: never a whole model in memory.

`open_checkpoint` reads only the headers (validated by `layout.read_headers`); `Checkpoint`
then reads one tensor, a block of rows, or its raw bytes in chunks, on demand, with plain
reads (no mmap pages left mapped).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import torch
from safetensors import safe_open

from steerc.checkpoint import layout
from steerc.checkpoint.dtypes import torch_dtypes
from steerc.files.filecopy import CHUNK

ST_DTYPES = torch_dtypes()
TORCH_TO_ST = {v: k for k, v in ST_DTYPES.items()}


@dataclass(frozen=True)
class TensorInfo:
    name: str
    dtype: str  # safetensors dtype string (F32, BF16, ...)
    shape: tuple[int, ...]
    file: str
    offsets: tuple[int, int]  # byte range inside the file's data section


@dataclass
class Checkpoint:
    """A base checkpoint on disk: shard files, which tensor lives where, lazy tensor access."""

    root: Path
    files: list[str]
    tensors: dict[str, TensorInfo]
    sharded: bool
    data_start: dict[str, int] = field(default_factory=dict)  # file -> data section offset

    def info(self, name: str) -> TensorInfo:
        return self.tensors[name]

    def has(self, name: str) -> bool:
        return name in self.tensors

    def tensor(self, name: str) -> torch.Tensor:
        """One tensor, read with a plain read (no mmap pages left mapped)."""
        info = self.tensors[name]
        if info.shape:
            return self.read_rows(name, 0, info.shape[0])
        with safe_open(self.root / info.file, framework="pt", device="cpu") as f:
            return f.get_tensor(name)

    @contextlib.contextmanager
    def rows(self, name: str):
        """A row-sliceable view of one stored tensor (`view[a:b]` reads only those rows)."""
        info = self.tensors[name]
        with safe_open(self.root / info.file, framework="pt", device="cpu") as f:
            yield f.get_slice(name)

    def raw(self, name: str) -> bytes:
        """The stored bytes of one tensor, untouched (little-endian, row-major)."""
        return b"".join(self.iter_raw(name, 1 << 62))

    def iter_raw(self, name: str, chunk: int = CHUNK) -> Iterator[bytes]:
        """The stored bytes of one tensor in chunks of at most `chunk` bytes (plain reads,
        no mmap: only one chunk is ever resident)."""
        info = self.tensors[name]
        a, b = info.offsets
        with open(self.root / info.file, "rb") as f:
            f.seek(self.data_start[info.file] + a)
            while a < b:
                data = f.read(min(chunk, b - a))
                if not data:
                    raise OSError(f"{self.root / info.file}: truncated at tensor {name}")
                a += len(data)
                yield data

    def read_rows(self, name: str, a: int, b: int, into: torch.Tensor | None = None) -> torch.Tensor:
        """Rows [a, b) of a stored tensor (dim 0), read with one plain read. `into`: a
        contiguous buffer of the stored dtype, reused (fresh pages cost a fault each) and
        returned as a view; else a new tensor."""
        info = self.tensors[name]
        dtype = ST_DTYPES[info.dtype]
        row = torch.tensor([], dtype=dtype).element_size()
        for s in info.shape[1:]:
            row *= s
        b = min(b, info.shape[0])
        shape = (b - a,) + tuple(info.shape[1:])
        if into is not None:
            assert into.dtype == dtype and into.is_contiguous(), (into.dtype, dtype)
            out = into.reshape(-1)[: torch.Size(shape).numel()].view(shape)
        else:
            out = torch.empty(shape, dtype=dtype)
        buf = memoryview(out.view(torch.uint8).numpy().reshape(-1)) if out.numel() else memoryview(b"")
        with open(self.root / info.file, "rb") as f:
            f.seek(self.data_start[info.file] + info.offsets[0] + a * row)
            if f.readinto(buf) != len(buf):
                raise OSError(f"{self.root / info.file}: truncated at tensor {name}")
        return out

    def names_in(self, file: str) -> list[str]:
        """Tensor names of one shard in stored (offset) order."""
        return sorted((t.name for t in self.tensors.values() if t.file == file),
                      key=lambda n: self.tensors[n].offsets[0])

    def nbytes(self, file: str) -> int:
        return (self.root / file).stat().st_size

    def float_dtype(self) -> torch.dtype:
        """The stored dtype of the floating tensors (the first one in name order): the
        model dtype that hook tensors are cast to and rule values must fit."""
        for name in sorted(self.tensors):
            dt = ST_DTYPES[self.tensors[name].dtype]
            if dt.is_floating_point:
                return dt
        return torch.float32


def open_checkpoint(root: str | os.PathLike) -> Checkpoint:
    """Index a base checkpoint directory (single `model.safetensors` or sharded with an
    index); reads only headers (`basefiles.read_headers`: E601 when there are no
    safetensors, E603-E606 when they are unsound)."""
    root = Path(root)
    h = layout.read_headers(root)
    tensors: dict[str, TensorInfo] = {}
    for file in h.files:
        for name, e in h.headers[file].items():
            if name == "__metadata__":
                continue
            tensors[name] = TensorInfo(name, e["dtype"], tuple(e["shape"]), file,
                                       tuple(e["data_offsets"]))
    return Checkpoint(root, list(h.files), tensors, h.sharded, dict(h.starts))


def tensor_bytes(t: torch.Tensor) -> memoryview:
    """Raw little-endian bytes of a contiguous tensor (bf16 included), without a copy."""
    t = t.detach().contiguous().reshape(-1)
    return memoryview(t.view(torch.uint8).numpy())
