"""Qwen3: Llama-shaped writers (o_proj, down_proj) with RMS norms on q and k inside attention.

The q/k norms read the attention input, not the stream after a writer, so `ablate ...
everywhere` is exact (orthogonalize o_proj, its bias under `attention_bias`, down_proj and
the embeddings). The MLP has no bias and no flag creates one, and the q/k norms keep the
checkpoint from being re-targeted as Llama: an add after a layer is a hook; an add at
resid_pre 0 folds into the token embedding.
"""

from __future__ import annotations

from steerc.arch.base import BiasSlot
from steerc.arch.decoder import LinearDecoderAdapter


class Qwen3Adapter(LinearDecoderAdapter):
    name = "qwen3"
    model_types = ("qwen3",)
    why_no_bias_slot = ("its MLP has no bias and no config flag creates one (q/k norms rule out "
                        "saving it as Llama)")

    def bias_slot(self, layer: int, config) -> BiasSlot | None:
        return None


ADAPTER = Qwen3Adapter()
