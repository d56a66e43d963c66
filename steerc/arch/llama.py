"""Llama (and Mistral): nn.Linear writers; `mlp_bias` creates the down_proj bias slot.

Mistral has no bias flag, so its bias slot needs the checkpoint re-targeted as Llama
(`retarget_config`), which is exact only without an active sliding window
(tests/runtime/test_retarget.py proves the logits equal).
"""

from __future__ import annotations

from steerc.arch.base import BiasSlot
from steerc.arch.decoder import LinearDecoderAdapter

_LLAMA_ONLY_DROP = ("sliding_window", "use_sliding_window", "max_window_layers", "layer_types")


def _mlp_biases(n_layers: int) -> list[str]:
    return [f"model.layers.{L}.mlp.{m}.bias" for L in range(n_layers)
            for m in ("gate_proj", "up_proj", "down_proj")]


class LlamaAdapter(LinearDecoderAdapter):
    name = "llama"
    model_types = ("llama",)

    def bias_slot(self, layer: int, config) -> BiasSlot | None:
        bias = f"model.layers.{layer}.mlp.down_proj.bias"
        if getattr(config, "mlp_bias", False):
            return BiasSlot(bias)
        zeros = tuple(b for b in _mlp_biases(self.n_layers(config)) if b != bias)
        return BiasSlot(bias, {"mlp_bias": True}, zeros)


class MistralAdapter(LlamaAdapter):
    name = "mistral"
    model_types = ("mistral",)

    def retarget_ok(self, config) -> bool:
        """Mistral == Llama when no sliding window is active within the context."""
        sw = getattr(config, "sliding_window", None)
        return sw is None or sw >= config.max_position_embeddings

    def retarget_config(self, config) -> dict:
        """config.json for this model saved as Llama with `mlp_bias` (same tensors + zero MLP
        biases). Only exact when `retarget_ok`."""
        return llama_config_dict(config, mlp_bias=True)

    def bias_slot(self, layer: int, config) -> BiasSlot | None:
        if not self.retarget_ok(config):
            return None
        bias = f"model.layers.{layer}.mlp.down_proj.bias"
        zeros = tuple(b for b in _mlp_biases(self.n_layers(config)) if b != bias)
        return BiasSlot(bias, {"mlp_bias": True}, zeros, retarget_model_type="llama")


def llama_config_dict(config, **flags) -> dict:
    """`config` as a Llama config.json dict, with `flags` (mlp_bias, attention_bias) set."""
    d = config.to_dict()
    for k in _LLAMA_ONLY_DROP + ("auto_map",):
        d.pop(k, None)
    d.update(model_type="llama", architectures=["LlamaForCausalLM"], **flags)
    return d


LLAMA = LlamaAdapter()
MISTRAL = MistralAdapter()
