"""Compile time and peak RSS: steerc's streaming emitter vs the naive way
(from_pretrained -> edit in memory -> save_pretrained), same checkpoint, same edits.

    .venv/bin/python bench/compile_bench.py [--layers 8] [--hidden 1024] [--repeats 2]

Builds a synthetic bf16 Llama checkpoint (a few hundred MB, sharded) once in a temp dir,
then runs each (method, rule) in a fresh subprocess that reports its own wall time (after
imports) and peak RSS (`resource.getrusage(RUSAGE_SELF).ru_maxrss`). Rules: one additive
steer at resid_post of the middle layer (one bias), and `ablate ... everywhere` (every
writer and the embeddings). Both methods produce the same tensors (checked at the end).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def build(root: Path, layers: int, hidden: int) -> None:
    import torch
    import transformers as tf

    from tests.tinymodels import random_sae_dir

    cfg = tf.LlamaConfig(vocab_size=32000, hidden_size=hidden, intermediate_size=int(hidden * 2.75),
                         num_hidden_layers=layers, num_attention_heads=hidden // 64,
                         num_key_value_heads=hidden // 64, tie_word_embeddings=False)
    torch.manual_seed(0)
    with torch.device("cpu"):
        model = tf.AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16)
    model.save_pretrained(root / "base", max_shard_size="100MB")
    random_sae_dir(hidden, 256, f"blocks.{layers // 2}.hook_resid_post", root / "sae")


def _program(root: Path, rule: str):
    from steerc.compiler.ir import FeatureId, Intervention, Op, Program, SaeBinding

    cfg = json.loads((root / "base" / "config.json").read_text())
    L, d = cfg["num_hidden_layers"] // 2, cfg["hidden_size"]
    b = SaeBinding("r", str(root / "sae"), f"blocks.{L}.hook_resid_post", d, 256, "0" * 64)
    if rule == "add":
        iv = Intervention(Op.ADD, FeatureId("r", 3), 4.0, (f"blocks.{L}.hook_resid_post",))
    else:
        iv = Intervention(Op.PROJECT_OUT, FeatureId("r", 3), 0.0, (), everywhere=True)
    return Program("bench.steer", str(root / "base"), (b,), None, (iv,))


def worker(root: Path, method: str, rule: str, out: Path) -> dict:
    import torch
    import transformers as tf  # imports stay outside the timed region for both methods
    from transformers import AutoConfig, LlamaForCausalLM  # noqa: F401

    import steerc.compiler.build_checkpoint  # noqa: F401
    import steerc.runtime.build_hooks  # noqa: F401
    from steerc.arch.registry import adapter_for  # noqa: F401
    from steerc.saes import load_sae

    sae = load_sae(root / "sae")
    prog = _program(root, rule)
    t0, c0 = time.perf_counter(), time.process_time()
    if method == "steerc":
        from steerc.compiler.build_checkpoint import compile_program

        compile_program(prog, out, force=True, saes={"r": sae})
    else:
        import transformers as tf

        from steerc.compiler import edits

        d_i = sae.decoder_rows([3])[0].float()
        kw = {"mlp_bias": True} if rule == "add" else {}
        model = tf.AutoModelForCausalLM.from_pretrained(root / "base", dtype=torch.bfloat16, **kw)
        with torch.no_grad():
            if rule == "add":
                L = model.config.num_hidden_layers // 2
                for n, p in model.named_parameters():
                    if n.endswith("mlp.gate_proj.bias") or n.endswith("up_proj.bias") or n.endswith("down_proj.bias"):
                        p.zero_()
                b = model.model.layers[L].mlp.down_proj.bias
                b.copy_(edits.add_to_bias(b, 4.0 * d_i))
            else:
                Q = edits.orthonormal_basis([d_i])
                for layer in model.model.layers:
                    for lin in (layer.self_attn.o_proj, layer.mlp.down_proj):
                        lin.weight.copy_(edits.project_writer(lin.weight, Q, "linear"))
                e = model.model.embed_tokens.weight
                e.copy_(edits.project_embedding(e, Q))
        model.save_pretrained(out, max_shard_size="100MB")
    secs, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"seconds": secs, "cpu_seconds": cpu, "peak_rss_mb": peak_rss_mib()}


def peak_rss_mib() -> float:
    """This process's peak RSS. VmHWM where /proc has it: ru_maxrss survives exec on Linux,
    so it would include the forking parent's memory."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _same_tensors(a: Path, b: Path) -> bool:
    """Same names and bytes, compared header by header (no torch in this parent)."""
    from steerc.checkpoint.reader import open_checkpoint

    ca, cb = open_checkpoint(a), open_checkpoint(b)
    if set(ca.tensors) != set(cb.tensors):
        return False
    return all(ca.raw(n) == cb.raw(n) and ca.info(n).dtype == cb.info(n).dtype for n in ca.tensors)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--hidden", type=int, default=1024)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--worker", nargs=4, metavar=("ROOT", "METHOD", "RULE", "OUT"))
    ap.add_argument("--build", metavar="ROOT")
    args = ap.parse_args()
    if args.build:
        build(Path(args.build), args.layers, args.hidden)
        return
    if args.worker:
        root, method, rule, out = args.worker
        print(json.dumps(worker(Path(root), method, rule, Path(out))))
        return
    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR")) as tmp:
        root = Path(tmp)
        # Built in a child: this parent stays small, so its workers start lean.
        subprocess.run([sys.executable, __file__, "--build", str(root), "--layers", str(args.layers),
                        "--hidden", str(args.hidden)], check=True, capture_output=True)
        size = sum(f.stat().st_size for f in (root / "base").glob("*.safetensors"))
        print(f"checkpoint: Llama bf16, {args.layers} layers, d={args.hidden}, "
              f"{size / 2**20:.0f} MiB in {len(list((root / 'base').glob('*.safetensors')))} shards")
        print(f"{'rule':8} {'method':8} {'wall s (min)':>13} {'CPU s (min)':>12} {'peak RSS MiB (max)':>19}")
        for rule in ("add", "ablate"):
            for method in ("steerc", "naive"):
                runs = []
                for _ in range(args.repeats):
                    p = subprocess.run([sys.executable, __file__, "--worker", str(root), method, rule,
                                        str(root / f"out-{method}-{rule}")],
                                       capture_output=True, text=True, check=True)
                    runs.append(json.loads(p.stdout.strip().splitlines()[-1]))
                print(f"{rule:8} {method:8} {min(r['seconds'] for r in runs):13.2f} "
                      f"{min(r['cpu_seconds'] for r in runs):12.2f} "
                      f"{max(r['peak_rss_mb'] for r in runs):19.0f}", flush=True)
            same = _same_tensors(root / f"out-steerc-{rule}", root / f"out-naive-{rule}")
            print(f"{rule:8} same tensors from both methods: {same}")


if __name__ == "__main__":
    main()
