"""What an SAE feature does to the output: the tokens its decoder direction promotes and
suppresses (logit lens), and its output score: how much steering with it raises them.

    lens = lens_tokens(Lens.of(model), tok, sae, [1221], n=5)   # {1221: (up ids, down ids)}
    scores = output_scores(model, tok, {"res2": sae}, [("res2", 1221, up_ids)], neutral_docs)

After Arad, Mueller & Belinkov (2025), "SAEs Are Good for Steering - If You Select the Right
Features": features chosen by their output effect steer far better than features chosen by
their activations. The score here (docs/verify.md, "Output score") is their idea in a form
whose every number can be read back:

    x <- x + alpha d_i at the feature's own hook point (exactly a `steer` rule, `runtime.apply`),
    alpha |d_i| = strength * mean |x| over the neutral tokens at that point,
    output_score = mean over positions of  P_steered(T_i) - P_base(T_i),

T_i the feature's top promoted tokens (special tokens skipped), P(T) the next-token
probability mass on T, positions = every position of the neutral windows. KL(base ||
steered) over the same positions is the side effect, in nats per token.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from steerc.arch.logitlens import Lens


@dataclass(frozen=True)
class EffectSettings:
    """How output scores are measured (all in the JSON, so a figure can be reproduced)."""

    strength: float = 1.0   # |alpha d_i| in units of the mean residual norm at the hook
    n_tokens: int = 5       # promoted / suppressed tokens shown, and T_i of the score
    window: int = 64        # tokens per neutral window (BOS included)
    max_windows: int = 8


@dataclass(frozen=True)
class Score:
    """One feature's output score and KL cost (see the module docstring)."""

    output_score: float
    kl: float


@dataclass(frozen=True)
class Effect:
    """What one feature does to the output: decoded promoted / suppressed tokens (None when
    its SAE does not write the unembedding's width) and, when measured, its Score."""

    promotes: tuple[str, ...] | None
    suppresses: tuple[str, ...] | None
    score: Score | None = None

    def to_json(self) -> dict:
        """`promotes`, `suppresses`, `output_score`, `kl` (null where not measured)."""
        return {"promotes": None if self.promotes is None else list(self.promotes),
                "suppresses": None if self.suppresses is None else list(self.suppresses),
                "output_score": self.score.output_score if self.score else None,
                "kl": self.score.kl if self.score else None}


@dataclass(frozen=True)
class Neutral:
    """The neutral windows scores are measured on: ids (N, T), where they came from."""

    source: str
    ids: torch.Tensor

    @property
    def tokens(self) -> int:
        return int(self.ids.numel())


def special_ids(tok) -> list[int]:
    """Token ids never shown as promoted/suppressed (BOS/EOS/PAD...)."""
    return sorted(set(getattr(tok, "all_special_ids", []) or []))


def has_lens(model, sae) -> bool:
    """Whether `sae`'s decoder rows live where the unembedding reads (same width)."""
    head = model.get_output_embeddings()
    return getattr(head, "weight", None) is not None and sae.d_in == head.weight.shape[1]


def lens_tokens(lens: Lens | None, tok, sae, indices: Sequence[int], n: int) -> dict[int, tuple[list[int], list[int]]]:
    """Feature index -> (top-n promoted, top-n suppressed) token ids, specials skipped; {}
    when the SAE does not write the unembedding's width (`has_lens`)."""
    indices = list(dict.fromkeys(int(i) for i in indices))
    if lens is None or sae.d_in != lens.width or not indices:
        return {}
    up, down = lens.top_tokens(sae.decoder_rows(indices), n, skip=special_ids(tok))
    return {i: (u.tolist(), d.tolist()) for i, u, d in zip(indices, up, down)}


def neutral_windows(docs: Sequence[str], source: str, tok, settings: EffectSettings) -> Neutral:
    """The neutral documents cut into windows as verify's KL text is (`texts.windows`)."""
    from steerc.verify.texts import windows

    return Neutral(source, windows(list(docs), tok, settings.window, settings.max_windows))


@torch.no_grad()
def output_scores(model, saes: dict, features: Sequence[tuple[str, int, Sequence[int]]],
                  neutral: Neutral, settings: EffectSettings = EffectSettings(),
                  *, progress: bool | None = None) -> dict[tuple[str, int], Score]:
    """(alias, index) -> Score for each (alias, index, promoted token ids) in `features`;
    `saes`: alias -> loaded SAE. One forward pass per feature over the neutral windows, in
    the given order (deterministic); `progress`: a bar on stderr (None: only on a terminal)."""
    from tqdm import tqdm

    from steerc.compiler.ir import FeatureId, Intervention, Op
    from steerc.runtime.apply import apply
    from steerc.verify.capture import capture

    ids = neutral.ids.to(model.device)
    hooks = sorted({saes[a].hook_name for a, _, _ in features})
    with capture(model, hooks) as got:
        base = torch.log_softmax(model(input_ids=ids, use_cache=False).logits.float(), -1)  # (N, T, V)
    # the scale steering is measured at: the stream's own mean norm at each hook point
    norm = {h: float(got[h].float().norm(dim=-1).mean()) for h in hooks}
    p_base = base.exp()
    out: dict[tuple[str, int], Score] = {}
    bar = tqdm(features, desc="trace: output scores", unit="feature",
               disable=None if progress is None else not progress, leave=False)
    for alias, index, promoted in bar:
        sae = saes[alias]
        d_norm = float(sae.decoder_rows([index])[0].float().norm())
        alpha = settings.strength * norm[sae.hook_name] / d_norm if d_norm > 0 else 0.0
        iv = Intervention(Op.ADD, FeatureId(alias, index), alpha, (sae.hook_name,))
        with apply(model, None, {alias: sae}, interventions=[iv]):
            steered = torch.log_softmax(model(input_ids=ids, use_cache=False).logits.float(), -1)
        t = torch.tensor(list(promoted), dtype=torch.long, device=steered.device)
        gain = steered[..., t].exp().sum(-1) - p_base[..., t].sum(-1)                # (N, T)
        kl = (p_base * (base - steered)).sum(-1)                                      # (N, T)
        out[(alias, index)] = Score(float(gain.mean()), float(kl.mean()))
    return out


def effects(model, tok, saes: dict, keys: Sequence[tuple[str, int]], neutral: Neutral | None,
            settings: EffectSettings = EffectSettings(), *,
            progress: bool | None = None) -> dict[tuple[str, int], Effect]:
    """(alias, index) -> Effect for every key: promoted / suppressed tokens always, the output
    score and KL when `neutral` is given (features without a lens get none)."""
    lens = Lens.of(model)   # once: on a bf16 model it is a float32 copy of the unembedding
    ids: dict[tuple[str, int], tuple[list[int], list[int]]] = {}
    for alias in dict.fromkeys(a for a, _ in keys):
        got = lens_tokens(lens, tok, saes[alias], [i for a, i in keys if a == alias], settings.n_tokens)
        ids.update({(alias, i): v for i, v in got.items()})
    del lens
    scores = {}
    if neutral is not None and ids:
        scores = output_scores(model, saes, [(a, i, ids[(a, i)][0]) for a, i in keys if (a, i) in ids],
                               neutral, settings, progress=progress)

    def words(t: list[int]) -> tuple[str, ...]:
        return tuple(tok.decode([x]) for x in t)

    return {k: Effect(words(ids[k][0]), words(ids[k][1]), scores.get(k)) if k in ids else Effect(None, None)
            for k in keys}
