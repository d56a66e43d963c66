"""model_type -> Adapter: the one registry of architecture families."""

from __future__ import annotations

from steerc.arch import gemma2, gemma3, gpt2, gpt_neox, llama, olmo2, phi3, qwen2, qwen2_moe, qwen3
from steerc.arch.base import Adapter
from steerc.diagnostics import Diagnostic, DiagnosticError, did_you_mean

# Each adapter names the model_types it serves (`Adapter.model_types`); this is the one list
# of adapters, in the order `steerc` names them in messages.
_FAMILIES: tuple[Adapter, ...] = (
    gpt2.ADAPTER, llama.LLAMA, llama.MISTRAL, qwen2.ADAPTER, gemma2.ADAPTER, qwen3.ADAPTER,
    gemma3.ADAPTER, phi3.ADAPTER, olmo2.ADAPTER, gpt_neox.ADAPTER, qwen2_moe.ADAPTER,
)
ADAPTERS: dict[str, Adapter] = {mt: a for a in _FAMILIES for mt in a.model_types}

STEERC_PREFIX = "steerc_"  # compiled hook checkpoints use model_type steerc_<base>


def adapter_for(config) -> Adapter:
    """The adapter for a transformers config (or a model_type string); E490 if unsupported."""
    mt = config if isinstance(config, str) else getattr(config, "model_type", None)
    if isinstance(mt, str) and mt.startswith(STEERC_PREFIX):
        mt = mt[len(STEERC_PREFIX):]
    if mt in ADAPTERS:
        return ADAPTERS[mt]
    hint = did_you_mean(str(mt), ADAPTERS) or "supported model types: " + ", ".join(ADAPTERS)
    raise DiagnosticError([Diagnostic(
        "E490", f"unsupported model architecture '{mt}' (supported: {', '.join(ADAPTERS)})",
        None, hint)])
