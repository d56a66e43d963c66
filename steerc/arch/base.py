"""Architecture adapters: what steerc must know about one model family.

One small file per family (gpt2.py, llama.py, qwen2.py, gemma2.py, ...) defines one
`Adapter` instance; `steerc.arch.registry` maps HF `model_type` to it. Names are checkpoint keys
(what safetensors files hold), so the emitter can edit tensors without loading the model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Layout = Literal["linear", "conv1d"]
# linear: nn.Linear weight [out, in], y = x W^T + b  -> a writer's output space is dim 0
# conv1d: GPT-2 Conv1D weight [in, out], y = x W + b -> a writer's output space is dim 1
Where = Literal["in", "out"]  # forward-pre-hook args[0] / forward-hook output (tuple -> [0])


@dataclass(frozen=True)
class Writer:
    """A tensor that writes into the residual stream (its output space is d_model)."""

    weight: str
    layout: Layout
    bias: str | None  # checkpoint key of its bias, None if the architecture has no slot


@dataclass(frozen=True)
class Embedding:
    """A token or position embedding [vocab, d_model]; `scale` multiplies its output in forward
    (Gemma: sqrt(d_model)); `tied_to` names the head that shares it (tied LM head)."""

    weight: str
    scale_by_sqrt_d: bool = False
    tied_to: str | None = None


@dataclass(frozen=True)
class BiasSlot:
    """Where an add at `blocks.L.hook_resid_post` folds exactly: the bias of layer L's last
    writer. `config_flags` must be set in config.json for the bias to exist (e.g. Llama
    `mlp_bias`), and `zero_biases` are the other biases that flag creates (written as zeros
    so nothing is "newly initialized")."""

    bias: str
    config_flags: dict = field(default_factory=dict)
    zero_biases: tuple[str, ...] = ()
    retarget_model_type: str | None = None  # e.g. Qwen2/Mistral saved as "llama"


@dataclass(frozen=True)
class EditSite:
    """Where a hook applies an edit at a hook point.

    `where="in"`: replace the module's first input (forward pre-hook); `"out"`: replace its
    output (forward hook; tuple outputs edit element 0). With `add_input_of` set, the hook
    value is `input(add_input_of) + output(path)` (resid_mid = resid_pre + attention write)
    and the edit goes onto the output of `path`, so it reaches the residual add instead of
    only a norm's input."""

    path: str
    where: Where
    add_input_of: str | None = None


class Adapter:
    """Base class; each family overrides what differs. `config` is a transformers config."""

    name: str = "base"
    model_types: tuple[str, ...] = ()
    # False where a norm sits between a writer and the residual add (Gemma-2 post-norms):
    # then add/project_out cannot be writer edits and must be hooks. An unscaled embedding
    # still lands unnormalised in the stream, so an add at resid_pre 0 folds into it anyway.
    exact_residual_edits: bool = True
    # Why `bias_slot` is None for this family (said by `explain` and E410), or "".
    why_no_bias_slot: str = ""

    def n_layers(self, config) -> int:
        return config.num_hidden_layers

    def module(self, hook: str, config) -> tuple[str, Where]:
        """HF module path (relative to the CausalLM model) and in/out for a hook name."""
        raise NotImplementedError

    def writers(self, config) -> list[Writer]:
        """Every residual writer of every layer, in layer order."""
        raise NotImplementedError

    def embeddings(self, config) -> list[Embedding]:
        raise NotImplementedError

    def lm_head(self, config) -> str:
        """Checkpoint key of the output head weight (absent from the file when tied)."""
        raise NotImplementedError

    def bias_slot(self, layer: int, config) -> BiasSlot | None:
        """The bias that an add at resid_post of `layer` folds into, or None (hooks only)."""
        raise NotImplementedError

    # --- runtime additions (defaults keep older subclasses working) ---

    def edit_site(self, hook: str, config) -> EditSite:
        """Where a hook module edits `hook` (differs from `module` for resid_mid)."""
        path, where = self.module(hook, config)
        return EditSite(path, where)

    def write_sites(self, config) -> list[str]:
        """Module paths whose output is added to the residual stream: embeddings, then every
        layer's attention and MLP writes (after Gemma-2's post-norms)."""
        raise NotImplementedError

    def base_model(self, config) -> str:
        """Module path of the decoder stack (`model`, `transformer`)."""
        raise NotImplementedError

    def d_model(self, config) -> int:
        """The residual width: `hidden_size` (transformers maps GPT-2's `n_embd` onto it, and
        `ModelInfo` carries it), else `n_embd` for a config object without the alias."""
        return int(config.hidden_size if hasattr(config, "hidden_size") else config.n_embd)
