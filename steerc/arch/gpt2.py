"""GPT-2: Conv1D writers ([in, out]) with biases, learned position embeddings, tied head."""

from __future__ import annotations

from steerc.arch.base import BiasSlot, Embedding, Writer
from steerc.arch.decoder import DecoderAdapter


class GPT2Adapter(DecoderAdapter):
    name = "gpt2"
    model_types = ("gpt2",)
    base = "transformer"
    layer = "transformer.h.{L}"
    hooks = {
        "hook_resid_pre": ("transformer.h.{L}", "in"),
        "hook_resid_mid": ("transformer.h.{L}.ln_2", "in"),
        "hook_resid_post": ("transformer.h.{L}", "out"),
        "hook_attn_out": ("transformer.h.{L}.attn", "out"),
        "hook_mlp_out": ("transformer.h.{L}.mlp", "out"),
        "attn.hook_z": ("transformer.h.{L}.attn.c_proj", "in"),
        "ln2.hook_normalized": ("transformer.h.{L}.ln_2", "out"),
    }
    # TL's hook_embed is the token embedding alone; wpe is a second residual writer.
    global_hooks = {"hook_embed": ("transformer.wte", "out"),
                    "hook_pos_embed": ("transformer.wpe", "out")}
    attn_write = "transformer.h.{L}.attn"
    mlp_write = "transformer.h.{L}.mlp"
    embedding_modules = ("transformer.wte", "transformer.wpe")

    def writers(self, config) -> list[Writer]:
        out = []
        for L in range(self.n_layers(config)):
            p = f"transformer.h.{L}"
            out += [Writer(f"{p}.attn.c_proj.weight", "conv1d", f"{p}.attn.c_proj.bias"),
                    Writer(f"{p}.mlp.c_proj.weight", "conv1d", f"{p}.mlp.c_proj.bias")]
        return out

    def embeddings(self, config) -> list[Embedding]:
        return [Embedding("transformer.wte.weight", tied_to=self._tied(config)),
                Embedding("transformer.wpe.weight")]

    def bias_slot(self, layer: int, config) -> BiasSlot | None:
        return BiasSlot(f"transformer.h.{layer}.mlp.c_proj.bias")


ADAPTER = GPT2Adapter()
