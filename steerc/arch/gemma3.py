"""Gemma-3 text (`Gemma3ForCausalLM`, model_type `gemma3_text`): Gemma-2's block (post-norms
after both writers, sqrt(d)-scaled tied embeddings) plus q/k norms, with sliding and global
attention layers. Module names equal Gemma-2's, so hook points and the refusal of every
residual weight edit are the same (hooks only)."""

from __future__ import annotations

from steerc.arch.gemma2 import Gemma2Adapter


class Gemma3TextAdapter(Gemma2Adapter):
    name = "gemma3_text"
    model_types = ("gemma3_text",)


ADAPTER = Gemma3TextAdapter()
