"""Calibration throughput vs the model's plain forward pass, and peak memory vs corpus size.

Throughput: for each shape, the same batches go through (a) the plain forward pass (full
model and LM head, no hooks) and (b) calibration as the local engine runs it (forward up to
the SAE's hook, the SAE encoder, the statistics update), alternating batch by batch in one
process so machine load hits both alike. Shapes: the demo model (real weights, real text)
and a synthetic Llama 1B shape (random weights, random tokens), each with a synthetic
16,384-feature JumpReLU SAE at the middle layer whose thresholds make ~64 features fire per
token. Memory: `steerc catalogue calibrate` on the demo with that SAE at growing token
budgets, peak RSS of each run (a fresh process each). Engines: the same `calibrate` job on
the demo (same corpus slice and SAE, `--threads 1`) with the local engine and with
`--engine ray --workers 2` on a local Ray started with `num_cpus=2` (Ray's start-up timed
apart from the job), wall time of each and a check that the two catalogues are byte-identical.

    .venv/bin/python bench/calibrate_bench.py [--tokens-demo 8192 --tokens-1b 1024] [--engines 4000] [--write]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from steerc.catalogue.calibrate.corpus import Batch  # noqa: E402
from steerc.catalogue.calibrate.model import Encoder, SaeJob  # noqa: E402
from steerc.catalogue.calibrate.stats import Partial  # noqa: E402

D_SAE, L0 = 16384, 64


def write_sae(directory: Path, d_in: int, hook: str, sample: torch.Tensor) -> Path:
    """A SAELens v6 JumpReLU SAE whose per-feature thresholds fire ~L0 features per token
    on `sample` (N, d_in) residual activations."""
    from safetensors.torch import save_file

    g = torch.Generator().manual_seed(0)
    W_enc = torch.randn(d_in, D_SAE, generator=g) / d_in ** 0.5
    W_dec = W_enc.T.contiguous()
    b_enc = torch.zeros(D_SAE)
    pre = sample.float() @ W_enc
    thr = torch.quantile(pre[: min(len(pre), 4096)], 1 - L0 / D_SAE, dim=0).clamp_min(1e-3)
    directory.mkdir(parents=True, exist_ok=True)
    save_file({"W_enc": W_enc, "W_dec": W_dec, "b_enc": b_enc, "b_dec": torch.zeros(d_in), "threshold": thr},
              str(directory / "sae_weights.safetensors"))
    cfg = {"d_in": d_in, "d_sae": D_SAE, "dtype": "float32", "device": "cpu", "apply_b_dec_to_input": False,
           "normalize_activations": "none", "reshape_activations": "none", "architecture": "jumprelu",
           "metadata": {"sae_lens_version": "6.0.0", "hook_name": hook, "model_name": "bench"}}
    (directory / "cfg.json").write_text(json.dumps(cfg))
    return directory


def resid(model, ids: torch.Tensor, layer: int) -> torch.Tensor:
    with torch.no_grad():
        out = model(input_ids=ids, output_hidden_states=True)
    return out.hidden_states[layer + 1].reshape(-1, model.config.hidden_size)


def throughput(model, batches: list[torch.Tensor], sae_dir: Path) -> dict:
    from steerc.saes.load import load_sae

    sae = load_sae(sae_dir)
    enc = Encoder(model, [SaeJob("s", str(sae_dir), sae)], "cpu")
    part = Partial.empty(D_SAE, 1, 16, 11)
    t_fwd = t_cal = 0.0
    n = 0
    for i, ids in enumerate(batches):
        B, T = ids.shape
        mask = torch.ones_like(ids, dtype=torch.bool)
        mask[:, 0] = False
        batch = Batch(ids, torch.ones_like(mask), mask, torch.arange(i * B, (i + 1) * B), torch.zeros(B, dtype=torch.int64), 0)
        row, pos = mask.nonzero(as_tuple=True)
        t0 = time.perf_counter()
        with torch.no_grad():
            model(input_ids=ids, use_cache=False)
        t1 = time.perf_counter()
        (acts,) = enc.activations(batch)
        part.add(acts, batch.window[row], pos, batch.source[row], ids, row, 6)
        t2 = time.perf_counter()
        if i:  # the first batch warms up both paths
            t_fwd += t1 - t0
            t_cal += t2 - t1
            n += int(mask.sum())
    l0 = float(part.count.sum()) / max(int(part.n_tokens), 1)
    return {"tokens": n, "forward_s": t_fwd, "calibrate_s": t_cal, "ratio": t_cal / t_fwd,
            "forward_tok_s": n / t_fwd, "calibrate_tok_s": n / t_cal, "l0": l0}


def demo_shape(tokens: int, tmp: Path) -> tuple[dict, Path]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(ROOT / "demo" / "model", dtype=torch.float32).eval()
    tok = AutoTokenizer.from_pretrained(ROOT / "demo" / "model")
    text = "".join((ROOT / "demo" / "heldout" / f"{f}.txt").read_text() for f in ("prose", "code", "json"))
    ids = tok(text, add_special_tokens=False)["input_ids"]
    T, B = 128, 8
    batches = []
    for lo in range(0, tokens + B * (T - 1), B * (T - 1)):
        chunk = torch.tensor(ids[lo:lo + B * (T - 1)]).view(B, T - 1)
        batches.append(torch.cat([torch.full((B, 1), tok.bos_token_id), chunk], 1))
    sae = write_sae(tmp / "demo_sae", model.config.hidden_size, "blocks.2.hook_resid_post", resid(model, batches[0], 2))
    return throughput(model, batches, sae), sae


def one_b_shape(tokens: int, tmp: Path) -> dict:
    import transformers as tf

    cfg = tf.LlamaConfig(hidden_size=2048, intermediate_size=8192, num_hidden_layers=16, num_attention_heads=32,
                         num_key_value_heads=8, vocab_size=128256, tie_word_embeddings=True,
                         max_position_embeddings=2048)
    torch.manual_seed(0)
    model = tf.AutoModelForCausalLM.from_config(cfg).eval()
    T, B = 128, 4
    g = torch.Generator().manual_seed(1)
    batches = [torch.randint(3, cfg.vocab_size, (B, T), generator=g) for _ in range(tokens // (B * (T - 1)) + 1)]
    sae = write_sae(tmp / "1b_sae", 2048, "blocks.8.hook_resid_post", resid(model, batches[0], 8))
    return throughput(model, batches, sae)


def peak_memory(sae: Path, budgets: list[int], tmp: Path) -> list[dict]:
    corpus = tmp / "corpus.txt"
    corpus.write_text("".join((ROOT / "demo" / "heldout" / f"{f}.txt").read_text() for f in ("prose", "code", "json")))
    out = []
    for n in budgets:
        cmd = [sys.executable, "-c",
               "import resource, sys; from steerc.cli import main; rc = main(sys.argv[1:]); "
               "print('PEAK', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss); sys.exit(rc)",
               "catalogue", "calibrate", "--model", str(ROOT / "demo" / "model"), "--sae", f"s={sae}",
               "--corpus", str(corpus), "--max-tokens", str(n), "--no-progress", "-o", str(tmp / f"m{n}.json")]
        t0 = time.perf_counter()
        res = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
        if res.returncode:
            raise SystemExit(res.stderr)
        peak = int(next(ln.split()[1] for ln in res.stdout.splitlines() if ln.startswith("PEAK")))
        out.append({"tokens": n, "peak_mib": peak / 1024, "wall_s": time.perf_counter() - t0})
    return out


ENGINE_RUN = """
import sys, time
t0 = time.perf_counter()
if sys.argv[1] == "ray":
    import ray
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
t1 = time.perf_counter()
from steerc.cli import main
rc = main(sys.argv[2:])
print("TIMES", t1 - t0, time.perf_counter() - t1)
sys.exit(rc)
"""


def engines(sae: Path, tokens: int, tmp: Path) -> dict:
    """Wall time of the same calibrate job on the local engine and on Ray with 2 workers (a
    fresh process each, Ray started in it before the job so its start-up is timed apart);
    raises unless the two catalogues are byte-identical."""
    corpus = tmp / "corpus.txt"
    corpus.write_text("".join((ROOT / "demo" / "heldout" / f"{f}.txt").read_text() for f in ("prose", "code", "json")))
    out = {}
    for engine in ("local", "ray"):
        extra = ["--engine", "ray", "--workers", "2"] if engine == "ray" else []
        cmd = [sys.executable, "-c", ENGINE_RUN, engine,
               "catalogue", "calibrate", "--model", str(ROOT / "demo" / "model"), "--sae", f"s={sae}",
               "--corpus", str(corpus), "--max-tokens", str(tokens), "--threads", "1", "--no-progress",
               "-o", str(tmp / f"e_{engine}.json"), *extra]
        t0 = time.perf_counter()
        res = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
        if res.returncode:
            raise SystemExit(res.stderr)
        start, job = (float(x) for x in next(ln.split()[1:] for ln in res.stdout.splitlines() if ln.startswith("TIMES")))
        out[engine] = {"startup_s": start, "job_s": job, "process_s": time.perf_counter() - t0}
    out["identical"] = (tmp / "e_local.json").read_bytes() == (tmp / "e_ray.json").read_bytes()
    if not out["identical"]:
        raise SystemExit("local and Ray catalogues differ")
    out["tokens"] = tokens
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens-demo", type=int, default=8192)
    ap.add_argument("--tokens-1b", type=int, default=1024)
    ap.add_argument("--memory", default="2000,8000,32000", help="token budgets for the memory runs ('' to skip)")
    ap.add_argument("--engines", type=int, default=4000, help="token budget of the local-vs-Ray runs (0 to skip)")
    ap.add_argument("--skip-1b", action="store_true")
    ap.add_argument("--write", action="store_true", help="rewrite the section in BENCHMARKS.md")
    args = ap.parse_args()
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        demo, sae = demo_shape(args.tokens_demo, tmp)
        print("demo", json.dumps(demo), flush=True)
        mem = peak_memory(sae, [int(x) for x in args.memory.split(",") if x], tmp) if args.memory else []
        print("memory", json.dumps(mem), flush=True)
        eng = engines(sae, args.engines, tmp) if args.engines else None
        print("engines", json.dumps(eng), flush=True)
        big = None if args.skip_1b else one_b_shape(args.tokens_1b, tmp)
        print("1b", json.dumps(big), flush=True)
    rows = [("demo (2.6M, d=192, SAE at layer 2 of 4)", demo)] + ([("Llama 1B shape (d=2048, 16 layers, SAE at layer 8)", big)] if big else [])
    lines = ["## Calibrate", "",
             "`steerc catalogue calibrate` throughput vs the plain forward pass over the same batches, alternating "
             "batch by batch in one process (CPU, fp32, torch threads: default); 16,384-feature JumpReLU SAE. "
             f"Load average at start: {load:.1f} on {os.cpu_count()} cores.", "",
             "```", "HF_HUB_OFFLINE=1 .venv/bin/python bench/calibrate_bench.py " + " ".join(sys.argv[1:]), "```", "",
             "| shape | tokens | forward tok/s | calibrate tok/s | calibrate / forward | features per token |",
             "|---|---|---|---|---|---|"]
    for name, r in rows:
        lines.append(f"| {name} | {r['tokens']} | {r['forward_tok_s']:.0f} | {r['calibrate_tok_s']:.0f} | "
                     f"{r['ratio']:.2f}x | {r['l0']:.0f} |")
    if mem:
        lines += ["", "Peak RSS of a whole `calibrate` run on the demo with the same SAE, by token budget:", "",
                  "| tokens | peak RSS | wall |", "|---|---|---|"]
        lines += [f"| {m['tokens']} | {m['peak_mib']:.0f} MiB | {m['wall_s']:.0f} s |" for m in mem]
    if eng:
        lo, ra = eng["local"], eng["ray"]
        lines += ["", f"The same `calibrate` job ({eng['tokens']} tokens, `--threads 1`), local engine vs "
                  "`--engine ray --workers 2` on a local Ray (`num_cpus=2`), a fresh process each:", "",
                  "| engine | Ray start-up | calibrate job | whole process |", "|---|---|---|---|",
                  f"| local | - | {lo['job_s']:.1f} s | {lo['process_s']:.1f} s |",
                  f"| ray, 2 workers | {ra['startup_s']:.1f} s | {ra['job_s']:.1f} s | {ra['process_s']:.1f} s |",
                  "", "Catalogues byte-identical: " + ("yes" if eng["identical"] else "no") + "."]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        from bench.mdsection import write_section

        write_section(ROOT / "BENCHMARKS.md", text)


if __name__ == "__main__":
    main()
