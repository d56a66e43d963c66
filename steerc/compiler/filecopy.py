"""Moving bytes between files without passing them through Python: kernel-side range copies,
whole-file reflinks, and a writer thread that overlaps writes with computing the next block.

`emit.write_safetensors` builds a rewritten shard from these. Where the file system can
reflink (btrfs, XFS, bcachefs, ...), `clone_file` makes the new shard share every block of
the base shard, so only the edited tensors are written (copy on write keeps the base
intact); elsewhere (ext4, tmpfs) the untouched tensors are copied kernel side with
`copy_range`. Both give the same bytes.
"""

from __future__ import annotations

import collections
import concurrent.futures
import errno
import os
import sys
from pathlib import Path

CHUNK = 16 << 20  # bytes per read/write/hash step when streaming tensors
FICLONE = 0x40049409  # linux/fs.h: _IOW(0x94, 9, int)
# what a file system or platform answers when it cannot clone or copy kernel side
_REFUSED = (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTTY,
            errno.EBADF, errno.EPERM)


def write_all(f, data) -> None:
    """Write all of `data` to an unbuffered file (whose writes may be short)."""
    view = memoryview(data).cast("B")
    while view:
        view = view[f.write(view):]


def copy_range(src: int, src_off: int, dst, n: int, chunk: int = CHUNK) -> None:
    """Append n bytes of file descriptor `src` from `src_off` to `dst` (an unbuffered file
    object, at its current offset): kernel side with `os.copy_file_range` (no trip through
    Python), read/write where the kernel refuses."""
    done = 0
    try:
        while done < n:
            k = os.copy_file_range(src, dst.fileno(), n - done, src_off + done)
            if k == 0:
                raise OSError(errno.EIO, "source truncated")
            done += k
        return
    except OSError as e:
        if e.errno not in _REFUSED:
            raise
    buf = bytearray(min(chunk, max(n - done, 1)))
    while done < n:
        k = os.preadv(src, [memoryview(buf)[: min(len(buf), n - done)]], src_off + done)
        if k == 0:
            raise OSError(errno.EIO, "source truncated")
        write_all(dst, memoryview(buf)[:k])
        done += k


def clone_file(src: Path, dst: int) -> bool:
    """Make the open, empty file descriptor `dst` share all of `src`'s blocks (the FICLONE
    ioctl: a reflink, metadata only, whatever the size). False, with `dst` untouched, where
    the platform or file system cannot (ext4, tmpfs, another file system, not Linux)."""
    if sys.platform != "linux":
        return False
    import fcntl

    try:
        with open(src, "rb", buffering=0) as s:
            fcntl.ioctl(dst, FICLONE, s.fileno())
    except OSError as e:
        if e.errno not in _REFUSED:
            raise
        return False
    return True


class Sink:
    """Writes blocks on one background thread, in the order they are put, while the caller
    computes the next ones (file writes, seeks and copy_file_range release the GIL). At most
    DEPTH blocks are in flight, so memory stays a few blocks; the first error (ENOSPC...) is
    raised in the caller on its next call or at exit."""

    DEPTH = 4

    def __init__(self, f):
        self.f = f
        self.pool = concurrent.futures.ThreadPoolExecutor(1)
        self.pending: collections.deque = collections.deque()

    def _submit(self, fn, *args) -> None:
        while len(self.pending) >= self.DEPTH:
            self.pending.popleft().result()
        self.pending.append(self.pool.submit(fn, *args))

    def put(self, data, hasher=None) -> None:
        """Write `data` at the current offset (first feeding it to `hasher`, if given)."""
        self._submit(self._put, data, hasher)

    def _put(self, data, hasher) -> None:
        if hasher is not None:
            hasher.update(data)
        write_all(self.f, data)

    def copy(self, src: int, off: int, n: int) -> None:
        """Write n bytes of fd `src` from `off` at the current offset (`copy_range`)."""
        self._submit(copy_range, src, off, self.f, n)

    def skip(self, n: int) -> None:
        """Move the current offset n bytes on, over bytes already in place (a clone's)."""
        self._submit(self.f.seek, n, os.SEEK_CUR)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *exc):
        try:
            while self.pending:
                fut = self.pending.popleft()
                if exc_type is None:
                    fut.result()
                elif not fut.cancel():
                    concurrent.futures.wait([fut])  # nothing may touch the file after it closes
        finally:
            self.pool.shutdown(wait=True)
