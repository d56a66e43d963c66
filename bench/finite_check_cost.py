"""What the NaN/inf check on every computed block costs a compile (`finite.require_finite`).

    .venv/bin/python bench/finite_check_cost.py [--layers 8] [--hidden 1024] [--repeats 5]

Builds compile_bench.py's synthetic bf16 Llama checkpoint once, then compiles `ablate ...
everywhere` (every writer and the embeddings rewritten: the most computed bytes per compile)
and one additive steer, each in a fresh subprocess, alternating runs with the check on and
with it replaced by a no-op (so machine load hits both alike). Reports per rule the median
wall and CPU seconds of each, and, from the runs with the check on, the CPU seconds spent
inside it (summed over the writer threads with `time.thread_time`) as a share of the
compile's CPU seconds: the figure that does not depend on the machine's load.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def worker(root: Path, rule: str, check: bool, out: Path) -> dict:
    import threading

    import steerc.compiler.build  # noqa: F401  (imports outside the timed region)
    from bench.compile_bench import _program
    from steerc.checkpoint import finite, writer
    from steerc.saes import load_sae

    spent, lock = [0.0, 0], threading.Lock()
    real = finite.require_finite

    def timed(name, block):
        t = time.thread_time()
        real(name, block)
        with lock:
            spent[0] += time.thread_time() - t
            spent[1] += 1

    writer.require_finite = timed if check else (lambda name, block: None)
    sae = load_sae(root / "sae")
    prog = _program(root, rule)
    steerc.compiler.build.load_base(prog.model)  # transformers' lazy imports, outside the timing
    t0, c0 = time.perf_counter(), time.process_time()
    steerc.compiler.build.compile_program(prog, out, force=True, saes={"r": sae})
    return {"seconds": time.perf_counter() - t0, "cpu_seconds": time.process_time() - c0,
            "check_cpu_seconds": spent[0], "blocks": spent[1]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--hidden", type=int, default=1024)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--worker", nargs=4, metavar=("ROOT", "RULE", "CHECK", "OUT"))
    args = ap.parse_args()
    if args.worker:
        root, rule, check, out = args.worker
        print(json.dumps(worker(Path(root), rule, check == "1", Path(out))))
        return
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT))
    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR")) as tmp:
        root = Path(tmp)
        subprocess.run([sys.executable, str(ROOT / "bench" / "compile_bench.py"), "--build", str(root),
                        "--layers", str(args.layers), "--hidden", str(args.hidden)], check=True, env=env)
        for rule in ("ablate", "add"):
            runs: dict[bool, list[dict]] = {True: [], False: []}
            for i in range(2 * args.repeats + 2):  # two warm-ups (page cache, hash cache)
                check = i % 2 == 0
                r = subprocess.run([sys.executable, __file__, "--worker", str(root), rule,
                                    "1" if check else "0", str(root / "out")],
                                   check=True, env=env, capture_output=True, text=True)
                if i >= 2:
                    runs[check].append(json.loads(r.stdout.strip().splitlines()[-1]))
            med = {c: {k: statistics.median(x[k] for x in runs[c]) for k in ("seconds", "cpu_seconds")}
                   for c in runs}
            share = statistics.median(x["check_cpu_seconds"] / x["cpu_seconds"] for x in runs[True])
            print(f"{rule}: check on {med[True]['seconds']:.2f} s wall / {med[True]['cpu_seconds']:.2f} s CPU, "
                  f"off {med[False]['seconds']:.2f} s / {med[False]['cpu_seconds']:.2f} s; inside the "
                  f"check: {100 * share:.1f}% of the compile's CPU ({runs[True][0]['blocks']} blocks)")


if __name__ == "__main__":
    main()
