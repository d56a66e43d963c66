"""Measurements of base vs steered: targeted feature activations and next-token KL.

    feats = targeted_features(program)                       # [(FeatureId, hook, ops)]
    rows = feature_activations(base, steered, saes, feats, windows, mask)
    kl = next_token_kl(base, steered, windows)

Both run the two models on the same token windows. A feature's activation is the SAE's
encoding of the stream at the feature's own hook point: on the steered model, after the
steering there (`capture` reads behind steerc's hooks; weight edits are in the weights).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from steerc.compiler.ir import FeatureId, Op, Program
from steerc.diagnostics import Span
from steerc.verify.capture import capture
from steerc.verify.verdicts import reads_after


@dataclass(frozen=True)
class RuleRef:
    """One intervention on a target: its op, value, the rule's span and text, and whether
    it acts where the feature is read (or upstream of it), so the reading can show it."""

    op: str
    value: float
    span: Span | None
    origin: str
    measurable: bool


@dataclass(frozen=True)
class Target:
    """A feature some rule acts on, at its SAE's hook point, with the ops applied to it."""

    feature: FeatureId
    hook: str
    ops: tuple[str, ...]  # e.g. ("set_activation=0", "add=4") for the report
    rules: tuple[RuleRef, ...] = ()  # one per intervention, in spec order
    max_activation: float | None = None  # the catalogue's, when it knows the feature

    @property
    def direction(self) -> str:
        """What the rules want: `down` (suppress/ablate/scale < 1), `up` (add > 0, clamp
        above, scale > 1) or `mixed`."""
        ups = downs = 0
        for o in self.ops:
            op, _, v = o.partition("=")
            v = float(v)
            if Op(op).intent(v) == "down":
                downs += 1
            else:
                ups += 1
        return "down" if downs and not ups else "up" if ups and not downs else "mixed"


def targeted_features(program: Program) -> list[Target]:
    """Every feature a rule acts on (one entry per feature), in spec order."""
    found: dict[tuple[str, int], tuple[FeatureId, list[str], list[RuleRef]]] = {}
    for iv in program.interventions:
        key = (iv.feature.sae, iv.feature.index)
        fid, ops, rules = found.setdefault(key, (iv.feature, [], []))
        ops.append(f"{iv.op.value}={iv.value:g}")
        hook = program.sae(fid.sae).hook
        rules.append(RuleRef(iv.op.value, iv.value, iv.span, iv.origin,
                             iv.everywhere or any(reads_after(p, hook) for p in iv.points)))
    return [Target(fid, program.sae(fid.sae).hook, tuple(ops), tuple(rules))
            for fid, ops, rules in found.values()]


@dataclass(frozen=True)
class FeatureStats:
    """Activation of one feature over the prompt set (content tokens only)."""

    target: Target
    base_mean: float
    base_max: float
    steered_mean: float
    steered_max: float
    base_active: float      # fraction of tokens with activation > 0
    steered_active: float

    @property
    def change_pct(self) -> float | None:
        """(steered - base) / base * 100 of the mean; None when the base mean is 0."""
        if self.base_mean == 0:
            return None
        return 100.0 * (self.steered_mean - self.base_mean) / self.base_mean


def with_prefix(windows: torch.Tensor, prefix: torch.Tensor | None, bos: int | None) -> torch.Tensor:
    """(N, T) windows with the token ids `prefix` (P,) put after their BOS (before their first
    token when they have none): (N, P + T). Position t of a window is position P + t of the
    result, and position P + t predicts what position t predicted, so `[:, P:P + T]` of
    anything computed on the result lines up with the original windows."""
    if prefix is None or not len(prefix):
        return windows
    pre = prefix.to(windows.dtype).expand(len(windows), -1)
    if bos is not None and len(windows) and windows.shape[1] and bool((windows[:, 0] == bos).all()):
        return torch.cat([windows[:, :1], pre, windows[:, 1:]], 1)
    return torch.cat([pre, windows], 1)


