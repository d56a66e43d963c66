"""Content hashes of tensors and shards: what the manifest records and verify recomputes.

`tensor_hash` covers one tensor's name, dtype, shape and bytes; `shard_digest` covers a
whole safetensors file from its header and its tensors' hashes, so a base tensor copied as
is needs no second pass over its bytes (its hash is cached by the file's stat signature).
"""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path
from typing import Iterable

from steerc.checkpoint.layout import read_header
from steerc.files.filecopy import CHUNK


def tensor_hash(name: str, dtype: str, shape: tuple[int, ...], data: bytes | memoryview) -> str:
    """sha256 of one tensor: length-prefixed name, dtype, shape, then its raw bytes."""
    h = tensor_hasher(name, dtype, shape, len(data))
    h.update(data)
    return h.hexdigest()


def tensor_hasher(name: str, dtype: str, shape: tuple[int, ...], nbytes: int):
    """sha256 primed with `tensor_hash`'s prefix; feed it the raw bytes to finish."""
    h = hashlib.sha256()
    for part in (name.encode(), dtype.encode(), json.dumps(list(shape)).encode()):
        h.update(struct.pack("<Q", len(part)))
        h.update(part)
    h.update(struct.pack("<Q", nbytes))
    return h


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


def base_tensor_hashes(base, file: str) -> dict[str, str]:
    """`tensor_hash` of every tensor of one base shard, in one streamed pass, cached by the
    file's stat signature (hashing.py's cache: cold once per base file, then free)."""
    from steerc.files.hashing import cached_by_files  # sqlite: loaded only when hashing

    path = base.root / file
    return json.loads(cached_by_files("safetensors-tensor-hashes-v1", [path],
                                      lambda: json.dumps(hash_file_tensors(path), sort_keys=True)))


def info_dtype_shape(base, name: str) -> tuple[str, tuple[int, ...], int]:
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
