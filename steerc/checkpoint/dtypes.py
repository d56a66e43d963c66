"""The one table of safetensors dtype tags: byte sizes, torch names, which are float.

Torch-free, so that `check` can validate headers without importing torch; `torch_dtype`
imports it on first use.
"""

from __future__ import annotations

# every tag a header may carry -> bytes per element
ITEMSIZE = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1,
            "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1, "U16": 2, "U32": 4, "U64": 8}
# the tags steerc reads tensors in -> torch's name for the dtype
TORCH_NAMES = {"F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16",
               "I64": "int64", "I32": "int32", "I16": "int16", "I8": "int8", "U8": "uint8",
               "BOOL": "bool"}
FLOAT_DTYPES = ("F64", "F32", "F16", "BF16")


def torch_dtypes() -> dict:
    """tag -> torch dtype for every tag in `TORCH_NAMES` (imports torch)."""
    import torch

    return {tag: getattr(torch, name) for tag, name in TORCH_NAMES.items()}
