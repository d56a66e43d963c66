"""Which inference engines run a target's output, and how we know: the rows of each target's
`engines` attribute, which the model card prints ("Where it runs").

The facts come from each engine's source and from running steerc outputs in it (each row
says how it was checked). Importing this module imports neither torch nor transformers.
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


TRANSFORMERS = "transformers"
VLLM = "vLLM"
LLAMACPP = "llama.cpp"
TGI = "TGI"