@torch.no_grad()
def _acts(model, saes: dict, targets: list[Target], windows: torch.Tensor, mask: torch.Tensor,
          batch: int, prefix: torch.Tensor | None = None, bos: int | None = None) -> list[torch.Tensor]:
    """Per target: activations at content tokens, float32 [n_tokens] (a named direction's:
    the size |x . v| / |v|^2 of its coefficient); with `prefix`, the
    model reads `with_prefix(windows)` and only the windows' own positions are kept."""
    hooks = sorted({t.hook for t in targets})
    out: list[list[torch.Tensor]] = [[] for _ in targets]
    P = 0 if prefix is None else len(prefix)
    with capture(model, hooks) as got:
        for i in range(0, len(windows), batch):
            ids, m = windows[i:i + batch], mask[i:i + batch]
            model(input_ids=with_prefix(ids, prefix, bos), use_cache=False)
            encoded = {}
            for j, t in enumerate(targets):
                key = (t.feature.sae, t.hook)
                if key not in encoded:
                    x = got[t.hook][:, P:P + ids.shape[1]].float()           # (B, T, d)
                    encoded[key] = saes[t.feature.sae].encode(x)            # (B, T, d_sae)
                a = encoded[key][..., t.feature.index][m]
                # a direction's coefficient has either sign: its size is how much of it is there
                out[j].append(a.abs() if t.feature.direction else a)
    return [torch.cat(x) for x in out]


def summed_mean(model, saes: dict, targets: list[Target], windows: torch.Tensor, mask: torch.Tensor,
                *, prefix: torch.Tensor | None = None, bos: int | None = None, batch: int = 8) -> float:
    """Sum over `targets` of each feature's mean activation at the content tokens of
    `windows` (one figure for a feature set, as `totals` in the report)."""
    acts = _acts(model, saes, targets, windows, mask, batch, prefix, bos)
    return float(sum(float(a.mean()) if a.numel() else 0.0 for a in acts))


def feature_activations(base, steered, saes: dict, targets: list[Target], windows: torch.Tensor,
                        mask: torch.Tensor, batch: int = 8) -> list[FeatureStats]:
    """Mean / max / firing fraction of each target, base and steered, on `windows` (N, T)
    at positions where `mask` (N, T) is True."""
    if not targets:
        return []
    a = _acts(base, saes, targets, windows, mask, batch)
    b = _acts(steered, saes, targets, windows, mask, batch)
    rows = []
    for t, x, y in zip(targets, a, b):
        def stat(v, f):
            return float(f(v)) if v.numel() else 0.0
        rows.append(FeatureStats(t, stat(x, torch.mean), stat(x, torch.max), stat(y, torch.mean),
                                 stat(y, torch.max), stat((x > 0).float(), torch.mean),
                                 stat((y > 0).float(), torch.mean)))
    return rows


@dataclass(frozen=True)
class KL:
    """KL(base || steered) of next-token distributions, nats per token."""

    mean: float
    p95: float
    max: float
    n_tokens: int


@torch.no_grad()
def next_token_kl(base, steered, windows: torch.Tensor, batch: int = 8, *,
                  prefix: torch.Tensor | None = None, bos: int | None = None) -> KL:
    """Per-token KL(p_base || p_steered) over every position of `windows` (N, T). With
    `prefix` (the baseline prompt's ids), `steered` reads `with_prefix(windows)`: the KL of
    prompting instead of steering, on the same next tokens."""
    vals = []
    P = 0 if prefix is None else len(prefix)
    for i in range(0, len(windows), batch):
        ids = windows[i:i + batch]
        lp = torch.log_softmax(base(input_ids=ids, use_cache=False).logits.float(), -1)   # (B, T, V)
        out = steered(input_ids=with_prefix(ids, prefix, bos), use_cache=False).logits
        lq = torch.log_softmax(out[:, P:P + ids.shape[1]].float(), -1)                   # (B, T, V)
        vals.append((lp.exp() * (lp - lq)).sum(-1).flatten().clamp_min(0))  # fp noise < 0
    v = torch.cat(vals) if vals else torch.zeros(0)
    if not v.numel():
        return KL(0.0, 0.0, 0.0, 0)
    return KL(float(v.mean()), float(torch.quantile(v, 0.95)), float(v.max()), int(v.numel()))
