"""Hook-point names: everything is normalised to TransformerLens style.

Accepted spellings (docs/saes.md): TL names (every kind `HookPoint.read` knows; its
canonical spelling is returned); old SAELens `hook_point` values; HF/sparsify module paths
`layers.N` / `h.N` / `model.layers.N[.output]` (output of the block =
`blocks.N.hook_resid_post`), `layers.N.mlp` (`hook_mlp_out`), `layers.N.self_attn` /
`h.N.attn` (`hook_attn_out`), `embed_tokens` / `wte` (`hook_embed`).
"""

from __future__ import annotations

import re
from typing import Optional

from steerc.arch.hookpoint import HookPoint

_MODULE = [
    (re.compile(r"^(?:model\.|transformer\.|gpt_neox\.)?(?:layers|h)\.([0-9]+)(?:\.output)?$"), "hook_resid_post"),
    (re.compile(r"^(?:model\.|transformer\.|gpt_neox\.)?(?:layers|h)\.([0-9]+)\.mlp(?:\.output)?$"), "hook_mlp_out"),
    (re.compile(r"^(?:model\.|transformer\.|gpt_neox\.)?(?:layers|h)\.([0-9]+)\.(?:self_attn|attn|attention)(?:\.output)?$"), "hook_attn_out"),
]
_EMBED = {"embed_tokens", "model.embed_tokens", "wte", "transformer.wte", "embed_in", "embedding"}


def normalize_hook_name(name: str) -> Optional[str]:
    """The TransformerLens-style name for `name`, or None if it is not recognised."""
    name = name.strip()
    point = HookPoint.read(name)
    if point is not None:
        return point.name
    if name in _EMBED:
        return "hook_embed"
    for rx, hook in _MODULE:
        m = rx.match(name)
        if m:
            return HookPoint(int(m.group(1)), hook).name
    return None

