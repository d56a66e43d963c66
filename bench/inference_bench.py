"""Runtime cost of a compiled checkpoint: tokens/s of the hooks target vs the base on CPU.

    .venv/bin/python bench/inference_bench.py [--root /tmp/infer] [--d-sae 16384]
        [--tokens 256] [--repeats 5] [--threads 1] [--mode prefill|decode] [--new-tokens 64]

A mid-size synthetic Llama (bench/synth_checkpoint.py `mid`: d=1024, 4 layers, vocab 32000,
bf16 on disk, run in fp32) and one random JumpReLU SAE per hook point (d_sae 16384,
tests.tinymodels.random_sae_dir). For 1, 16, 64 and 256 clamped features (`SET` to 5.0,
spread over 1 or 4 resid_post hook points) the spec is compiled with --target hooks and
loaded with trust_remote_code; a weights-target checkpoint (one exact `steer` -> a bias)
is the control. Throughput is the forward pass over one [1, tokens] prompt (prefill), in
tokens per CPU-second of this process (steadier than wall on a shared machine), base and
steered runs interleaved, best of `repeats`. Ratios are steered / base (1.0 = free).
`--mode decode` times greedy `generate` instead: `--new-tokens` tokens one at a time with the
KV cache after an 8-token prompt (every step runs every hook once, on one position, so a
fixed per-hook overhead weighs most there).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FEATURES = (1, 16, 64, 256)
POINTS = (1, 4)


def _program(base: Path, saes: list[Path], n_feat: int, n_points: int, weights: bool):
    from steerc.compiler.ir import FeatureId, Intervention, Op, Program, SaeBinding

    cfg = json.loads((base / "config.json").read_text())
    d, L = cfg["hidden_size"], cfg["num_hidden_layers"]
    binds = [SaeBinding(f"s{k}", str(saes[k]), f"blocks.{k}.hook_resid_post", d,
                        json.loads((saes[k] / "cfg.json").read_text())["d_sae"], "0" * 64)
             for k in range(L)]
    if weights:
        ivs = (Intervention(Op.ADD, FeatureId("s1", 3), 4.0, ("blocks.1.hook_resid_post",)),)
    else:
        ivs = tuple(Intervention(Op.SET, FeatureId(f"s{i % n_points}", 7 * i), 5.0,
                                 (f"blocks.{i % n_points}.hook_resid_post",))
                    for i in range(n_feat))
    used = sorted({iv.feature.sae for iv in ivs})
    return Program("bench.steer", str(base), tuple(b for b in binds if b.alias in used), None, ivs)


def tokens_per_cpu_s(model, ids, repeats: int) -> float:
    import torch

    best = float("inf")
    with torch.no_grad():
        model(ids[:, :8])  # warm-up
        for _ in range(repeats):
            c0 = time.process_time()
            model(ids)
            best = min(best, time.process_time() - c0)
    return ids.shape[1] / best


def decode_tokens_per_cpu_s(model, ids, new_tokens: int, repeats: int) -> float:
    import torch

    best = float("inf")
    prompt = ids[:, :8]
    kw = dict(max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False,
              pad_token_id=0)
    with torch.no_grad():
        model.generate(prompt, **{**kw, "max_new_tokens": 4, "min_new_tokens": 4})  # warm-up
        for _ in range(repeats):
            c0 = time.process_time()
            out = model.generate(prompt, **kw)
            best = min(best, time.process_time() - c0)
    assert out.shape[1] == prompt.shape[1] + new_tokens, out.shape
    return new_tokens / best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", default="/tmp/infer")
    ap.add_argument("--d-sae", type=int, default=16384)
    ap.add_argument("--tokens", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--mode", choices=("prefill", "decode"), default="prefill")
    ap.add_argument("--new-tokens", type=int, default=64, help="decode mode: tokens generated")
    a = ap.parse_args()

    import torch
    import transformers as tf

    from bench.synth_checkpoint import SHAPES, write_checkpoint
    from steerc.compiler.build_checkpoint import compile_program
    from tests.tinymodels import random_sae_dir

    torch.set_num_threads(a.threads)
    root = Path(a.root)
    s = SHAPES["mid"]
    base = root / "base"
    if not (base / "config.json").exists():
        write_checkpoint(s, base)
    saes = []
    for k in range(s.layers):
        p = root / f"sae{k}-{a.d_sae}"
        if not p.exists():
            random_sae_dir(s.hidden, a.d_sae, f"blocks.{k}.hook_resid_post", p, seed=k, scale=30.0)
        saes.append(p)
    print(f"load: {os.getloadavg()}  threads: {a.threads}  d={s.hidden} layers={s.layers} "
          f"d_sae={a.d_sae} mode={a.mode} "
          + (f"tokens={a.tokens}" if a.mode == "prefill" else f"new_tokens={a.new_tokens}"))
    ids = torch.randint(3, s.vocab, (1, a.tokens), generator=torch.Generator().manual_seed(0))
    ref = tf.AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32).eval()
    cases = [("weights", 1, 1)] + [("hooks", f, p) for p in POINTS for f in FEATURES if f >= p]
    print(f"{'target':8} {'features':>8} {'points':>6} {'base tok/CPU-s':>15} {'steered':>9} {'ratio':>6}")
    for target, n_feat, n_points in cases:
        out = root / f"out-{target}-{n_feat}-{n_points}"
        prog = _program(base, saes, n_feat, n_points, target == "weights")
        compile_program(prog, out, target=target, force=True)
        model = tf.AutoModelForCausalLM.from_pretrained(
            out, dtype=torch.float32, trust_remote_code=(target == "hooks")).eval()
        b_runs, s_runs = [], []
        if a.mode == "prefill":
            def rate(m):
                return tokens_per_cpu_s(m, ids, a.repeats)
        else:
            def rate(m):
                return decode_tokens_per_cpu_s(m, ids, a.new_tokens, a.repeats)
        for _ in range(2):  # interleaved: load drifts hit both alike
            b_runs.append(rate(ref))
            s_runs.append(rate(model))
        b, st = max(b_runs), max(s_runs)
        print(f"{target:8} {n_feat:8} {n_points:6} {b:15.0f} {st:9.0f} {st / b:6.3f}", flush=True)
        del model
    print(f"load: {os.getloadavg()}")


if __name__ == "__main__":
    main()
