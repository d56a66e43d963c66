"""The cost in tokens/s of the seed's three uses on the demo: format (JSON only), domain
(prose only), two feature guardrails (no `self`, no Amazon) and a direction guardrail (no
`self`), each a compiled example spec.

    .venv/bin/python bench/seed_uses.py [--root /tmp/seed-uses] [--prompts 16] [--repeats 3] [--only SPEC ...]

Each spec is compiled (`steerc compile`, target auto) and loaded the way `steerc verify`
loads it (base and steered model, fp32, the shipped code only). Throughput is batched greedy
decoding (`verify`'s `generate_many`: left-padded, 48 new tokens) of the first `--prompts`
prompts of the spec's own held-out file, in generated tokens per CPU-second of this process
(steadier than wall time on a shared machine), base and steered runs interleaved, best of
`--repeats`. The JSON spec generates through its guard, as a user's `generate()` does.
The rates, KL and feature changes of the same specs come from `steerc verify` (README,
"The seed's three uses").
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

USES = (("format: JSON only", "json_rates", "requests.txt"),
        ("format: JSON valid for a schema", "json_schema_rates", "requests.txt"),
        ("domain: prose only", "prose_rates", "code.jsonl"),
        ("guardrail: no `self`", "no_self_rates", "code.jsonl"),
        ("guardrail: no `self`, a direction", "no_self_direction", "code.jsonl"),
        ("guardrail: no Amazon", "no_amazon_rates", "aws_docs.jsonl"))
NEW_TOKENS = 48


def _prompts(name: str, n: int) -> list[str]:
    from steerc.files import prompts

    path = ROOT / "specs" / "examples" / "prompts" / name
    return list(prompts.read_prompts(str(path), prompts.CHECK_KIND).prompts)[:n]


def _rate(model, tok, texts: list[str], guarded: bool) -> float:
    """Generated tokens per CPU-second of one batched greedy pass."""
    from steerc.verify.checks import generate_many

    t = time.process_time()
    generate_many(model, tok, texts, NEW_TOKENS, guarded)
    return len(texts) * NEW_TOKENS / (time.process_time() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", default="/tmp/seed-uses")
    ap.add_argument("--prompts", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--only", nargs="*", metavar="SPEC", help="these example specs only (by name)")
    a = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    from steerc.verify.checkpoint import load_models, open_steered

    torch.manual_seed(0)
    rows = []
    for use, spec, prompt_file in USES:
        if a.only and spec not in a.only:
            continue
        out = Path(a.root) / spec
        subprocess.run([sys.executable, "-m", "steerc", "compile", str(ROOT / "specs" / "examples" / f"{spec}.steer"),
                        "-o", str(out), "--force", "--no-progress"], check=True)
        ck = open_steered(out)
        base, steered, tok = load_models(ck)
        texts = _prompts(prompt_file, a.prompts)
        best_b = best_s = 0.0
        for _ in range(a.repeats):
            best_b = max(best_b, _rate(base, tok, texts, False))
            best_s = max(best_s, _rate(steered, tok, texts, ck.guard))
        rows.append({"use": use, "spec": spec, "target": ck.manifest["target"], "guard": ck.guard,
                     "base_tok_s": round(best_b, 1), "steered_tok_s": round(best_s, 1),
                     "ratio": round(best_s / best_b, 3)})
        print(json.dumps(rows[-1]), flush=True)
    print("\n| use | spec | target | base tok/s | steered tok/s | steered / base |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['use']} | `{r['spec']}` | {r['target']}{' + guard' if r['guard'] else ''} | "
              f"{r['base_tok_s']} | {r['steered_tok_s']} | {r['ratio']:.2f}x |")


if __name__ == "__main__":
    main()
