"""Streaming checkpoint I/O: read a base checkpoint tensor by tensor, write an edited copy.

Never loads a whole model: `Checkpoint` reads headers and tensors on demand; untouched
shards are hard-linked (copied where links fail); shards holding an edited tensor are
rewritten by `shardwrite.ShardWriter`, which hashes what it writes with `tensor_hasher` and
records each file by `shard_digest` (header + per-tensor hashes; the base's come from
`base_tensor_hashes`, cached by stat). The output directory is built beside its final place
and moved there with `os.replace` only when complete (`steerc.files.outdir.atomic_dir`).
Every block a producer computes is checked for NaN/inf as it streams (`entry_chunks`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

import torch
from safetensors import safe_open

from steerc.compiler import basefiles
from steerc.compiler.filecopy import CHUNK
from steerc.compiler.numeric import require_finite
from steerc.diagnostics import DiagnosticError
from steerc.files import read
from steerc.files.write import copy_new, dumps_json, write_new

SINGLE = basefiles.SINGLE
INDEX = basefiles.INDEX
WEIGHT_FILES = (SINGLE, INDEX, "pytorch_model.bin", "pytorch_model.bin.index.json")

ST_DTYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16,
             "BF16": torch.bfloat16, "I64": torch.int64, "I32": torch.int32, "I16": torch.int16,
             "I8": torch.int8, "U8": torch.uint8, "BOOL": torch.bool}
TORCH_TO_ST = {v: k for k, v in ST_DTYPES.items()}

# Computes one output tensor on demand: the tensor, or an iterator of row blocks (tensors)
# or raw byte chunks that concatenate to it in row-major order (bounded memory), or a
# RawCopy (another base tensor's bytes, copied kernel side).
Producer = Callable[[], "torch.Tensor | Iterable[torch.Tensor | bytes] | RawCopy"]


@dataclass(frozen=True)
class RawCopy:
    """What a producer may return for a tensor that is another base tensor's stored bytes,
    unchanged (an untied head is the embedding): copied kernel side, hashed from the base."""

    name: str


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
    _data_start: dict[str, int] = field(default_factory=dict)

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
            f.seek(self._data_start[info.file] + a)
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
            f.seek(self._data_start[info.file] + info.offsets[0] + a * row)
            if f.readinto(buf) != len(buf):
                raise OSError(f"{self.root / info.file}: truncated at tensor {name}")
        return out

    def names_in(self, file: str) -> list[str]:
        """Tensor names of one shard in stored (offset) order."""
        return sorted((t.name for t in self.tensors.values() if t.file == file),
                      key=lambda n: self.tensors[n].offsets[0])

    def nbytes(self, file: str) -> int:
        return (self.root / file).stat().st_size


def read_header(path: Path) -> tuple[dict, int]:
    """A safetensors file's JSON header and the byte offset where its data section starts
    (validated: E604 missing, E605 corrupt or truncated; see basefiles)."""
    return basefiles.read_header(path)


def open_checkpoint(root: str | os.PathLike) -> Checkpoint:
    """Index a base checkpoint directory (single `model.safetensors` or sharded with an
    index); reads only headers (`basefiles.read_headers`: E601 when there are no
    safetensors, E603-E606 when they are unsound)."""
    root = Path(root)
    h = basefiles.read_headers(root)
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


def tensor_hash(name: str, dtype: str, shape: tuple[int, ...], data: bytes | memoryview) -> str:
    """sha256 of one tensor: length-prefixed name, dtype, shape, then its raw bytes."""
    h = hashlib.sha256()
    for part in (name.encode(), dtype.encode(), json.dumps(list(shape)).encode()):
        h.update(struct.pack("<Q", len(part)))
        h.update(part)
    h.update(struct.pack("<Q", len(data)))
    h.update(data)
    return h.hexdigest()


@dataclass(frozen=True)
class Entry:
    """One tensor of an output shard: either copied raw from the base or produced."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    produce: Producer | None = None  # None: copy the base tensor's bytes

    @property
    def nbytes(self) -> int:
        n = torch.tensor([], dtype=ST_DTYPES[self.dtype]).element_size()
        for s in self.shape:
            n *= s
        return n


def tensor_hasher(name: str, dtype: str, shape: tuple[int, ...], nbytes: int):
    """sha256 primed with `tensor_hash`'s prefix; feed it the raw bytes to finish."""
    h = hashlib.sha256()
    for part in (name.encode(), dtype.encode(), json.dumps(list(shape)).encode()):
        h.update(struct.pack("<Q", len(part)))
        h.update(part)
    h.update(struct.pack("<Q", nbytes))
    return h


def entry_chunks(e: Entry, produced) -> Iterator[memoryview | bytes]:
    """Raw byte chunks of one produced entry (a tensor or an iterable of blocks/bytes). Each
    tensor block is checked for NaN/inf here, in its stored dtype, while it is in cache
    (`numeric.require_finite`: raises NonFiniteOutput); raw byte chunks are base bytes."""
    parts = [produced] if isinstance(produced, torch.Tensor) else produced
    for t in parts:
        if isinstance(t, torch.Tensor):
            if TORCH_TO_ST[t.dtype] != e.dtype:
                raise AssertionError(f"{e.name}: produced {t.dtype}, header says {e.dtype}")
            if isinstance(produced, torch.Tensor) and tuple(t.shape) != e.shape:
                raise AssertionError(f"{e.name}: produced {tuple(t.shape)}, header says {e.shape}")
            require_finite(e.name, t)
            t = tensor_bytes(t)
        yield t


