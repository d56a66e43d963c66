"""Moving bytes between files without passing them through Python: positional writes,
kernel-side range copies, and whole-file reflinks.

`steerc.checkpoint.writer.ShardWriter` builds a rewritten shard from these. Every write names its file
offset, so tensors can be written by several threads at once in any order. Where the file
system can reflink (btrfs, XFS, bcachefs, ...), `clone_file` makes the new shard share every
block of the base shard, so only the edited tensors are written (copy on write keeps the
base intact); elsewhere (ext4, tmpfs) the untouched tensors are copied kernel side with
`copy_range_at`. Both give the same bytes.
"""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path
from typing import Iterator

CHUNK = 16 << 20  # bytes per read/write/hash step when streaming tensors
FICLONE = 0x40049409  # linux/fs.h: _IOW(0x94, 9, int)
# what a file system or platform answers when it cannot clone or copy kernel side
_REFUSED = (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTTY,
            errno.EBADF, errno.EPERM)


def pwrite_all(fd: int, data, pos: int) -> None:
    """Write all of `data` at offset `pos` of file descriptor `fd` (writes may be short)."""
    view = memoryview(data).cast("B")
    while view:
        k = os.pwrite(fd, view, pos)
        view, pos = view[k:], pos + k


def read_range(fd: int, off: int, n: int, chunk: int = CHUNK) -> Iterator[memoryview]:
    """n bytes of `fd` from `off`, in chunks read into one reused buffer (each chunk is
    valid until the next is read)."""
    buf = memoryview(bytearray(min(chunk, max(n, 1))))
    done = 0
    while done < n:
        k = os.preadv(fd, [buf[: min(len(buf), n - done)]], off + done)
        if k == 0:
            raise OSError(errno.EIO, f"file truncated: {n - done} bytes missing at offset {off + done}")
        yield buf[:k]
        done += k


def copy_range_at(src: int, src_off: int, dst: int, dst_off: int, n: int,
                  chunk: int = CHUNK) -> None:
    """Copy n bytes of fd `src` from `src_off` to fd `dst` at `dst_off`: kernel side with
    `os.copy_file_range` (no trip through Python), read/write where the kernel refuses."""
    done = 0
    try:
        while done < n and hasattr(os, "copy_file_range"):  # Linux only
            k = os.copy_file_range(src, dst, n - done, src_off + done, dst_off + done)
            if k == 0:
                raise OSError(errno.EIO, "source truncated")
            done += k
    except OSError as e:
        if e.errno not in _REFUSED:
            raise
    for data in read_range(src, src_off + done, n - done, chunk):
        pwrite_all(dst, data, dst_off + done)
        done += len(data)


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
