"""`HookPoint`: a TransformerLens hook name as a value (layer, kind), in one place.

    p = HookPoint.parse("blocks.3.hook_resid_post")   # HookPoint(layer=3, kind="hook_resid_post")
    p.name                                            # "blocks.3.hook_resid_post" (str(p) too)
    HookPoint.parse("hook_embed")                     # HookPoint(layer=None, kind="hook_embed")
    HookPoint.read("blocks.1.mlp.hook_post")          # any TL name, or None: never raises
    sorted(points)                                    # forward-pass order

`parse` accepts the kinds steerc can hook (`BLOCK_KINDS`, `GLOBAL_KINDS`; E491 otherwise,
E492 for a layer outside `n_layers`); `read` also accepts the further TransformerLens kinds an
SAE may be trained on (`TL_ONLY_KINDS`: steerc loads such SAEs, the adapters have no module
for them). Residual-space kinds carry d_model vectors; `attn.hook_z` is the concatenated
per-head attention output (n_heads * d_head) and `ln2.hook_normalized` the MLP's normalised
input. Layer digits are ASCII only, so a name that `int()` would read (`"\\u0663"`) is not one.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from steerc.diagnostics import Diagnostic, DiagnosticError, did_you_mean

# The kinds steerc hooks (the adapters map each to a module), as E491's hint lists them.
GLOBAL_KINDS = ("hook_embed", "hook_pos_embed")
BLOCK_KINDS = ("hook_resid_pre", "hook_resid_mid", "hook_resid_post", "hook_attn_out",
               "hook_mlp_out", "attn.hook_z", "ln2.hook_normalized")
# The residual stream itself (`at layers` acts there).
RESIDUAL_KINDS = ("hook_resid_pre", "hook_resid_mid", "hook_resid_post")
# Kinds whose vectors live in the residual space (d_model): the stream, each write into it,
# and the embeddings; their directions can be projected out of every residual write.
RESIDUAL_SPACE_KINDS = RESIDUAL_KINDS + ("hook_attn_out", "hook_mlp_out") + GLOBAL_KINDS
# Inside one block, in the order the forward pass reaches them.
_FORWARD = ("hook_resid_pre", "ln1.hook_normalized", "attn.hook_q", "attn.hook_k", "attn.hook_v",
            "attn.hook_z", "hook_attn_out", "hook_resid_mid", "ln2.hook_normalized",
            "mlp.hook_pre", "mlp.hook_post", "hook_mlp_out", "hook_resid_post")
_RANK = {kind: i for i, kind in enumerate(_FORWARD)}
# TransformerLens kinds an SAE may read that no adapter hooks (SAEs on them still load).
TL_ONLY_KINDS = tuple(k for k in _FORWARD if k not in BLOCK_KINDS)
_BLOCK = re.compile(r"^blocks\.([0-9]+)\.(.+)$")


@functools.total_ordering
@dataclass(frozen=True)
class HookPoint:
    """One hook point: `layer` is the block index (None for the global `hook_embed` /
    `hook_pos_embed`), `kind` the TransformerLens suffix (`hook_resid_post`, `attn.hook_z`).
    Points order as the forward pass reaches them (embeddings first)."""

    layer: int | None
    kind: str

    @classmethod
    def read(cls, name: str) -> HookPoint | None:
        """The point a TransformerLens name denotes (any kind TL defines), or None."""
        if name in GLOBAL_KINDS:
            return cls(None, name)
        m = _BLOCK.match(name)
        if m is None or m.group(2) not in _RANK:
            return None
        return cls(int(m.group(1)), m.group(2))

    @classmethod
    def parse(cls, name: str, n_layers: int | None = None) -> HookPoint:
        """The point of a name steerc can hook; DiagnosticError E491 for an unknown name, E492
        for a layer outside 0..n_layers-1 (unchecked when `n_layers` is None)."""
        p = cls.read(name)
        if p is None or not p.hookable:
            m = _BLOCK.match(name)
            kind = m.group(2) if m else name
            hint = did_you_mean(kind, BLOCK_KINDS + GLOBAL_KINDS)
            raise DiagnosticError([Diagnostic(
                "E491", f"unknown hook point '{name}'", None,
                hint or "use blocks.<L>.{" + ",".join(BLOCK_KINDS) + "} or hook_embed")])
        if n_layers is not None and p.layer is not None and not 0 <= p.layer < n_layers:
            raise DiagnosticError([Diagnostic(
                "E492", f"hook point '{name}' names layer {p.layer}, but the model has "
                f"{n_layers} layers", None, f"layers are 0..{n_layers - 1}")])
        return p

    @property
    def name(self) -> str:
        """The TransformerLens name (`blocks.3.hook_resid_post`, `hook_embed`)."""
        return self.kind if self.layer is None else f"blocks.{self.layer}.{self.kind}"

    def __str__(self) -> str:
        return self.name

    def __lt__(self, other: HookPoint) -> bool:
        if not isinstance(other, HookPoint):
            return NotImplemented
        return self._order < other._order

    @property
    def _order(self) -> tuple[int, int]:
        if self.layer is None:
            return -1, GLOBAL_KINDS.index(self.kind)
        return self.layer, _RANK[self.kind]

    @property
    def hookable(self) -> bool:
        """True for the kinds the architecture adapters map to modules."""
        return self.kind in (GLOBAL_KINDS if self.layer is None else BLOCK_KINDS)

    @property
    def residual(self) -> bool:
        """The residual stream itself (resid_pre, resid_mid, resid_post)."""
        return self.kind in RESIDUAL_KINDS

    @property
    def residual_space(self) -> bool:
        """Its vectors are d_model residual-space vectors (the stream, a write into it, an
        embedding), so an `everywhere` ablation's directions apply there."""
        return self.kind in RESIDUAL_SPACE_KINDS

    @property
    def residual_slot(self) -> int | None:
        """The layer L whose resid_post this point equals (-1: before layer 0), or None:
        resid_post L -> L, resid_pre L -> L-1, hook_embed -> -1."""
        if self.kind == "hook_resid_post":
            return self.layer
        if self.kind == "hook_resid_pre":
            return self.layer - 1
        if self.kind == "hook_embed":
            return -1
        return None

    @property
    def fold_slot(self) -> int | None:
        """The bias slot (layer; -1 = the embeddings) whose tensor an activation here already
        contains once an add is folded there: the `residual_slot`, plus mlp_out L (the MLP's
        output bias is part of it) and hook_pos_embed (an embedding output)."""
        if self.kind == "hook_mlp_out":
            return self.layer
        if self.kind == "hook_pos_embed":
            return -1
        return self.residual_slot

