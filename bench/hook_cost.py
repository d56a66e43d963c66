"""Cost of one fused steerc hook next to the decoder layer it sits on (CPU, fp32).

Compares, at one hook point of a Llama-shaped layer: the layer itself; steerc's fused
SteerHook (k selected JumpReLU features, set/scale ops, 2 local ablations); and the obvious
alternative, a full-SAE hook (encode all d_sae features, edit them, decode the difference).

    .venv/bin/python bench/hook_cost.py [--d 1024 --tokens 256 --k 32]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
import torch.utils.benchmark as tb

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from steerc.runtime.modeling_steerc import POSITIONS, SteerHook  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--d", type=int, default=1024)
    ap.add_argument("--tokens", type=int, default=256)
    ap.add_argument("--k", type=int, default=32)
    ap.add_argument("--expansion", type=int, default=16)
    args = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(1)
    from transformers import LlamaConfig
    from transformers.models.llama.modeling_llama import LlamaDecoderLayer, LlamaRotaryEmbedding

    d, T, k, D = args.d, args.tokens, args.k, args.d * args.expansion
    cfg = LlamaConfig(hidden_size=d, intermediate_size=int(2.6875 * d), num_attention_heads=d // 64,
                      num_key_value_heads=d // 64, num_hidden_layers=1)
    cfg._attn_implementation = "sdpa"
    layer = LlamaDecoderLayer(cfg, 0).eval()
    x = torch.randn(1, T, d)
    pos = torch.arange(T)[None]
    pe = LlamaRotaryEmbedding(cfg)(x, pos)

    W_enc, b_enc, W_dec = torch.randn(d, D) / d**0.5, torch.zeros(D), torch.randn(D, d) / d**0.5
    thr = torch.full((D,), 0.1)
    sel = torch.arange(k)
    spec = {"hook": "blocks.0.hook_resid_post", "path": "", "where": "out", "add_input_of": None,
            "residual": True, "d": d, "n_ops": k, "local_rank": 2, "local_positions": "all",
            "groups": [{"architecture": "jumprelu", "d_in": d, "n": k, "d_sae": None, "k": None,
                        "apply_b_dec_to_input": False, "normalize": "none"}]}
    hook = SteerHook(spec)
    with torch.no_grad():
        g = hook.groups[0]
        g.W_enc.copy_(W_enc[:, sel]); g.b_enc.copy_(b_enc[sel]); g.threshold.copy_(thr[sel])
        hook.W_dec.copy_(W_dec[sel]); hook.op_code.fill_(1); hook.op_src.copy_(torch.arange(1, k + 1))
        hook.Q_local.copy_(torch.linalg.qr(torch.randn(d, 2)).Q)

    def full_sae(x):
        pre = x @ W_enc + b_enc
        f = torch.relu(pre) * (pre > thr)
        target = f.clone()
        target[..., sel] = 0.0
        return x + (target - f) @ W_dec

    with torch.no_grad():
        runs = {
            "decoder layer": lambda: layer(x, position_embeddings=pe, position_ids=pos),
            f"steerc fused hook (k={k})": lambda: hook(x, POSITIONS["prompt"]),
            f"full-SAE hook (d_sae={D})": lambda: full_sae(x),
        }
        times = {n: tb.Timer(stmt="f()", globals={"f": f}).blocked_autorange(min_run_time=1.0).median
                 for n, f in runs.items()}
    base = times["decoder layer"]
    print(f"d={d} tokens={T} (1 thread, fp32, {torch.__version__})")
    for n, t in times.items():
        print(f"  {n:32s} {t * 1e3:8.3f} ms   {t / base * 100:6.1f}% of the layer")


if __name__ == "__main__":
    main()
