"""steerc.saes: one SAE interface over six on-disk layouts (see docs/saes.md).

    sae = load_sae("saes/demo/blocks.2.hook_resid_post")   # format sniffed
    f = sae.encode(x); x_hat = sae.decode(f, x)
    sl = sae.select([3, 17])        # FeatureSlice, reads only those rows/columns
"""

from .base import FeatureSlice, SAEConfig
from .hooks import normalize_hook_name
from .load import detect_format, load_sae
from .registry import FORMATS
from .sae import SAE, check_d_model
from .save import save_saelens

__all__ = [
    "FORMATS", "SAE", "FeatureSlice", "SAEConfig", "check_d_model", "detect_format",
    "load_sae", "normalize_hook_name", "save_saelens",
]
