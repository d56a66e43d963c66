"""`--target gguf-cvec` vs `--target weights`: output size and compile time, and (when a
llama.cpp build is on PATH) the control vector run in llama.cpp. Not run by CI.

    .venv/bin/python bench/gguf_cvec_bench.py [--repeats 5] [--synth llama-3.2-1b]

Always: compiles the demo's additive spec (specs/examples/more_json.steer, `amplify
res2[143] by 20` at blocks.2.hook_resid_post) to both targets, `--repeats` times each
after one warm-up (in process: imports and the SAE file cache are warm), and reports the
median wall time, the output's size (every file, as a copy or an upload moves it) and its
new bytes (files not hard-linked to the base). `--synth SHAPE` does the same on a synthetic
bf16 checkpoint of that shape (bench/synth_checkpoint.py; 2.5 GB for llama-3.2-1b) with a
random SAE at the middle layer's resid_post.

llama.cpp (skipped, and said so, unless `llama-eval-callback` is on PATH and
LLAMA_CPP_CONVERT names llama.cpp's convert_hf_to_gguf.py): converts the demo model to an
f32 GGUF, runs llama-eval-callback on one prompt with and without `--control-vector`, and
checks the layer numbering on llama.cpp's own tensors: every `l_out-i` with i < N is
unchanged and `l_out-N` grows by n_tokens x sum(direction.N) (N: the lowest direction).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.outsize import sizes  # noqa: E402
DEMO_SPEC = ROOT / "specs" / "examples" / "more_json.steer"
PROMPT = "def main():\n    "


def time_target(spec: Path, target: str, work: Path, repeats: int) -> dict:
    import steerc

    steerc.compile(spec, work / f"warm-{target}", target=target, force=True)
    walls = []
    for i in range(repeats):
        out = work / f"{target}-{i}"
        t0 = time.perf_counter()
        steerc.compile(spec, out, target=target, force=True)
        walls.append(time.perf_counter() - t0)
    total, new = sizes(work / f"{target}-0")
    return {"target": target, "median_s": statistics.median(walls), "min_s": min(walls),
            "bytes": total, "new_bytes": new}


def synth_spec(shape: str, work: Path) -> Path:
    from bench.synth_checkpoint import SHAPES, write_checkpoint
    from tests.tinymodels import random_sae_dir

    s = SHAPES[shape]
    write_checkpoint(s, work / "base")
    layer = s.layers // 2
    random_sae_dir(s.hidden, 256, f"blocks.{layer}.hook_resid_post", work / "sae")
    spec = work / "synth.steer"
    spec.write_text(f'model "{work / "base"}"\nsae r = "{work / "sae"}"\nsteer r[3] by 4\n')
    return spec


def _human(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1024
    return str(n)


def report(name: str, rows: list[dict]) -> None:
    print(f"\n{name}")
    print("| target | compile median (min) s | output size | new bytes |")
    print("|---|---|---|---|")
    for r in rows:
        print(f"| {r['target']} | {r['median_s']:.3f} ({r['min_s']:.3f}) | {_human(r['bytes'])} "
              f"| {_human(r['new_bytes'])} |")


# ---------------------------------------------------------------------------- llama.cpp

_TENSOR = re.compile(r"ggml_debug:\s+(\S+)\s+=\s+\(\w+\).*?=\s+\{(\d+),\s*(\d+)")
_SUM = re.compile(r"^\s*sum\s*=\s*(\S+)")


def l_out_sums(text: str) -> dict[int, tuple[float, int]]:
    """layer -> (sum of `l_out-<layer>`, its token count) from llama-eval-callback output."""
    out, current = {}, None
    for line in text.splitlines():
        m = _TENSOR.search(line)
        if m:
            name = m.group(1)
            current = (int(name.split("-")[1]), int(m.group(3))) if name.startswith("l_out-") else None
            continue
        m = _SUM.match(line)
        if m and current is not None:
            out.setdefault(current[0], (float(m.group(1)), current[1]))  # the prompt's pass
            current = None
    return out


def run_llama_cpp(cvec_dir: Path, work: Path) -> None:
    import gguf

    tool, convert = shutil.which("llama-eval-callback"), os.environ.get("LLAMA_CPP_CONVERT")
    if tool is None or not convert or not Path(convert).is_file():
        print("\nllama.cpp: skipped (needs llama-eval-callback on PATH and LLAMA_CPP_CONVERT="
              "path/to/convert_hf_to_gguf.py)")
        return
    base = work / "demo-f32.gguf"
    subprocess.run([sys.executable, convert, str(ROOT / "demo" / "model"), "--outtype", "f32",
                    "--outfile", str(base)], check=True, capture_output=True)
    cv = cvec_dir / "control_vector.gguf"
    common = [tool, "-m", str(base), "-p", PROMPT, "-n", "1", "--temp", "0", "--seed", "0"]
    plain = subprocess.run(common, capture_output=True, text=True, check=True)
    steered = subprocess.run(common + ["--control-vector", str(cv)], capture_output=True,
                             text=True, check=True)
    a, b = l_out_sums(plain.stdout + plain.stderr), l_out_sums(steered.stdout + steered.stderr)
    dirs = {int(t.name.split(".")[1]): t.data for t in gguf.GGUFReader(cv).tensors}
    n = min(dirs)
    print(f"\nllama.cpp ({tool}): direction indices {sorted(dirs)}; l_out sums plain vs steered")
    ok = True
    for il in sorted(a):
        (sa, t), (sb, _) = a[il], b[il]
        want = 0.0 if il < n else (t * float(dirs[n].sum()) if il == n else None)
        line = f"  l_out-{il}: {sa:.4f} -> {sb:.4f} (delta {sb - sa:+.4f}"
        if want is not None:
            good = abs((sb - sa) - want) <= 1e-3 * max(1.0, abs(want))
            ok &= good
            line += f", expected {want:+.4f}: {'ok' if good else 'MISMATCH'}"
        print(line + ")")
    print("llama.cpp layer numbering:", "as documented" if ok else "DIFFERS from docs/semantics.md")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--synth", default=None, help="also a synthetic checkpoint of this shape")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        demo = [time_target(DEMO_SPEC, t, work / "demo", args.repeats)
                for t in ("weights", "gguf-cvec")]
        report(f"demo ({DEMO_SPEC.relative_to(ROOT)}), {args.repeats} repeats", demo)
        run_llama_cpp(work / "demo" / "gguf-cvec-0", work)
        if args.synth:
            spec = synth_spec(args.synth, work / "synth")
            rows = [time_target(spec, t, work / "synth-out", args.repeats)
                    for t in ("weights", "gguf-cvec")]
            report(f"synthetic {args.synth}, {args.repeats} repeats", rows)


if __name__ == "__main__":
    main()
