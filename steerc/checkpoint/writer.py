"""Writing one safetensors shard: our header, then every tensor in place.

An `Entry` is one tensor of an output shard: copied raw from the base, or made by a
`Producer` on demand (a tensor, row blocks, or byte chunks: bounded memory). Every block a
producer computes is checked for NaN/inf as it streams (`entry_chunks`).

The header (`safetensors_header`, ours, so equal inputs give equal bytes) fixes every
tensor's byte range, so each tensor is a separate `Task` that writes its own range with
positional I/O, in any order, on any thread (`run_tasks`, `jobs` at once). In a rewritten
shard the untouched tensors are copied kernel side (`filecopy.copy_range_at`), or, where the
file system can reflink, the shard starts as a clone of the base shard (`mirrors`) and they
are not written at all. Only the edited bytes pass through Python, once, hashed as they are
written.
"""

from __future__ import annotations

import concurrent.futures
import functools
import itertools
import json
import os
import struct
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

import torch

from steerc.checkpoint.digest import info_dtype_shape, shard_digest, tensor_hasher
from steerc.checkpoint.reader import ST_DTYPES, TORCH_TO_ST, Checkpoint, tensor_bytes
from steerc.checkpoint.finite import require_finite
from steerc.files.filecopy import clone_file, copy_range_at, pwrite_all, read_range
from steerc.files.write import open_new


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


def entry_chunks(e: Entry, produced) -> Iterator[memoryview | bytes]:
    """Raw byte chunks of one produced entry (a tensor or an iterable of blocks/bytes). Each
    tensor block is checked for NaN/inf here, in its stored dtype, while it is in cache
    (`finite.require_finite`: raises NonFiniteOutput); raw byte chunks are base bytes."""
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


@dataclass(frozen=True)
class Written:
    """What a `ShardWriter` wrote: the file's `shard_digest`, the per-tensor hashes of the
    produced entries, and of the base tensors they replaced (`before`)."""

    digest: str
    tensors: dict[str, str]
    before: dict[str, str]


def safetensors_header(entries: list[Entry], data_start: int = 0) -> bytes:
    """Our header for `entries` in order (the 8-byte size, then JSON): compact,
    {"format":"pt"} metadata, padded with spaces to a multiple of 8 bytes, or up to
    `data_start` where it fits and is 8-aligned (a mirrored base shard's: every tensor then
    keeps its file offset, so the shard can be a clone of the base's)."""
    header: dict = {"__metadata__": {"format": "pt"}}
    off = 0
    for e in entries:
        header[e.name] = {"dtype": e.dtype, "shape": list(e.shape), "data_offsets": [off, off + e.nbytes]}
        off += e.nbytes
    blob = json.dumps(header, separators=(",", ":")).encode()
    size = len(blob) + (-len(blob) % 8)
    if data_start % 8 == 0 and data_start - 8 >= size:
        size = data_start - 8
    return struct.pack("<Q", size) + blob.ljust(size)


def mirrors(base: Checkpoint | None, file: str | None, entries: list[Entry]) -> bool:
    """Whether `entries` are base shard `file`'s tensors in stored order, with its dtypes,
    shapes and byte ranges, and the file holds nothing past them: same data section layout."""
    if base is None or file is None:
        return False
    names = base.names_in(file)
    off = 0
    for n, e in zip(names, entries):
        info = base.info(n)
        if (n, info.dtype, info.shape, info.offsets) != (e.name, e.dtype, e.shape, (off, off + e.nbytes)):
            return False
        off += e.nbytes
    return len(names) == len(entries) and base.nbytes(file) == base.data_start[file] + off


