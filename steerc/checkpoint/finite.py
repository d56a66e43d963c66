"""No NaN or infinity reaches an output file: every block steerc computes is checked as it
streams (`require_finite`); the compiler turns a failure into E433 on a rule's span."""

from __future__ import annotations

import math

import torch


class NonFiniteOutput(Exception):
    """A tensor steerc computed holds a NaN or an infinity (`require_finite`)."""

    def __init__(self, tensor: str, what: str):
        self.tensor, self.what = tensor, what
        super().__init__(f"{tensor}: {what}")


def require_finite(name: str, block: torch.Tensor) -> None:
    """Raise NonFiniteOutput when floating `block` (one produced block of tensor `name`, in
    its stored dtype) holds a NaN or an infinity. One reduction in the common case: a NaN or
    an infinity makes the block's sum non-finite, so a finite sum clears it (the cheapest
    pass over the block: about a tenth of the edit's own math on a bf16 block). A sum that
    overflows from large finite values is only a false alarm: `aminmax` (exact, NaN
    propagating) decides then."""
    if not block.is_floating_point() or block.numel() == 0:
        return
    if math.isfinite(block.sum().item()):
        return
    lo, hi = torch.aminmax(block)
    if math.isfinite(lo.item()) and math.isfinite(hi.item()):
        return
    bad = ~torch.isfinite(block)
    kind = "NaN" if bool(torch.isnan(block).any()) else "an infinity"
    raise NonFiniteOutput(name, f"{kind} ({int(bad.sum())} of {block.numel()} values in one "
                                f"block, stored as {dtype_name(block.dtype)})")


def dtype_name(dt: torch.dtype) -> str:
    return str(dt).replace("torch.", "")
