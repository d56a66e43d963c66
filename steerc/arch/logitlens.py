"""The logit lens of a residual-stream direction: which tokens adding it promotes or suppresses.

    lens = Lens.of(model)                                # None: no output embedding
    logits = lens.logits(sae.decoder_rows([1221]))       # (1, V)
    up, down = lens.top_tokens(sae.decoder_rows([1221]), n=5, skip=tok.all_special_ids)

A direction d added to the last residual stream reaches the logits through the final norm and
the unembedding W_U (V, d). The final norm divides by a positive per-token scale (RMS, or the
standard deviation), so the *change* d makes is, up to that positive factor,

    lens(d) = W_U (g * c(d))     g: the norm's gain (1 + w on Gemma), c: centring under LayerNorm

(a LayerNorm bias is the same for every direction and drops out). Ranking tokens by lens(d)
is exact for the order; `tests/verify/test_logitlens.py` checks it against the model's own
final norm and head for every supported family. Shared by `catalogue calibrate` (promoted /
suppressed tokens written into labels) and `trace` (per candidate feature).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch

# The final norm before the unembedding, by family (first path the model has wins).
FINAL_NORMS = ("model.norm", "transformer.ln_f", "model.final_layernorm", "gpt_neox.final_layer_norm")


@dataclass(frozen=True)
class Lens:
    """Final-norm gain and unembedding of a model, in float32 (see the module docstring)."""

    W_U: torch.Tensor            # (V, d)
    gain: torch.Tensor | None    # (d,) or None (no norm, or a norm without a gain)
    centre: bool                 # LayerNorm: directions are centred first

    @classmethod
    def of(cls, model) -> "Lens | None":
        """The lens of a transformers causal LM; None when it has no output embedding."""
        head = model.get_output_embeddings()
        if head is None or getattr(head, "weight", None) is None:
            return None
        gain, kind = final_norm_gain(model)
        return cls(head.weight.detach().float(), gain, kind == "layernorm")

    @property
    def width(self) -> int:
        """d: the width a direction must have."""
        return self.W_U.shape[1]

    @torch.no_grad()
    def logits(self, directions: torch.Tensor) -> torch.Tensor:
        """(n, d) directions -> (n, V) lens logits."""
        D = directions.float().to(self.W_U.device)
        if self.centre:
            D = D - D.mean(-1, keepdim=True)
        if self.gain is not None:
            D = D * self.gain.to(D.device)
        return D @ self.W_U.T

    def top_tokens(self, directions: torch.Tensor, n: int, skip: Iterable[int] = (),
                   chunk: int = 2048) -> tuple[torch.Tensor, torch.Tensor]:
        """Top-n promoted and top-n suppressed token ids per direction, (k, n) each, highest
        first, never a token in `skip` (special tokens); chunked over directions so a
        65k-feature SAE never holds (d_sae, V) logits at once."""
        skip = sorted(set(int(s) for s in skip if 0 <= int(s) < self.W_U.shape[0]))
        n = min(n, self.W_U.shape[0] - len(skip))
        ups, downs = [], []
        for lo in range(0, directions.shape[0], chunk):
            logits = self.logits(directions[lo:lo + chunk])   # (c, V)
            if skip:
                logits[:, skip] = float("nan")
            ups.append(logits.nan_to_num(float("-inf")).topk(n, dim=-1).indices.cpu())
            downs.append((-logits).nan_to_num(float("-inf")).topk(n, dim=-1).indices.cpu())
        return torch.cat(ups), torch.cat(downs)


def final_norm_gain(model) -> tuple[torch.Tensor | None, str]:
    """The final norm's per-channel gain (d,) and its kind: `layernorm` (also centres its
    input), `rmsnorm` (only scales), or `none`. Gemma's RMSNorm multiplies by (1 + weight)."""
    for path in FINAL_NORMS:
        try:
            norm = model.get_submodule(path)
        except AttributeError:
            continue
        kind = "layernorm" if isinstance(norm, torch.nn.LayerNorm) else "rmsnorm"
        w = getattr(norm, "weight", None)
        if w is None:
            return None, kind
        gemma = model.config.model_type.startswith("gemma")
        return w.detach().float() + (1.0 if gemma else 0.0), kind
    return None, "none"


@torch.no_grad()
def output_side(model, sae, n: int, chunk: int = 2048) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Top-n promoted and suppressed token ids of every feature of `sae`, (d_sae, n) each (no
    token skipped). None when the model has no output embedding or the SAE does not write the
    residual stream's width."""
    lens = Lens.of(model)
    if lens is None or sae.d_in != lens.width:
        return None
    return lens.top_tokens(sae.W_dec, n, chunk=chunk)
