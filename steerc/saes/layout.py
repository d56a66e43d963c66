"""Layout: where a format keeps each canonical tensor, and the exact folds applied on read.

Canonical (SAELens) tensors: W_enc [d_in, d_sae], b_enc [d_sae], W_dec [d_sae, d_in],
b_dec [d_in], threshold [d_sae]; gated adds r_mag, b_mag and stores its gate bias as b_enc.

Folds, in this order (each an exact rewrite of a normalisation into the weights):
  1. scalars:  W_enc *= W_enc_scale, b_enc *= b_enc_scale, W_dec *= W_dec_scale,
               b_dec *= b_dec_scale, threshold *= threshold_scale
  2. decoder norm (`fold_decoder_norm`), with n_i = |W_dec[i]| after step 1:
               W_dec[i] /= n_i, W_enc[:, i] *= n_i, b_enc[i] *= n_i
               (and threshold[i] *= n_i when `decoder_norm_scales_threshold`)
A scale of exactly 1.0 is never multiplied in, so unfolded tensors are bit-identical to disk.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Union


@dataclass(frozen=True)
class Layout:
    W_enc: str
    W_dec: str
    enc_transposed: bool = False  # stored [d_sae, d_in] (nn.Linear encoder)
    dec_transposed: bool = False  # stored [d_in, d_sae] (nn.Linear decoder)
    b_enc: Optional[str] = None  # None: zeros (OpenAI has a latent_bias; gated uses b_gate)
    b_dec: Optional[str] = None  # None: zeros
    threshold: Union[str, float, None] = None  # key, scalar for every feature, or none
    r_mag: Optional[str] = None
    b_mag: Optional[str] = None
    W_enc_scale: float = 1.0
    b_enc_scale: float = 1.0
    W_dec_scale: float = 1.0
    b_dec_scale: float = 1.0
    threshold_scale: float = 1.0
    fold_decoder_norm: bool = False
    decoder_norm_scales_threshold: bool = False
    # cast after folding; None keeps the file's dtype. A torch dtype name ("float32"; a
    # torch.dtype is accepted too), so building a Layout needs no torch import.
    dtype: Optional[str] = None

    @property
    def folds(self) -> bool:
        scales = (self.W_enc_scale, self.b_enc_scale, self.W_dec_scale, self.b_dec_scale,
                  self.threshold_scale)
        return self.fold_decoder_norm or any(s != 1.0 for s in scales)

    def describe(self) -> dict:
        """The layout as JSON-able data (part of the SAE's content hash; the dtype is
        spelled as `str(torch.float32)` was when it was a torch dtype: "torch.float32")."""
        d = dict(self.__dict__)
        if d["dtype"] is not None:
            d["dtype"] = "torch." + str(d["dtype"]).removeprefix("torch.")
        return d
