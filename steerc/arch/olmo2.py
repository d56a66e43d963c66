"""OLMo-2: RMS norms after the writers (`x + norm(attn(x))`, `x + norm(mlp(x))`), none before
them, q/k norms inside attention.

A norm between every writer and the residual add makes writer edits inexact (a bias add is
normalised away, an orthogonalized writer's output is rescaled per coordinate), so adds
after a layer and `ablate ... everywhere` are hooks. The token embedding is unscaled and
lands in the stream unnormalised, so an add at resid_pre 0 folds into it exactly.
Hook points follow Gemma-2's convention: attn_out / mlp_out are the normalised writes;
resid_mid is the MLP's input (no ln2, so `ln2.hook_normalized` does not exist).
"""

from __future__ import annotations

from steerc.arch.base import BiasSlot, Embedding, Writer
from steerc.arch.decoder import DecoderAdapter


class Olmo2Adapter(DecoderAdapter):
    name = "olmo2"
    model_types = ("olmo2",)
    exact_residual_edits = False
    hooks = {
        "hook_resid_pre": ("model.layers.{L}", "in"),
        "hook_resid_mid": ("model.layers.{L}.mlp", "in"),
        "hook_resid_post": ("model.layers.{L}", "out"),
        "hook_attn_out": ("model.layers.{L}.post_attention_layernorm", "out"),
        "hook_mlp_out": ("model.layers.{L}.post_feedforward_layernorm", "out"),
        "attn.hook_z": ("model.layers.{L}.self_attn.o_proj", "in"),
    }
    global_hooks = {"hook_embed": ("model.embed_tokens", "out")}
    attn_write = "model.layers.{L}.post_attention_layernorm"
    mlp_write = "model.layers.{L}.post_feedforward_layernorm"

    def absent_hook_reason(self, kind: str, config) -> str:
        if kind == "ln2.hook_normalized":
            return " (no norm before the MLP; its input is blocks.L.hook_resid_mid)"
        return ""

    def writers(self, config) -> list[Writer]:
        # The linear maps feeding the post-norms; never edited (exact_residual_edits is False).
        out = []
        for L in range(self.n_layers(config)):
            p = f"model.layers.{L}"
            o_bias = f"{p}.self_attn.o_proj.bias" if getattr(config, "attention_bias", False) else None
            out += [Writer(f"{p}.self_attn.o_proj.weight", "linear", o_bias),
                    Writer(f"{p}.mlp.down_proj.weight", "linear", None)]
        return out

    def embeddings(self, config) -> list[Embedding]:
        return [Embedding("model.embed_tokens.weight", tied_to=self._tied(config))]

    def bias_slot(self, layer: int, config) -> BiasSlot | None:
        return None


ADAPTER = Olmo2Adapter()