SHARD_DIGEST_TAG = b"steerc-shard-digest-v1\n"


def shard_digest(header: bytes, hashes: Iterable[str]) -> str:
    """Digest of one safetensors file from its header and its tensors' `tensor_hash`es (in
    data order): sha256 over a tag, the length-prefixed header bytes (the 8-byte size and the
    JSON), then each hex hash. Any changed byte of the file changes it (the header fixes
    every tensor's name, dtype, shape and byte range, the hashes cover the bytes), and it
    needs no pass over bytes whose hash is already known (a base tensor copied as is)."""
    h = hashlib.sha256(SHARD_DIGEST_TAG)
    h.update(struct.pack("<Q", len(header)))
    h.update(header)
    for x in hashes:
        h.update(x.encode())
    return h.hexdigest()


def file_shard_digest(path: Path) -> str:
    """`shard_digest` of a safetensors file on disk, recomputed from its bytes (for checks)."""
    header, start = read_header(path)
    with open(path, "rb") as f:
        raw = f.read(start)
    names = sorted((n for n in header if n != "__metadata__"), key=lambda n: header[n]["data_offsets"][0])
    hashes = hash_file_tensors(path)
    return shard_digest(raw, (hashes[n] for n in names))


def base_tensor_hashes(base: Checkpoint, file: str) -> dict[str, str]:
    """`tensor_hash` of every tensor of one base shard, in one streamed pass, cached by the
    file's stat signature (hashing.py's cache: cold once per base file, then free)."""
    from steerc.compiler.hashing import cached_by_files

    path = base.root / file
    return json.loads(cached_by_files("safetensors-tensor-hashes-v1", [path],
                                      lambda: json.dumps(hash_file_tensors(path), sort_keys=True)))


def info_dtype_shape(base: Checkpoint, name: str) -> tuple[str, tuple[int, ...], int]:
    """(dtype, shape, byte count) of base tensor `name`: `tensor_hasher`'s arguments."""
    info = base.info(name)
    return info.dtype, info.shape, info.offsets[1] - info.offsets[0]


def hash_file_tensors(path: Path) -> dict[str, str]:
    """Content hash (`tensor_hash`) of every tensor of an existing safetensors file, in one
    streamed pass (CHUNK-sized reads into one reused buffer)."""
    header, start = read_header(path)
    out = {}
    buf = bytearray(CHUNK)
    with open(path, "rb", buffering=0) as f:
        for name, h in header.items():
            if name == "__metadata__":
                continue
            a, b = h["data_offsets"]
            th = tensor_hasher(name, h["dtype"], tuple(h["shape"]), b - a)
            f.seek(start + a)
            while a < b:
                k = f.readinto(memoryview(buf)[: min(CHUNK, b - a)])
                if not k:
                    raise OSError(f"{path}: truncated at tensor {name}")
                th.update(memoryview(buf)[:k])
                a += k
            out[name] = th.hexdigest()
    return out


def write_json(path: Path, obj, what: str | None = None) -> None:
    """Deterministic strict JSON as a new file: sorted keys, 2-space indent, trailing
    newline; a NaN or an infinity is E426 (`files.write.dumps_json`)."""
    write_new(path, dumps_json(obj, what or path.name, indent=2, sort_keys=True) + "\n")


CODE_SUFFIXES = (".py", ".pyc", ".so")


def copy_side_files(base: Path, out: Path, skip: set[str]) -> list[str]:
    """Copy the base's regular top-level non-weight files (tokenizer, generation config...).

    Code is never carried over: no `.py`/`.pyc`/`.so` file, and a tokenizer_config.json
    loses its `auto_map` (which names such code), so that trusting a steerc output only
    ever runs steerc's own code."""
    copied = []
    for p in sorted(base.iterdir()):
        if not os.path.isfile(p) or p.name in skip or p.name in WEIGHT_FILES or p.suffix == ".safetensors":
            continue
        if p.suffix in CODE_SUFFIXES:
            continue
        if p.name == "tokenizer_config.json" and _without_auto_map(p, out / p.name):
            copied.append(p.name)
            continue
        copy_new(p, out / p.name)
        copied.append(p.name)
    return copied


def _without_auto_map(src: Path, dst: Path) -> bool:
    """Write `src` (a JSON object with an `auto_map`) to `dst` without it; False (nothing
    written) when `src` has no `auto_map` or is not a JSON object."""
    try:
        doc = json.loads(read.read_bytes(src, read.MODEL_CONFIG))
    except (DiagnosticError, ValueError):
        return False
    if not isinstance(doc, dict) or "auto_map" not in doc:
        return False
    doc.pop("auto_map")
    write_json(dst, doc)
    return True
