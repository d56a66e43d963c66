"""Qwen2: Llama-shaped with hard-coded q/k/v biases and no flag for an MLP bias.

Its bias slot needs the checkpoint re-targeted as Llama with `attention_bias` (q/k/v biases
carried over; the o_proj bias it also creates is zero) and `mlp_bias`; exact only without
sliding-window attention (tests/runtime/test_retarget.py proves the logits equal).
"""

from __future__ import annotations

from steerc.arch.base import BiasSlot
from steerc.arch.decoder import LinearDecoderAdapter
from steerc.arch.llama import _mlp_biases, llama_config_dict


class Qwen2Adapter(LinearDecoderAdapter):
    name = "qwen2"
    model_types = ("qwen2",)

    def _o_bias(self, config) -> bool:
        return False

    def retarget_ok(self, config) -> bool:
        return not getattr(config, "use_sliding_window", False)

    def retarget_config(self, config) -> dict:
        """config.json for this model saved as Llama (attention_bias + mlp_bias)."""
        return llama_config_dict(config, attention_bias=True, mlp_bias=True)

    def bias_slot(self, layer: int, config) -> BiasSlot | None:
        if not self.retarget_ok(config):
            return None
        bias = f"model.layers.{layer}.mlp.down_proj.bias"
        n = self.n_layers(config)
        zeros = tuple(b for b in _mlp_biases(n) if b != bias)
        zeros += tuple(f"model.layers.{L}.self_attn.o_proj.bias" for L in range(n))
        return BiasSlot(bias, {"attention_bias": True, "mlp_bias": True}, zeros,
                        retarget_model_type="llama")


ADAPTER = Qwen2Adapter()
