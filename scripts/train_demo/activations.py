"""Residual-stream activations of the demo model, for SAE training and its checks.

`blocks.{L}.hook_resid_post` is the output of `model.model.layers[L]` (docs/saes.md). The
forward pass stops right after layer L (the later layers are not needed), and position 0
(BOS) is dropped because its activation is an outlier (the Llama Scope demo measured L0 ~17k there).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm
from transformers import AutoTokenizer, LlamaForCausalLM

from scripts.train_demo import data

SEQ = 128


class _Stop(Exception):
    pass


def load_demo(model_dir: Path):
    """(model in eval mode, tokenizer) from a saved demo model folder."""
    model = LlamaForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(model_dir)
    return model.eval(), tok


@torch.no_grad()
def resid_post(model, input_ids: torch.Tensor, layer: int) -> torch.Tensor:
    """[B, T, d] output of `model.model.layers[layer]` (the forward stops there)."""
    got = {}

    def hook(_mod, _inp, out):
        got["x"] = out[0] if isinstance(out, tuple) else out
        raise _Stop

    h = model.model.layers[layer].register_forward_hook(hook)
    try:
        model(input_ids=input_ids)
    except _Stop:
        pass
    finally:
        h.remove()
    return got["x"]


def windows(stream: np.ndarray, n: int, rng: np.random.Generator, bos: int) -> torch.Tensor:
    """[n, SEQ] int64 windows `[BOS] + SEQ-1 tokens` at random offsets of `stream`."""
    offs = rng.integers(0, len(stream) - SEQ, size=n)
    rows = [np.concatenate([[bos], stream[o:o + SEQ - 1]]) for o in offs]
    return torch.from_numpy(np.stack(rows).astype(np.int64))


def collect(model, streams: dict, split: str, n_windows: int, layer: int, bos: int,
            seed: int, batch: int = 32) -> dict[str, torch.Tensor]:
    """{fmt: [n_windows * (SEQ-1), d]} activations per format, BOS positions excluded."""
    out = {}
    for i, fmt in enumerate(data.FORMATS):
        rng = np.random.default_rng(seed + i)
        ids = windows(streams[f"{fmt}.{split}"], n_windows, rng, bos)
        acts = [resid_post(model, ids[j:j + batch], layer)[:, 1:].reshape(-1, model.config.hidden_size)
                for j in tqdm(range(0, n_windows, batch), desc=f"acts {fmt}.{split}", leave=False)]
        out[fmt] = torch.cat(acts)
    return out


@torch.no_grad()
def heldout_activations(model, tok, layer: int, t: dict, heldout: Path) -> dict:
    """Per format: ids [n, SEQ] (`[BOS] + SEQ-1` windows of the held-out documents of
    `heldout/{fmt}.txt`, joined by EOS) and the SAE's activations [n, SEQ-1, d_sae] from its
    JumpReLU tensors `t` (W_enc, b_enc, threshold)."""
    out = {}
    for fmt in data.FORMATS:
        ids = []
        for doc in data.read_heldout(heldout / f"{fmt}.txt"):
            ids.extend(tok(doc, add_special_tokens=False).input_ids + [tok.eos_token_id])
        n = len(ids) // (SEQ - 1)
        body = torch.tensor(ids[:n * (SEQ - 1)]).view(n, SEQ - 1)
        win = torch.cat([torch.full((n, 1), tok.bos_token_id), body], 1)
        acts = []
        for j in range(0, n, 16):
            pre = resid_post(model, win[j:j + 16], layer)[:, 1:] @ t["W_enc"] + t["b_enc"]
            acts.append(torch.relu(pre) * (pre > t["threshold"]))
        out[fmt] = {"ids": win, "acts": torch.cat(acts)}
    return out
