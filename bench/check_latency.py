"""`steerc check` wall time, this tree against a baseline revision, in fresh processes.

    flock /tmp/steerc-bench.lock .venv/bin/python bench/check_latency.py [--runs 10] [--write]

Each run is `python -m steerc.cli check SPEC` in a new interpreter (what CI and pre-commit
pay), with the working directory at the tree being measured so that tree's `steerc` is
imported. The baseline is a `git worktree` of `--baseline` (default: the commit before
check stopped importing torch), removed afterwards. Runs alternate baseline / current so
machine-load drift hits both alike.

cold: an empty $STEERC_CACHE_DIR per run (the SAE content hash is computed from the file
bytes and the catalogue index is rebuilt); warm: a cache filled by one unmeasured run.
The OS page cache is warm in both (the files were just read).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.mdsection import write_section  # noqa: E402

BASELINE = "f115b95"  # last commit whose `check` imported torch (steerc/saes/base.py)


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def one_run(tree: Path, spec: Path, cache: Path) -> float:
    env = dict(os.environ, STEERC_CACHE_DIR=str(cache), HF_HUB_OFFLINE="1")
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "steerc.cli", "check", str(spec)], cwd=tree, env=env,
                       capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if p.returncode != 0 or not p.stdout.startswith("ok"):
        raise SystemExit(f"check failed in {tree}: {p.stdout[-500:]}{p.stderr[-1500:]}")
    return dt


def imports_torch(tree: Path, spec: Path, cache: Path) -> bool:
    code = ("import sys; from steerc.cli import main; main(['check', sys.argv[1]]); "
            "print('TORCH' if 'torch' in sys.modules else 'NO')")
    env = dict(os.environ, STEERC_CACHE_DIR=str(cache), HF_HUB_OFFLINE="1")
    out = subprocess.run([sys.executable, "-c", code, str(spec)], cwd=tree, env=env,
                         capture_output=True, text=True).stdout
    return out.strip().endswith("TORCH")


def measure(trees: dict[str, Path], spec: Path, runs: int, work: Path) -> dict:
    times: dict[tuple[str, str], list[float]] = {(t, m): [] for t in trees for m in ("cold", "warm")}
    warm = {t: work / f"warm-{t}" for t in trees}
    for t, tree in trees.items():
        one_run(tree, spec, warm[t])  # fills the warm cache and the bytecode caches
    for i in range(runs):
        for t, tree in trees.items():
            times[(t, "cold")].append(one_run(tree, spec, work / f"cold-{t}-{i}"))
            times[(t, "warm")].append(one_run(tree, spec, warm[t]))
    torch = {t: imports_torch(tree, spec, warm[t]) for t, tree in trees.items()}
    return {"times": times, "torch": torch}


def section(r: dict, spec: str, runs: int, baseline: str, load_before: str, load_after: str) -> str:
    rows = []
    for t in ("baseline", "current"):
        for m in ("cold", "warm"):
            xs = r["times"][(t, m)]
            rows.append(f"| {t} ({'imports torch' if r['torch'][t] else 'no torch'}) | {m} | "
                        f"{min(xs):.2f} | {statistics.median(xs):.2f} |")
    ratio = {m: statistics.median(r["times"][("baseline", m)]) / statistics.median(r["times"][("current", m)])
             for m in ("cold", "warm")}
    return "\n".join([
        "## check latency",
        "",
        f"`steerc check {spec}` in a fresh interpreter, {runs} runs each, baseline and current "
        f"alternating (`flock /tmp/steerc-bench.lock .venv/bin/python bench/check_latency.py --write`). "
        f"Baseline: `{baseline}`, whose check imported torch through `steerc.saes`. Cold: empty "
        "`$STEERC_CACHE_DIR` (SAE hash from the file bytes, catalogue index rebuilt); warm: cache filled.",
        "",
        "| tree | cache | best (s) | median (s) |",
        "|---|---|---|---|",
        *rows,
        "",
        f"Median speed-up: {ratio['cold']:.1f}x cold, {ratio['warm']:.1f}x warm. "
        f"Load average (1/5/15 min) before: {load_before}; after: {load_after} (2 shared cores).",
        "Still importing torch: `explain` (transformers' AutoConfig).",
    ])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--spec", default="specs/examples/no_code.steer")
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--baseline", default=BASELINE, help="git revision to compare against")
    ap.add_argument("--write", action="store_true", help="write the BENCHMARKS.md section")
    args = ap.parse_args(argv)
    spec = (ROOT / args.spec).resolve()
    load_before = load_average()
    with tempfile.TemporaryDirectory(prefix="steerc-check-bench-") as tmp:
        work = Path(tmp)
        base = work / "baseline"
        subprocess.run(["git", "worktree", "add", "--detach", str(base), args.baseline], cwd=ROOT,
                       check=True, capture_output=True)
        try:
            r = measure({"baseline": base, "current": ROOT}, spec, args.runs, work)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(base)], cwd=ROOT, capture_output=True)
    text = section(r, args.spec, args.runs, args.baseline, load_before, load_average())
    print(text)
    if args.write:
        write_section(ROOT / "BENCHMARKS.md", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
