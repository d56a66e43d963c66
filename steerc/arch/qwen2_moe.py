"""Qwen2-MoE: Llama-shaped attention (q/k/v biases, no o_proj bias) and, in sparse layers, a
mixture of experts plus a shared expert:

    mlp(x) = sum_e g_e(x) * expert_e(x) + sigmoid(w_s . x) * shared_expert(x)

Every term is a down projection scaled by a per-token scalar, so orthogonalizing o_proj,
every expert's and the shared expert's down_proj (a dense MLP's in `mlp_only_layers`) and
the embeddings removes the direction from the stream exactly (`ablate ... everywhere`); the
router and the shared-expert gate only read. No writer has a bias or a flag that creates
one, so an add after a layer is a hook; an add at resid_pre 0 folds into the embedding.
Checkpoints store one tensor per expert (`mlp.experts.E.down_proj.weight`); transformers
fuses them on load.
"""

from __future__ import annotations

from steerc.arch.base import BiasSlot, Writer
from steerc.arch.decoder import LinearDecoderAdapter


def sparse_layer(layer: int, config) -> bool:
    """True where the layer's MLP is the expert block (transformers' own rule)."""
    return (layer not in (getattr(config, "mlp_only_layers", None) or [])
            and config.num_experts > 0 and (layer + 1) % config.decoder_sparse_step == 0)


class Qwen2MoeAdapter(LinearDecoderAdapter):
    name = "qwen2_moe"
    model_types = ("qwen2_moe",)
    why_no_bias_slot = "no expert, shared expert or dense MLP has a bias, and no config flag creates one"

    def writers(self, config) -> list[Writer]:
        out = []
        for L in range(self.n_layers(config)):
            p = f"model.layers.{L}"
            out.append(Writer(f"{p}.self_attn.o_proj.weight", "linear", None))
            if sparse_layer(L, config):
                out += [Writer(f"{p}.mlp.experts.{e}.down_proj.weight", "linear", None)
                        for e in range(config.num_experts)]
                out.append(Writer(f"{p}.mlp.shared_expert.down_proj.weight", "linear", None))
            else:
                out.append(Writer(f"{p}.mlp.down_proj.weight", "linear", None))
        return out

    def bias_slot(self, layer: int, config) -> BiasSlot | None:
        return None


ADAPTER = Qwen2MoeAdapter()
