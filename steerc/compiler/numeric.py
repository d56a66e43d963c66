"""Numeric guards: a compile never writes a NaN or an infinity, nor steers along no direction.

Two layers, both before anything reaches the output's final place:

1. `check_program` (before writing): per rule, on its span, what can be known from the rule
   alone: its value and condition threshold are finite (E431: `clamp X to 5x max` of a
   catalogue `max_activation` of 1.7e308 is inf; resolve reports that one already, on the
   `5x max`, so `check` sees it too), its decoder direction has a norm that is
   finite and not negligible (E430: an all-zero row makes `ablate` divide by zero, `steer`
   a silent no-op), and what the rule writes, `value x d_i` for steer/clamp and the value
   itself in the hook tensors, fits the model's dtype (E432: `steer X by 1e300`, or 1e5 on
   an fp16 base, is inf once stored).
2. `require_finite` (while writing): every tensor block steerc computes (edited writers and
   embeddings, folded biases, hook tensors) is checked as it streams to the output, in
   cache, before it is hashed and written; a non-finite value raises `NonFiniteOutput`,
   which the compiler turns into E433 on the span of a rule that edits that tensor. This
   catches what layer 1 cannot see: sums of several rules, base weights plus a bias, a
   cast to bf16/fp16 that overflows.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch

from steerc.checkpoint.finite import NonFiniteOutput, dtype_name as _dtype_name
from steerc.compiler.ir import Op
from steerc.diagnostics import Diagnostic, DiagnosticError

# A decoder direction shorter than this (L2, in the model's units) is refused: steering
# along it writes nothing, and `ablate` would divide by it. Real SAE decoder rows have
# norms of order 0.01 to 10 (unit-norm rows are the common convention).
NEGLIGIBLE_NORM = 1e-6


def _fail(code: str, message: str, iv, hint: str | None = None) -> Diagnostic:
    return Diagnostic(code, message, iv.span if iv is not None else None, hint)


def decoder_rows(interventions, saes: Mapping) -> dict[tuple[str, int], torch.Tensor]:
    """(alias, index) -> decoder row d_i [d] of every feature the interventions act on,
    one read per SAE (the rows the compile reads, as it reads them)."""
    wanted: dict[str, set[int]] = {}
    for iv in interventions:
        wanted.setdefault(iv.feature.sae, set()).add(iv.feature.index)
    rows = {}
    for alias, idx in wanted.items():
        order = sorted(idx)
        for i, row in zip(order, saes[alias].decoder_rows(order)):
            rows[(alias, i)] = row
    return rows


def check_program(interventions, saes: Mapping, model_dtype: torch.dtype) -> None:
    """E430/E431/E432 (module docstring) for every intervention; raises DiagnosticError with
    all of them. `saes`: alias -> SAE (its decoder rows are read); `model_dtype`: the dtype
    the base stores its weights in."""
    interventions = list(interventions)
    rows = decoder_rows(interventions, saes)
    diags: list[Diagnostic] = []
    seen: set[tuple] = set()
    limit = min(torch.finfo(model_dtype).max, torch.finfo(torch.float32).max) \
        if model_dtype.is_floating_point else torch.finfo(torch.float32).max
    for iv in interventions:
        key = (iv.span, iv.feature.sae, iv.feature.index)
        if key in seen:
            continue
        seen.add(key)
        value = float(iv.value)
        if not math.isfinite(value):
            diags.append(_fail("E431", f"{iv.feature}: the rule's value is {value} (not finite)", iv,
                               "a catalogue statistic times a factor overflowed? give an "
                               "absolute value"))
            continue
        if iv.condition is not None and not math.isfinite(float(iv.condition.threshold)):
            diags.append(_fail("E431", f"{iv.feature}: the condition threshold is "
                                       f"{iv.condition.threshold} (not finite)", iv))
        d = rows[(iv.feature.sae, iv.feature.index)].detach().to(torch.float64).reshape(-1)
        norm = float(d.norm()) if bool(torch.isfinite(d).all()) else math.nan
        if not math.isfinite(norm) or norm < NEGLIGIBLE_NORM:
            what = "is not finite" if not math.isfinite(norm) else (
                "is zero" if norm == 0 else f"is negligible ({norm:.3g} < {NEGLIGIBLE_NORM:g})")
            diags.append(_fail("E430", f"{iv.feature}: the decoder direction's norm {what}; "
                                       f"`{iv.op.value}` along it would "
                                       + ("divide by zero" if iv.op == Op.PROJECT_OUT else "change nothing"),
                               iv, "a dead feature of the SAE? pick another feature"))
            continue
        if iv.op == Op.PROJECT_OUT:
            continue
        # steer writes value x d_i; clamp writes up to value x d_i; both store `value` in
        # the hook tensors (scale stores its factor), in the model's dtype
        stored = abs(value)
        written = stored * float(d.abs().max()) if iv.op in (Op.ADD, Op.SET) else stored
        worst = max(stored, written)
        if worst > limit:
            dt = model_dtype if model_dtype.is_floating_point and torch.finfo(model_dtype).max <= limit \
                else torch.float32
            diags.append(_fail("E432", f"{iv.feature}: the rule writes values up to {worst:.3g}, "
                                       f"beyond {_dtype_name(dt)}'s largest ({limit:.4g}): the "
                                       "output would hold an infinity", iv,
                               "a smaller value (steer amounts are in decoder-row units)"))
    if diags:
        raise DiagnosticError(diags)


def non_finite_diagnostic(err: NonFiniteOutput, plan) -> DiagnosticError:
    """E433 for a produced tensor that held a NaN/inf, on the span of the first rule of
    `plan` that writes that tensor (hook tensors: the first hook rule)."""
    iv = None
    for lo in plan.lowerings:
        if err.tensor in lo.tensors or (err.tensor.startswith("steerc.") and lo.kind == "hook"):
            iv = lo.intervention
            break
    rule = f" (written for `{iv.origin}`)" if iv is not None and iv.origin else ""
    return DiagnosticError([Diagnostic(
        "E433", f"tensor '{err.tensor}' would hold {err.what}{rule}; nothing was written",
        iv.span if iv is not None else None,
        "an edit overflowed the model's dtype, or the base tensor already holds one: check the "
        "rule's value and the base checkpoint")])
