"""A named direction as a one-feature linear SAE, so every lowering, hook module and
measurement that works for an SAE feature works for a direction unchanged.

With v the direction's vector (as given: a file's vector, or a difference of means):

    activation  a(x) = x . v / |v|^2      (x's coefficient along v, in units of v; any sign)
    decoder row d    = v

so `steer D by s` adds s v, `clamp D to c` sets x's coefficient along v to c (`suppress`:
to 0, which removes x's component along v), `scale D by k` multiplies that component by k,
`ablate` projects v's direction out, and `when D > t` gates on the coefficient.
Architecture "linear" (no ReLU) is the shipped runtime's `sae_activate`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from steerc.saes.base import FeatureSlice, SAEConfig


class DirectionSAE:
    """The SAE view of one direction vector at one hook point."""

    def __init__(self, vector: np.ndarray, hook: str, sha256: str, path: str | Path = "",
                 device: str = "cpu"):
        v = torch.from_numpy(np.ascontiguousarray(vector, dtype=np.float32)).to(device)
        self.cfg = SAEConfig(d_in=v.numel(), d_sae=1, architecture="linear", hook_name=hook,
                             format="direction")
        self.path = Path(path)
        self._v = v
        self._sha = sha256
        self.device = torch.device(device)

    @property
    def hook_name(self) -> str:
        return self.cfg.hook_name

    @property
    def d_in(self) -> int:
        return self.cfg.d_in

    @property
    def d_sae(self) -> int:
        return 1

    @property
    def W_enc(self) -> torch.Tensor:
        """[d, 1]: v / |v|^2 (float64 norm, so the coefficient of v itself is 1 to rounding)."""
        n2 = float((self._v.double() ** 2).sum())
        return (self._v / n2)[:, None].contiguous()

    @property
    def b_enc(self) -> torch.Tensor:
        return torch.zeros(1, device=self.device)

    @property
    def W_dec(self) -> torch.Tensor:
        return self._v[None, :].contiguous()

    @property
    def b_dec(self) -> torch.Tensor:
        return torch.zeros(self.d_in, device=self.device)

    threshold = r_mag = b_mag = None

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """[..., 1]: the coefficient of x along v."""
        return x.to(self.W_enc.dtype) @ self.W_enc

    def decode(self, f: torch.Tensor, x: torch.Tensor | None = None) -> torch.Tensor:
        return f.to(self._v.dtype) @ self.W_dec

    def select(self, indices: Sequence[int]) -> FeatureSlice:
        self._check(indices)
        return FeatureSlice(indices=(0,), architecture="linear", W_enc=self.W_enc, b_enc=self.b_enc,
                            W_dec=self.W_dec, b_dec=self.b_dec)

    def decoder_rows(self, indices: Sequence[int]) -> torch.Tensor:
        self._check(indices)
        return self.W_dec

    def sha256(self) -> str:
        return self._sha

    def _check(self, indices: Sequence[int]) -> None:
        if [int(i) for i in indices] != [0]:
            raise ValueError(f"a direction has one feature (index 0), not {list(indices)}")

    def __repr__(self) -> str:
        return f"DirectionSAE(hook={self.hook_name}, d={self.d_in}, path={self.path})"
