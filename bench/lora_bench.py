"""`--target lora` vs `--target weights`: output size, compile time, and tokens/s of the
adapter loaded with PEFT vs merged (`merge_and_unload`).

    .venv/bin/python bench/lora_bench.py                               # the demo model
    .venv/bin/python bench/lora_bench.py --shape llama-3.2-1b --tokens 16   # + a synthetic 1B

The rule is `ablate <one feature> everywhere` (the demo: `res2[3]`; a synthetic shape: a
random SAE at its middle layer, bench/scale_bench.py's). "new bytes" are the bytes of the
output's files that are not hard links to the base (what the compile wrote). Needs `peft`.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.outsize import sizes  # noqa: E402


def compile_timed(make, out: Path, target: str) -> float:
    import shutil

    if out.exists():
        shutil.rmtree(out)
    t = time.perf_counter()
    make(out, target)
    return time.perf_counter() - t


def tokens_per_s(model, ids, n: int) -> float:
    import torch

    with torch.no_grad():
        model.generate(ids, max_new_tokens=2, min_new_tokens=2, do_sample=False)  # warm
        t = time.perf_counter()
        model.generate(ids, max_new_tokens=n, min_new_tokens=n, do_sample=False)
    return n / (time.perf_counter() - t)


def bench(name: str, base: Path, make, root: Path, tokens: int) -> list[str]:
    import torch
    import transformers as tf
    from peft import PeftModel

    rows = []
    outs = {}
    for target in ("weights", "lora"):
        out = root / f"{name.replace(' ', '-')}-{target}"
        secs = compile_timed(make, out, target)
        total, new = sizes(out)
        outs[target] = out
        rows.append(f"| {name} | {target} | {secs:.2f} | {total / 2**20:.2f} | {new / 2**20:.2f} |")
    if not tokens:
        return rows
    ids = torch.tensor([[1, 5, 9, 13, 17, 21, 25, 29]])
    base_model = tf.AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32).eval()
    peft_model = PeftModel.from_pretrained(base_model, outs["lora"]).eval()
    tps_peft = tokens_per_s(peft_model, ids, tokens)
    merged = peft_model.merge_and_unload().eval()
    tps_merged = tokens_per_s(merged, ids, tokens)
    weights = tf.AutoModelForCausalLM.from_pretrained(outs["weights"], dtype=torch.float32).eval()
    tps_weights = tokens_per_s(weights, ids, tokens)
    rows.append(f"|| tokens/s (greedy, batch 1, {tokens} new, fp32): PEFT-loaded {tps_peft:.2f}, "
                f"merged {tps_merged:.2f}, weights checkpoint {tps_weights:.2f} ||||")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", default="/tmp/lora-bench")
    ap.add_argument("--shape", default="", help="also a synthetic checkpoint (bench/synth_checkpoint.py SHAPES)")
    ap.add_argument("--tokens", type=int, default=64, help="0: no tokens/s measurement")
    ap.add_argument("--untied", action="store_true", help="the synthetic shape with an untied head")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    torch.manual_seed(0)
    import steerc
    from steerc.compiler.build_checkpoint import compile_program, load_saes

    root = Path(args.root)
    root.mkdir(parents=True, exist_ok=True)
    demo = ROOT / "demo"
    spec = root / "demo_ablate.steer"
    spec.write_text(f'model "{demo / "model"}"\nsae res2 = "{demo / "saes/blocks.2.hook_resid_post"}"\n'
                    f'catalogue "{demo / "catalogue.json"}"\n\nablate res2[3] everywhere\n')
    rows = ["| base | target | compile s | output MiB | new MiB |", "|---|---|---|---|---|"]
    rows += bench("demo", demo / "model", lambda out, t: steerc.compile(spec, out, target=t), root, args.tokens)
    if args.shape:
        from bench.scale_bench import _program, ensure

        if args.untied:  # written before `ensure`, which then only adds the SAE
            import dataclasses

            from bench.synth_checkpoint import SHAPES, write_checkpoint

            if not (root / args.shape / "model.safetensors.index.json").exists():
                write_checkpoint(dataclasses.replace(SHAPES[args.shape], tied=False), root / args.shape,
                                 shard_bytes=2 << 30)
        base, sae = ensure(args.shape, root)
        program = _program(base, sae, "ablate")
        saes = load_saes(program)
        rows += bench(args.shape + (" untied" if args.untied else ""), base, lambda out, t: compile_program(program, out, target=t, saes=saes),
                      root, args.tokens)
    print("\n".join(rows))


if __name__ == "__main__":
    main()
