"""How to read a few features of a big SAE without loading the whole encoder.

SAELens stores W_enc as [d_in, d_sae] row-major, so feature i is a strided *column*. Each
method below runs in a fresh subprocess and reads the same 3 features. Before every run the
benchmark's own file is evicted from the page cache (posix_fadvise DONTNEED on that file
only), so the figures are cold reads: wall time, bytes the process read from storage
(/proc/self/io read_bytes) and major page faults. Warm-cache times are also printed.

    .venv/bin/python bench/sae_column_read.py [d_in] [d_sae]

Methods:
  full       safe_open().get_tensor("W_enc")[:, idx]         (the obvious approach)
  slice_col  safe_open().get_slice("W_enc")[:, i:i+1] per i  (safetensors slicing)
  memmap     np.memmap of the data region, mm[:, idx]        (what steerc uses)
  steerc     load_sae(path).select(idx)                      (all canonical tensors)
  row_slice  get_slice("encoder.weight")[i:i+1] for the nn.Linear layout [d_sae, d_in]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


CHILD = r"""
import resource, sys, time, json
import numpy as np, torch
from safetensors import safe_open
import steerc.saes
method, path, idx = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
def io():
    return int(next(l for l in open("/proc/self/io") if l.startswith("read_bytes")).split()[1])
io0, flt0 = io(), resource.getrusage(resource.RUSAGE_SELF).ru_majflt
t0 = time.perf_counter()
if method == "full":
    with safe_open(path + "/sae_weights.safetensors", "pt") as f:
        out = f.get_tensor("W_enc").clone()[:, idx]  # materialise, as a full load does
elif method == "slice_col":
    with safe_open(path + "/sae_weights.safetensors", "pt") as f:
        sl = f.get_slice("W_enc")
        out = torch.cat([sl[:, i:i+1] for i in idx], 1)
elif method == "memmap":
    from steerc.saes.store import SafetensorsStore
    out = SafetensorsStore(__import__("pathlib").Path(path + "/sae_weights.safetensors")).cols("W_enc", idx)
elif method == "steerc":
    from steerc.saes import load_sae
    out = load_sae(path).select(idx).W_enc
elif method == "row_slice":
    with safe_open(path + "/linear.safetensors", "pt") as f:
        sl = f.get_slice("encoder.weight")
        out = torch.cat([sl[i:i+1] for i in idx], 0).T
s = float(out.sum())  # force the read for lazily mapped tensors
dt = time.perf_counter() - t0
print(json.dumps({"ms": dt * 1e3, "read_mib": (io() - io0) / 2**20,
                  "majflt": resource.getrusage(resource.RUSAGE_SELF).ru_majflt - flt0, "sum": s}))
"""


def main() -> None:
    d_in = int(sys.argv[1]) if len(sys.argv) > 1 else 2304
    d_sae = int(sys.argv[2]) if len(sys.argv) > 2 else 65536
    idx = [3, d_sae // 2 + 1, d_sae - 1]
    import torch
    from safetensors.torch import save_file

    from steerc.saes import SAEConfig, save_saelens

    with tempfile.TemporaryDirectory() as tmp:
        g = torch.Generator().manual_seed(0)
        W_enc = torch.randn(d_in, d_sae, generator=g)
        t = {"W_enc": W_enc, "W_dec": torch.randn(d_sae, d_in, generator=g), "b_enc": torch.zeros(d_sae),
             "b_dec": torch.zeros(d_in), "threshold": torch.zeros(d_sae)}
        cfg = SAEConfig(d_in=d_in, d_sae=d_sae, architecture="jumprelu", hook_name="blocks.0.hook_resid_post")
        save_saelens(t, cfg, tmp)
        save_file({"encoder.weight": W_enc.T.contiguous()}, f"{tmp}/linear.safetensors")
        want = float(W_enc[:, idx].sum())
        del t, W_enc
        print(f"d_in={d_in} d_sae={d_sae}: W_enc is {d_in * d_sae * 4 / 2**20:.0f} MiB fp32; reading 3 features")
        print(f"{'method':10s} {'cold ms':>9s} {'read MiB':>9s} {'maj.faults':>10s} {'warm ms':>8s}  (medians of 3)")
        for method in ("full", "slice_col", "memmap", "steerc", "row_slice"):
            cold, warm = [], []
            for _ in range(3):
                for name in ("sae_weights.safetensors", "linear.safetensors"):
                    fd = os.open(f"{tmp}/{name}", os.O_RDONLY)
                    os.fsync(fd)
                    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                    os.close(fd)
                for bucket in (cold, warm):
                    r = subprocess.run([sys.executable, "-c", CHILD, method, tmp, json.dumps(idx)],
                                       capture_output=True, text=True, check=True)
                    bucket.append(json.loads(r.stdout))
            assert all(abs(x["sum"] - want) < 1e-3 * max(1, abs(want)) for x in cold + warm), method
            med = lambda runs, k: sorted(x[k] for x in runs)[1]  # noqa: E731
            print(f"{method:10s} {med(cold, 'ms'):9.1f} {med(cold, 'read_mib'):9.1f} "
                  f"{med(cold, 'majflt'):10.0f} {med(warm, 'ms'):8.1f}")


if __name__ == "__main__":
    main()