class ShardWriter:
    """One safetensors file being written. The header (`safetensors_header`, ours, so equal
    inputs give equal bytes) fixes every tensor's byte range, so each tensor is a separate
    task (`tasks`) that writes its range with positional I/O, in any order, on any thread:
    a copied one kernel side (`filecopy.copy_range_at`), never through Python; a produced
    one block by block as its producer yields them, its `tensor_hash` computed over those
    bytes (no second read). Use as a context manager (opens the file and writes the
    header), run every task, then `finish` with their results in order.

    `base_hashes` (`base_tensor_hashes` of the base shard) gives the copied tensors' hashes
    and the replaced ones' `before` hashes; without it they are hashed from the base file.
    `mirror`: the base shard these entries replace one for one (`mirrors`); the header is
    then padded to its data start, and where the file system can reflink, the file starts
    as a clone of it and only the produced tensors are written over it (the same bytes as
    copying, in a fraction of the time and disk)."""

    def __init__(self, path: Path, entries: list[Entry], base: Checkpoint | None,
                 on_bytes: Callable[[int], None] = lambda n: None,
                 base_hashes: dict[str, str] | None = None, mirror: str | None = None):
        self.path, self.entries, self.base, self.mirror = path, entries, base, mirror
        self.mirrored = mirrors(base, mirror, entries)
        self.head = safetensors_header(entries, base.data_start[mirror] if self.mirrored else 0)
        self.at = list(itertools.accumulate((e.nbytes for e in entries), initial=len(self.head)))
        self.known = dict(base_hashes or {})
        self.before = {e.name: self._base_hash(e.name) for e in entries
                       if e.produce is not None and base is not None and base.has(e.name)}
        self._lock = threading.Lock()
        self._on_bytes = on_bytes
        self.cloned = False
        self.tasks: list[Task] = []

    def _base_hash(self, name: str) -> str:
        if name not in self.known:
            bh = tensor_hasher(name, *info_dtype_shape(self.base, name))
            for data in self.base.iter_raw(name):
                bh.update(data)
            self.known[name] = bh.hexdigest()
        return self.known[name]

    def _progress(self, n: int) -> None:
        with self._lock:
            self._on_bytes(n)

    def __enter__(self) -> "ShardWriter":
        self._f = open_new(self.path)
        self._src = _BaseFiles(self.base)
        try:
            self._start()
        except BaseException:
            self.__exit__()
            raise
        return self

    def _start(self) -> None:
        fd, base = self._f.fileno(), self.base
        self.cloned = (self.mirrored and len(self.head) == base.data_start[self.mirror]
                       and clone_file(base.root / self.mirror, fd))
        if not self.cloned:
            os.ftruncate(fd, self.at[-1])
        pwrite_all(fd, self.head, 0)
        for i, e in enumerate(self.entries):
            if e.produce is not None:
                reads = base is not None and base.has(e.name)
                self.tasks.append(Task(
                    functools.partial(_produce_at, e, fd, self.at[i], base, self._src, self._progress),
                    e.nbytes, functools.partial(self._src.will_need, e.name) if reads else None,
                    makes=e.name))
            elif not self.cloned:  # a clone holds the untouched tensors already
                self.tasks.append(Task(
                    functools.partial(_copy_at, base, e.name, self._src, fd, self.at[i], self._progress),
                    e.nbytes))
        if self.cloned:
            self._progress(sum(e.nbytes for e in self.entries if e.produce is None))

    def finish(self, results: list) -> Written:
        """What was written, given every task's result, in `tasks` order."""
        made = {t.makes: r for t, r in zip(self.tasks, results) if t.makes is not None}
        size = os.fstat(self._f.fileno()).st_size
        if size != self.at[-1]:
            raise AssertionError(f"{self.path}: {size} bytes, header says {self.at[-1]}")
        digest = shard_digest(self.head, [made[e.name] if e.produce is not None
                                          else self._base_hash(e.name) for e in self.entries])
        return Written(digest, made, self.before)

    def __exit__(self, *exc) -> None:
        try:
            self._src.close()
        finally:
            self._f.close()


@dataclass(frozen=True)
class Task:
    """One tensor's write: `run()` returns the `tensor_hash` of entry `makes` (None for a
    copy); `prefetch()`, if any, starts reading the base tensor it will read first."""

    run: Callable[[], str | None]
    nbytes: int
    prefetch: Callable[[], None] | None = None
    makes: str | None = None


