"""Phi-3: fused readers (`qkv_proj`, `gate_up_proj`), plain nn.Linear writers (o_proj,
down_proj) without biases, pre-norm residual blocks.

The fused tensors only read the stream, so `ablate ... everywhere` orthogonalizes the two
writers and the embeddings exactly. Phi-3 has no bias flag, and saving it as Llama would
mean splitting the fused tensors and giving up its rope scaling: an add after a layer is a
hook; an add at resid_pre 0 folds into the token embedding. The residual dropouts are
identities in eval.
"""

from __future__ import annotations

from steerc.arch.base import BiasSlot, Writer
from steerc.arch.decoder import LinearDecoderAdapter


class Phi3Adapter(LinearDecoderAdapter):
    name = "phi3"
    model_types = ("phi3",)
    why_no_bias_slot = "its writers have no bias and no config flag creates one"

    def writers(self, config) -> list[Writer]:
        out = []
        for L in range(self.n_layers(config)):
            p = f"model.layers.{L}"
            out += [Writer(f"{p}.self_attn.o_proj.weight", "linear", None),
                    Writer(f"{p}.mlp.down_proj.weight", "linear", None)]
        return out

    def bias_slot(self, layer: int, config) -> BiasSlot | None:
        return None


ADAPTER = Phi3Adapter()
