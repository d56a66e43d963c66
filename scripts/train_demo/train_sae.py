"""Train the demo SAE on `blocks.{L}.hook_resid_post` (L = n_layers // 2), save it SAELens v6.

    python -m scripts.train_demo.train_sae                  # writes demo/saes/blocks.2.hook_resid_post/

Training: BatchTopK (k per token on average, top k*B over the whole batch; Bussmann et al.
2024) with an AuxK loss on features dead for `DEAD_TOKENS` tokens (Gao et al. 2024), decoder
rows kept at unit norm, and a penalty pulling each encoder column's projection on its decoder
row to 1 (`--align`): without it the demo SAE's median w.d was 0.65 and a suppressed feature
read back at ~35% of its pre-activation; with it (0.3) 0.997, at the same variance
explained. Inference: saved as JumpReLU with one global threshold, the mean over 20
batches of the smallest selected activation (final weights), as SAELens saves BatchTopK SAEs
(docs/saes.md), so one feature's activation depends only on its own pre-activation.
Statistics (variance explained, L0, dead fraction) are measured on held-out windows with the
saved JumpReLU encoder; BOS positions are never used.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import save_file
from tqdm import tqdm

from scripts.train_demo import activations, data, tokenizer

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "demo"
CACHE = ROOT / "build" / "demo"
DEAD_TOKENS = 25_000  # ~50 steps; AuxK then keeps rare features alive


@dataclass(frozen=True)
class Figures:
    variance_explained: float
    l0: float
    dead_fraction: float
    n_tokens: int


def encode_jumprelu(x, W_enc, b_enc, threshold):
    """f = ReLU(pre) * (pre > threshold), pre = x @ W_enc + b_enc.  x [N, d_in] -> [N, d_sae]."""
    pre = x @ W_enc + b_enc
    return torch.relu(pre) * (pre > threshold)


@torch.no_grad()
def measure(x: torch.Tensor, t: dict[str, torch.Tensor], chunk: int = 8192) -> Figures:
    """Variance explained (1 - SSE / SS about the mean), mean L0, fraction of features that
    never fire, for JumpReLU tensors `t` on activations x [N, d_in]."""
    sse, fired, l0 = 0.0, torch.zeros(t["W_enc"].shape[1], dtype=torch.bool), 0.0
    for i in range(0, len(x), chunk):
        xb = x[i:i + chunk]
        f = encode_jumprelu(xb, t["W_enc"], t["b_enc"], t["threshold"])
        sse += ((f @ t["W_dec"] + t["b_dec"] - xb) ** 2).sum().item()
        fired |= (f > 0).any(0)
        l0 += (f > 0).sum().item()
    sst = ((x - x.mean(0)) ** 2).sum().item()
    return Figures(1 - sse / sst, l0 / len(x), 1 - fired.float().mean().item(), len(x))


@torch.no_grad()
def suppress_readback(x: torch.Tensor, t: dict[str, torch.Tensor]) -> dict:
    """How well one feature's `suppress` (x - a_i d_i, error term kept) reads back as 0 when
    the edited stream is re-encoded, over the live features on activations x [N, d_in]:
    median encoder/decoder alignment w_i . d_i, and the drop of each feature's summed
    activation (median, mean, share of features that lose >= 90%)."""
    f = encode_jumprelu(x, t["W_enc"], t["b_enc"], t["threshold"])
    live = torch.nonzero((f > 0).any(0)).flatten().tolist()
    wd = (t["W_enc"].T * t["W_dec"]).sum(1)
    drops = []
    for i in live:
        on = f[:, i] > 0
        a = f[on, i]
        pre = (x[on] - a[:, None] * t["W_dec"][i]) @ t["W_enc"][:, i] + t["b_enc"][i]
        after = torch.relu(pre) * (pre > t["threshold"][i])
        drops.append(1 - (after.sum() / a.sum()).item())
    d = torch.tensor(drops)
    return {"alignment_median": wd[live].median().item(), "drop_median": d.median().item(),
            "drop_mean": d.mean().item(), "share_drop_ge_90pct": (d >= 0.9).float().mean().item()}


def train(x: torch.Tensor, d_sae: int, k: int, steps: int, batch: int, lr: float, seed: int,
          align: float = 0.0):
    """BatchTopK + AuxK training on x [N, d_in]; returns JumpReLU tensors (SAELens names).

    `align` weights a penalty mean_i (1 - w_i . d_i)^2 on each feature's encoder column w_i
    against its unit decoder row d_i. Suppressing feature i subtracts a_i d_i from the
    stream, which lowers its re-encoded pre-activation by a_i (w_i . d_i): only at w.d = 1
    does a suppressed feature read back as 0."""
    g = torch.Generator().manual_seed(seed)
    d_in = x.shape[1]
    W_dec = torch.randn(d_sae, d_in, generator=g)
    W_dec /= W_dec.norm(dim=1, keepdim=True)
    p = {"W_enc": torch.nn.Parameter(W_dec.T.clone()), "W_dec": torch.nn.Parameter(W_dec),
         "b_enc": torch.nn.Parameter(torch.zeros(d_sae)),
         "b_dec": torch.nn.Parameter(x[:50_000].median(0).values.clone())}
    opt = torch.optim.Adam(p.values(), lr=lr, betas=(0.9, 0.999))
    since_fired = torch.zeros(d_sae)  # tokens since each feature last fired
    k_aux, thr_ema, var = d_in // 2, None, ((x - x.mean(0)) ** 2).sum(1).mean()
    bar = tqdm(range(steps), desc="train_sae", mininterval=10)
    for step in bar:
        lr_now = lr * min(1.0, (steps - step) / (0.2 * steps))  # linear decay, last 20%
        for grp in opt.param_groups:
            grp["lr"] = lr_now
        xb = x[torch.randint(0, len(x), (batch,), generator=g)]
        pre = torch.relu((xb - p["b_dec"]) @ p["W_enc"] + p["b_enc"])  # [B, d_sae]
        top = pre.flatten().topk(k * batch)
        f = torch.zeros_like(pre.flatten()).scatter(0, top.indices, top.values).view_as(pre)
        x_hat = f @ p["W_dec"] + p["b_dec"]
        loss = ((x_hat - xb) ** 2).sum(1).mean() / var
        with torch.no_grad():
            fired = (f > 0).any(0)
            since_fired = torch.where(fired, 0.0, since_fired + batch)
            m = top.values[-1].item()  # smallest selected activation in this batch
            thr_ema = m if thr_ema is None else 0.99 * thr_ema + 0.01 * m
        dead = since_fired > DEAD_TOKENS
        if dead.any():  # AuxK: dead features reconstruct the residual error
            pre_dead = pre * dead
            ka = min(k_aux, int(dead.sum()))
            vals, idx = pre_dead.topk(ka, dim=1)
            e_hat = torch.zeros_like(pre).scatter(1, idx, vals) @ p["W_dec"]
            aux = ((e_hat - (xb - x_hat).detach()) ** 2).sum(1).mean() / var
            loss = loss + aux / 32
        if align:
            loss = loss + align * ((1 - (p["W_enc"].T * p["W_dec"]).sum(1)) ** 2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            p["W_dec"] /= p["W_dec"].norm(dim=1, keepdim=True)
        if step % 50 == 0:
            bar.set_postfix(nmse=f"{loss.item():.3f}", dead=int(dead.sum()), thr=f"{thr_ema:.3f}")
    with torch.no_grad():  # threshold from the final weights (the running mean lags)
        mins = []
        for _ in range(20):
            xb = x[torch.randint(0, len(x), (batch,), generator=g)]
            pre = torch.relu((xb - p["b_dec"]) @ p["W_enc"] + p["b_enc"])
            mins.append(pre.flatten().topk(k * batch).values[-1].item())
        thr_final = sum(mins) / len(mins)
    t = {n: v.detach().clone() for n, v in p.items()}
    # x' = x - b_dec is folded into b_enc so the file uses apply_b_dec_to_input = false.
    t["b_enc"] = t["b_enc"] - t["b_dec"] @ t["W_enc"]
    t["threshold"] = torch.full((d_sae,), thr_final)
    return t


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=DEMO / "model")
    ap.add_argument("--expansion", type=int, default=8)
    ap.add_argument("--k", type=int, default=24)
    ap.add_argument("--steps", type=int, default=8000)
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--train-windows", type=int, default=2000, help="per format")
    ap.add_argument("--heldout-windows", type=int, default=200, help="per format")
    ap.add_argument("--align", type=float, default=0.3,
                    help="encoder/decoder alignment penalty weight (see train())")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1,
                    help="the shipped SAE used 1 (CPU results depend on the thread count)")
    ap.add_argument("--out-root", type=Path, default=DEMO, help="writes saes/<hook>/ here")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    t0 = time.time()

    model, tok = activations.load_demo(args.model)
    layer = model.config.num_hidden_layers // 2
    hook = f"blocks.{layer}.hook_resid_post"
    corpus = data.build_corpus()
    streams = tokenizer.encode_corpus(tok, corpus, CACHE / f"cache-{data.corpus_digest(corpus)[:12]}")
    tr = activations.collect(model, streams, "train", args.train_windows, layer,
                             tok.bos_token_id, seed=args.seed + 100)
    ho = activations.collect(model, streams, "heldout", args.heldout_windows, layer,
                             tok.bos_token_id, seed=args.seed + 200)
    x = torch.cat([tr[f] for f in data.FORMATS])
    t_collect = time.time() - t0
    d_in = x.shape[1]
    t = train(x, d_in * args.expansion, args.k, args.steps, args.batch, args.lr, args.seed,
              args.align)
    figs = {f: measure(ho[f], t).__dict__ for f in data.FORMATS}
    xh = torch.cat([ho[f] for f in data.FORMATS])
    allf = measure(xh, t).__dict__
    readback = suppress_readback(xh, t)

    out = args.out_root / "saes" / hook
    try:
        from steerc.saes.base import SAEConfig
        from steerc.saes.save import save_saelens
        save_saelens(t, SAEConfig(d_in=d_in, d_sae=d_in * args.expansion,
                                  architecture="jumprelu", hook_name=hook,
                                  model_name="steerc-demo"), out)
    except ImportError:  # pragma: no cover - steerc always present in this repo
        out.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in t.items()}, str(out / "sae_weights.safetensors"),
                  metadata={"format": "pt"})
    cfg = json.loads((out / "cfg.json").read_text()) if (out / "cfg.json").exists() else {
        "d_in": d_in, "d_sae": d_in * args.expansion, "dtype": "float32", "device": "cpu",
        "apply_b_dec_to_input": False, "normalize_activations": "none",
        "reshape_activations": "none", "architecture": "jumprelu",
        "metadata": {"sae_lens_version": "6.18.0", "hook_name": hook, "model_name": "steerc-demo"}}
    cfg["metadata"].update({"context_size": activations.SEQ, "prepend_bos": True,
                            "dataset_path": "demo/DATA.md", "exclude_special_tokens": True,
                            "hook_head_index": None, "seqpos_slice": [1, None],
                            "model_class_name": "LlamaForCausalLM"})
    (out / "cfg.json").write_text(json.dumps(cfg, indent=2) + "\n")
    # SAELens sparsity file: log10 firing fraction on the held-out activations.
    frac = (encode_jumprelu(xh, t["W_enc"], t["b_enc"], t["threshold"]) > 0).float().mean(0)
    save_file({"sparsity": torch.log10(frac + 1e-10)}, str(out / "sparsity.safetensors"))

    summary = {"hook": hook, "layer": layer, "d_in": d_in, "d_sae": d_in * args.expansion,
               "training": "BatchTopK + AuxK, saved as JumpReLU (global threshold)",
               "k": args.k, "steps": args.steps, "batch": args.batch, "lr": args.lr,
               "align": args.align, "train_windows_per_format": args.train_windows,
               "seed": args.seed, "train_tokens": len(x), "threshold": float(t["threshold"][0]),
               "heldout": allf, "heldout_per_format": figs, "suppress_readback": readback,
               "collect_s": t_collect,
               "wall_s": time.time() - t0}
    (args.out_root / "sae_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
