"""Gemma-2: post-sublayer norms sit between every writer and the residual add, so no add or
everywhere-ablation is an exact weight edit (hooks only); embeddings are scaled by
sqrt(d_model) inside `embed_tokens` (HF's scaled embedding module) and tied to the head."""

from __future__ import annotations

from steerc.arch.base import BiasSlot, Embedding, Writer
from steerc.arch.decoder import DecoderAdapter


class Gemma2Adapter(DecoderAdapter):
    name = "gemma2"
    model_types = ("gemma2",)
    exact_residual_edits = False
    hooks = {
        "hook_resid_pre": ("model.layers.{L}", "in"),
        "hook_resid_mid": ("model.layers.{L}.pre_feedforward_layernorm", "in"),
        "hook_resid_post": ("model.layers.{L}", "out"),
        "hook_attn_out": ("model.layers.{L}.post_attention_layernorm", "out"),
        "hook_mlp_out": ("model.layers.{L}.post_feedforward_layernorm", "out"),
        "attn.hook_z": ("model.layers.{L}.self_attn.o_proj", "in"),
        "ln2.hook_normalized": ("model.layers.{L}.pre_feedforward_layernorm", "out"),
    }
    # HF's embed_tokens output already carries the sqrt(d) scale, like TL's hook_embed.
    global_hooks = {"hook_embed": ("model.embed_tokens", "out")}
    attn_write = "model.layers.{L}.post_attention_layernorm"
    mlp_write = "model.layers.{L}.post_feedforward_layernorm"

    def writers(self, config) -> list[Writer]:
        # The linear maps feeding the post-norms; listed for completeness, never edited
        # exactly (exact_residual_edits is False).
        out = []
        for L in range(self.n_layers(config)):
            p = f"model.layers.{L}"
            o_bias = f"{p}.self_attn.o_proj.bias" if getattr(config, "attention_bias", False) else None
            out += [Writer(f"{p}.self_attn.o_proj.weight", "linear", o_bias),
                    Writer(f"{p}.mlp.down_proj.weight", "linear", None)]
        return out

    def embeddings(self, config) -> list[Embedding]:
        return [Embedding("model.embed_tokens.weight", scale_by_sqrt_d=True, tied_to=self._tied(config))]

    def bias_slot(self, layer: int, config) -> BiasSlot | None:
        return None


ADAPTER = Gemma2Adapter()