def run_tasks(tasks: list[Task], pool: concurrent.futures.Executor | None) -> list:
    """Each task's result, in order: in this thread, or on `pool`, largest first (so that
    the last to finish is a small one). Before each task, the kernel is asked to start
    reading the base tensor of the task after it. On a failure the tasks not started are
    cancelled and the running ones waited for (they write into files the caller is about to
    close) before the first error is raised."""
    order = list(range(len(tasks))) if pool is None else sorted(
        range(len(tasks)), key=lambda i: -tasks[i].nbytes)
    ahead: list[Task | None] = [None] * len(order)  # the next task in `order` that reads
    for k in range(len(order) - 2, -1, -1):
        nxt = tasks[order[k + 1]]
        ahead[k] = nxt if nxt.prefetch is not None else ahead[k + 1]
    results: list = [None] * len(tasks)

    def run(k: int):
        if ahead[k] is not None:
            ahead[k].prefetch()
        return tasks[order[k]].run()

    if pool is None:
        for k, i in enumerate(order):
            results[i] = run(k)
        return results
    futures = [pool.submit(run, k) for k in range(len(order))]
    try:
        for k, fut in enumerate(futures):
            results[order[k]] = fut.result()
        return results
    finally:
        for fut in futures:
            fut.cancel()
        concurrent.futures.wait(futures)


class _BaseFiles:
    """One read-only descriptor per base shard, opened on first use (thread-safe)."""

    def __init__(self, base: Checkpoint | None):
        self.base, self.fds, self.lock = base, {}, threading.Lock()

    def fd(self, file: str) -> int:
        with self.lock:
            if file not in self.fds:
                self.fds[file] = os.open(self.base.root / file, os.O_RDONLY)
            return self.fds[file]

    def span(self, name: str) -> tuple[int, int, int]:
        """(fd, file offset, byte count) of base tensor `name`."""
        info = self.base.info(name)
        a, b = info.offsets
        return self.fd(info.file), self.base.data_start[info.file] + a, b - a

    def will_need(self, name: str) -> None:
        """Start reading base tensor `name` in the background (kernel readahead), so that a
        cold read overlaps the work before it."""
        if hasattr(os, "posix_fadvise"):
            os.posix_fadvise(*self.span(name), os.POSIX_FADV_WILLNEED)

    def close(self) -> None:
        for fd in self.fds.values():
            os.close(fd)


def _copy_at(base: Checkpoint, name: str, src: _BaseFiles, fd: int, pos: int,
             progress: Callable[[int], None]) -> None:
    """Copy base tensor `name`'s stored bytes to `pos` of `fd`, kernel side."""
    sfd, off, n = src.span(name)
    copy_range_at(sfd, off, fd, pos, n)
    progress(n)


def _produce_at(e: Entry, fd: int, pos: int, base: Checkpoint | None, src: _BaseFiles,
                progress: Callable[[int], None]) -> str:
    """Run entry `e`'s producer and write its bytes at `pos` of `fd`, hashing them as they
    go; returns its `tensor_hash`."""
    th = tensor_hasher(e.name, e.dtype, e.shape, e.nbytes)
    out = e.produce()
    n = 0
    if isinstance(out, RawCopy):  # another base tensor's bytes: copied kernel side, hashed
        info = base.info(out.name)
        if (info.dtype, info.shape) != (e.dtype, e.shape):
            raise AssertionError(f"{e.name}: copy of {out.name} {info.dtype}{info.shape}, header "
                                 f"says {e.dtype}{e.shape}")
        sfd, off, n = src.span(out.name)
        copy_range_at(sfd, off, fd, pos, n)
        for data in read_range(sfd, off, n):
            th.update(data)
        progress(n)
    else:
        for data in entry_chunks(e, out):
            th.update(data)
            pwrite_all(fd, data, pos + n)
            n += len(data)
            progress(len(data))
    if n != e.nbytes:
        raise AssertionError(f"{e.name}: wrote {n} bytes, header says {e.nbytes}")
    return th.hexdigest()
