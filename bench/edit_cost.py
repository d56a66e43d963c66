"""What one edited tensor costs, step by step, against `cp` of its bytes.

    .venv/bin/python bench/edit_cost.py [--rows 2048 --cols 8192] [--repeats 5] [--dir /tmp]

One Llama-3.2-1B down_proj-shaped bf16 writer (random), warm page cache, one thread, best
of `repeats`: the steps `ablate ... everywhere` runs on it in `steerc.checkpoint.writer._produce_at` (read the
stored bytes, the projection `stream_edits.writer_blocks`, the sha256 behind its manifest
hash, the write), their sum, and `cp --reflink=never` of a file holding the same bytes.
The sum over `cp` is the CPU floor of the edit relative to copying, before any I/O wait or
parallelism.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from steerc.compiler import stream_edits  # noqa: E402
from steerc.checkpoint.reader import tensor_bytes  # noqa: E402


def best(fn, repeats: int) -> float:
    t = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        t = min(t, time.perf_counter() - t0)
    return t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=2048)
    ap.add_argument("--cols", type=int, default=8192)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--dir", default=tempfile.gettempdir())
    a = ap.parse_args()
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    w = (torch.randn(a.rows, a.cols, generator=g) * 0.02).to(torch.bfloat16)
    q = torch.randn(a.rows, 1, generator=g)
    q /= q.norm()
    raw = bytes(tensor_bytes(w))
    with tempfile.TemporaryDirectory(dir=a.dir) as d:
        src, dst = Path(d) / "w.bin", Path(d) / "out.bin"
        src.write_bytes(raw)
        buf = torch.empty_like(w)
        view = memoryview(buf.view(torch.uint8).numpy().reshape(-1))
        scratch = stream_edits.Scratch()
        with open(src, "rb", buffering=0) as f:
            steps = {"read": best(lambda: os.preadv(f.fileno(), [view], 0), a.repeats)}
        steps["projection"] = best(lambda: [None for _ in stream_edits.writer_blocks(
            buf, q, "linear", torch.bfloat16, scratch)], a.repeats)
        steps["sha256"] = best(lambda: hashlib.sha256(raw).digest(), a.repeats)
        fd = os.open(dst, os.O_WRONLY | os.O_CREAT)  # rewriting pages in place: the cheapest write
        try:
            steps["write"] = best(lambda: os.pwrite(fd, raw, 0), a.repeats)
        finally:
            os.close(fd)
        cp = float("inf")
        for _ in range(a.repeats):  # into a new file each time, as a compile writes one
            dst.unlink(missing_ok=True)
            os.sync()
            cp = min(cp, best(lambda: subprocess.run(["cp", "--reflink=never", str(src), str(dst)],
                                                     check=True), 1))
    mb = len(raw) / 1e6
    print(f"one [{a.rows}, {a.cols}] bf16 writer, {mb:.1f} MB, one thread, best of {a.repeats}, "
          f"load {os.getloadavg()[0]:.2f}")
    for k, v in steps.items():
        print(f"  {k:10} {v * 1e3:7.1f} ms  {mb / 1e3 / v:6.2f} GB/s")
    total = sum(steps.values())
    print(f"  {'sum':10} {total * 1e3:7.1f} ms  {mb / 1e3 / total:6.2f} GB/s")
    print(f"  {'cp':10} {cp * 1e3:7.1f} ms  {mb / 1e3 / cp:6.2f} GB/s  (process start included)")
    print(f"sum / cp: {total / cp:.2f}x; sha256 alone / cp: {steps['sha256'] / cp:.2f}x")


if __name__ == "__main__":
    main()
