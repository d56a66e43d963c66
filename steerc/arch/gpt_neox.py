"""GPT-NeoX / Pythia: LayerNorm pre-norm blocks whose writers (`attention.dense`,
`mlp.dense_4h_to_h`) are nn.Linear with biases; untied `embed_out` head.

`use_parallel_residual` (Pythia's default) computes `x + attn(ln1(x)) + mlp(ln2(x))`: both
sublayers read resid_pre, so there is no resid_mid. Without it the block is GPT-2-shaped.
Either way every writer lands unnormalised in the stream, so `ablate ... everywhere`
orthogonalizes both writers, their biases and `embed_in` exactly, and an add after layer L
folds into the MLP output bias of L (it is part of resid_post in both layouts).
"""

from __future__ import annotations

from steerc.arch.base import BiasSlot, Embedding, Writer
from steerc.arch.decoder import DecoderAdapter


class GPTNeoXAdapter(DecoderAdapter):
    name = "gpt_neox"
    model_types = ("gpt_neox",)
    base = "gpt_neox"
    layer = "gpt_neox.layers.{L}"
    hooks = {
        "hook_resid_pre": ("gpt_neox.layers.{L}", "in"),
        "hook_resid_mid": ("gpt_neox.layers.{L}.post_attention_layernorm", "in"),
        "hook_resid_post": ("gpt_neox.layers.{L}", "out"),
        "hook_attn_out": ("gpt_neox.layers.{L}.attention", "out"),
        "hook_mlp_out": ("gpt_neox.layers.{L}.mlp", "out"),
        "attn.hook_z": ("gpt_neox.layers.{L}.attention.dense", "in"),
        "ln2.hook_normalized": ("gpt_neox.layers.{L}.post_attention_layernorm", "out"),
    }
    global_hooks = {"hook_embed": ("gpt_neox.embed_in", "out")}
    attn_write = "gpt_neox.layers.{L}.attention"
    mlp_write = "gpt_neox.layers.{L}.mlp"
    embedding_modules = ("gpt_neox.embed_in",)

    def block_hooks(self, config) -> dict[str, tuple[str, str]]:
        if getattr(config, "use_parallel_residual", True):
            return {k: v for k, v in self.hooks.items() if k != "hook_resid_mid"}
        return self.hooks

    def absent_hook_reason(self, kind: str, config) -> str:
        if kind == "hook_resid_mid":
            return (" with use_parallel_residual (attention and MLP both read resid_pre; "
                    "use hook_attn_out or hook_mlp_out)")
        return ""

    def lm_head(self, config) -> str:
        return "embed_out.weight"

    def writers(self, config) -> list[Writer]:
        out = []
        for L in range(self.n_layers(config)):
            p = f"gpt_neox.layers.{L}"
            a_bias = f"{p}.attention.dense.bias" if getattr(config, "attention_bias", True) else None
            out += [Writer(f"{p}.attention.dense.weight", "linear", a_bias),
                    Writer(f"{p}.mlp.dense_4h_to_h.weight", "linear", f"{p}.mlp.dense_4h_to_h.bias")]
        return out

    def embeddings(self, config) -> list[Embedding]:
        return [Embedding("gpt_neox.embed_in.weight", tied_to=self._tied(config))]

    def bias_slot(self, layer: int, config) -> BiasSlot | None:
        return BiasSlot(f"gpt_neox.layers.{layer}.mlp.dense_4h_to_h.bias")


ADAPTER = GPTNeoXAdapter()
