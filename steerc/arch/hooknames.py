"""TransformerLens hook names: parsing `blocks.L.<kind>` and the global hooks.

The kinds steerc understands (docs/saes.md). Residual-space kinds carry d_model vectors;
`attn.hook_z` is the concatenated per-head attention output (n_heads * d_head) and
`ln2.hook_normalized` the MLP's normalised input.
"""

from __future__ import annotations

import re

from steerc.diagnostics import Diagnostic, DiagnosticError, did_you_mean

GLOBAL_HOOKS = ("hook_embed", "hook_pos_embed")
BLOCK_KINDS = ("hook_resid_pre", "hook_resid_mid", "hook_resid_post", "hook_attn_out",
               "hook_mlp_out", "attn.hook_z", "ln2.hook_normalized")
_BLOCK = re.compile(r"^blocks\.([0-9]+)\.(.+)$")


def parse_hook(hook: str, n_layers: int) -> tuple[int | None, str]:
    """`blocks.3.hook_resid_post` -> (3, "hook_resid_post"); `hook_embed` -> (None, "hook_embed").

    Raises DiagnosticError E491 for an unknown name, E492 for a layer out of range.
    """
    if hook in GLOBAL_HOOKS:
        return None, hook
    m = _BLOCK.match(hook)
    if m is None or m.group(2) not in BLOCK_KINDS:
        kind = m.group(2) if m else hook
        hint = did_you_mean(kind, BLOCK_KINDS + GLOBAL_HOOKS)
        raise DiagnosticError([Diagnostic(
            "E491", f"unknown hook point '{hook}'", None,
            hint or "use blocks.<L>.{" + ",".join(BLOCK_KINDS) + "} or hook_embed")])
    layer = int(m.group(1))
    if not 0 <= layer < n_layers:
        raise DiagnosticError([Diagnostic(
            "E492", f"hook point '{hook}' names layer {layer}, but the model has {n_layers} layers",
            None, f"layers are 0..{n_layers - 1}")])
    return layer, m.group(2)


_RANK = {"hook_resid_pre": 0, "attn.hook_z": 1, "hook_attn_out": 2, "hook_resid_mid": 3,
         "ln2.hook_normalized": 4, "hook_mlp_out": 5, "hook_resid_post": 6}


def hook_order(hook: str) -> tuple[int, int]:
    """A sort key in forward-pass order: a hook with a smaller key sees its value first."""
    layer, kind = parse_hook(hook, 1 << 30)
    return (-1, GLOBAL_HOOKS.index(kind)) if layer is None else (layer, _RANK[kind])
