"""`direction NAME = mean "A" - mean "B" at layer L`: a difference of means, computed at
compile time (the DiffMean / refusal-direction recipe: Arditi et al. 2024, AxBench).

    vecs = mean_difference(model, tok, prompts_a, prompts_b, hooks)   # {hook: (d,) float32}

For each prompt set: every prompt is tokenized on its own (BOS first when the tokenizer has
one, at most `MAX_TOKENS` tokens, at most `MAX_PROMPTS` prompts), run through the base
model in fixed batches, and the residual stream at each hook point (read where steerc edits
it, `verify.capture`) is averaged over every content token (BOS/EOS/padding excluded), or
with `last` over each prompt's last content token (the position that predicts what comes
next: prompts cut right before a behaviour give the direction of "about to do it", the
refusal-direction recipe). The direction is mean(A) - mean(B). Sums are float64 in a fixed order, so the same model and
files give the same bytes on every run.
"""

from __future__ import annotations

import sys

import numpy as np
import torch
from tqdm.auto import tqdm

MAX_PROMPTS = 512
MAX_TOKENS = 128
BATCH = 8


@torch.no_grad()
def token_sums(model, tok, prompts, hooks: list[str], reduce, *, last: bool = False,
               progress: bool = False, desc: str = "") -> tuple[dict, int]:
    """Run `prompts` (each on its own: BOS first, at most MAX_TOKENS, at most MAX_PROMPTS) and
    sum `reduce({hook: x})` over the batches, x the residual at the content tokens (`last`:
    each prompt's last content token only), (n, d); returns the sums and the token count n.
    `reduce` maps a batch's residuals to named float64 sums (the mean residual, or an SAE's
    mean activations, `steerc trace --contrast --last`)."""
    from steerc.verify.capture import capture, content_mask

    rows = [_ids(tok, p) for p in list(prompts)[:MAX_PROMPTS]]
    rows = [r for r in rows if r]
    pad = tok.pad_token_id if tok.pad_token_id is not None else (tok.eos_token_id or 0)
    sums: dict = {}
    n = 0
    batches = range(0, len(rows), BATCH)
    bar = tqdm(batches, desc=desc, disable=not progress or len(batches) < 4, leave=False,
               file=sys.stderr)
    with capture(model, hooks) as got:
        for i in bar:
            chunk = rows[i:i + BATCH]
            width = max(len(r) for r in chunk)
            ids = torch.tensor([r + [pad] * (width - len(r)) for r in chunk])
            real = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in chunk])
            model(input_ids=ids, attention_mask=real, use_cache=False)
            mask = content_mask(ids, tok) & real.bool()
            if last:  # keep each row's last content token (rows are right-padded)
                at = torch.arange(width).expand_as(mask)
                mask &= at == torch.where(mask, at, -1).max(1, keepdim=True).values
            for k, v in reduce({h: got[h][mask] for h in hooks}).items():
                sums[k] = v if k not in sums else sums[k] + v
            n += int(mask.sum())
    return sums, n


def token_means(model, tok, prompts, hooks: list[str], *, last: bool = False,
                progress: bool = False, desc: str = "") -> tuple[dict[str, np.ndarray], int]:
    """hook -> mean residual over the content tokens of `prompts` (`last`: each prompt's last
    content token only), float64 sums; and the token count."""
    sums, n = token_sums(model, tok, prompts, hooks,
                         lambda xs: {h: x.double().sum(0) for h, x in xs.items()},
                         last=last, progress=progress, desc=desc)
    d = model.config.hidden_size
    return {h: (sums.get(h, torch.zeros(d, dtype=torch.float64)) / max(n, 1)).numpy() for h in hooks}, n


def _ids(tok, text: str) -> list[int]:
    ids = tok(text, add_special_tokens=False)["input_ids"]
    bos = [tok.bos_token_id] if tok.bos_token_id is not None else []
    return (bos + ids)[:MAX_TOKENS]


def mean_difference(model, tok, prompts_a, prompts_b, hooks: list[str], *, last: bool = False,
                    progress: bool = False) -> dict[str, np.ndarray]:
    """hook -> mean(A) - mean(B), float32 (see the module docstring)."""
    ma, _ = token_means(model, tok, prompts_a, hooks, last=last, progress=progress,
                        desc="direction: mean A")
    mb, _ = token_means(model, tok, prompts_b, hooks, last=last, progress=progress,
                        desc="direction: mean B")
    return {h: (ma[h] - mb[h]).astype(np.float32) for h in hooks}
