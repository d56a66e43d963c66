"""What the validation pass knows about a base model, read without torch or transformers.

    root = model_root(program.model)        # the resolved folder, or E602
    info = describe_model(program.model)    # ModelInfo from config.json and the weight headers

`check` promises not to import torch, so the model is described from `config.json` read as
JSON (hidden size, layer count and `model_type`, per family's key names, looking into a
multimodal config's `text_config` too) and from the safetensors index / headers (tensor
names only, never tensor data). `compile` describes the model the same way before it
loads anything, so both commands refuse the same inputs with the same codes.

    E601 no safetensors weights           E607 config.json is not a JSON object
    E602 no config.json                   E240 config.json lacks hidden size / layer count
    E490 unsupported model_type (checked before any weight file is opened)
    E603-E606 index or shard headers unsound (basefiles)
    E241 config.json claims more layers than the weights hold
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from steerc.checkpoint import layout
from steerc.diagnostics import Diagnostic, DiagnosticError

CONFIG = "config.json"
HIDDEN_KEYS = ("hidden_size", "n_embd", "d_model")
LAYER_KEYS = ("num_hidden_layers", "n_layer", "num_layers")
# `model.layers.3.`, `transformer.h.3.`, `gpt_neox.layers.3.`: the block index of a tensor
_BLOCK = re.compile(r"(?:^|\.)(?:layers|h|blocks)\.([0-9]+)\.")


def _fail(code: str, message: str, hint: str | None = None):
    raise DiagnosticError([Diagnostic(code, message, None, hint)])


def model_root(ref: str) -> Path:
    """The local checkpoint folder of a resolved `model` reference (E602 when there is none).

    `ref` is what resolve put in `Program.model` (`locate.locate_model`): a local folder made
    relative to the spec file, or a Hub model's folder in the Hugging Face cache."""
    root = Path(ref)
    if not (root / CONFIG).is_file():
        _fail("E602", f"no config.json in {ref}",
              "`model` must name a transformers checkpoint folder (relative to the spec file) "
              "or a Hub id (`org/name`, see docs/language.md)")
    return root


@dataclass(frozen=True)
class ModelInfo:
    """A base model as the validation pass sees it. Attribute names follow transformers'
    configs (`model_type`, `hidden_size`, `num_hidden_layers`) so architecture adapters can
    map hook names with it in place of a transformers config."""

    root: Path
    model_type: str | None
    hidden_size: int
    num_hidden_layers: int
    weight_layers: int | None  # 1 + the highest block index among tensor names (None: no blocks named)


def read_config(root: Path) -> dict:
    """config.json as a dict, through the guarded reader (a regular file of bounded size;
    E607 when it is not UTF-8 JSON or not a JSON object)."""
    from steerc.files import read

    return read.read_json(root / CONFIG, read.MODEL_CONFIG)


def config_int(cfg: dict, keys: tuple[str, ...]) -> int | None:
    """The first positive integer under one of `keys`, in the config or its `text_config`."""
    for c in (cfg, cfg.get("text_config")):
        if isinstance(c, dict):
            for k in keys:
                v = c.get(k)
                if isinstance(v, int) and not isinstance(v, bool) and v > 0:
                    return v
    return None


def weight_layers(names: list[str]) -> int | None:
    """1 + the highest block index in tensor names, or None when no name has one."""
    found = [int(m.group(1)) for n in names if (m := _BLOCK.search(n))]
    return max(found) + 1 if found else None


def describe_model(ref: str) -> ModelInfo:
    """ModelInfo of the model `ref` names (see `model_root`); reads config.json and the
    safetensors headers only. Raises DiagnosticError (codes in the module docstring)."""
    root = model_root(ref)
    cfg = read_config(root)
    hidden, layers = config_int(cfg, HIDDEN_KEYS), config_int(cfg, LAYER_KEYS)
    if hidden is None or layers is None:
        missing = [what for what, v in (("hidden size", hidden), ("layer count", layers)) if v is None]
        _fail("E240", f"{root / CONFIG} has no {' or '.join(missing)} (a positive integer)",
              f"expected one of {', '.join(HIDDEN_KEYS)} and one of {', '.join(LAYER_KEYS)}")
    mt = cfg.get("model_type")
    from steerc.arch.registry import adapter_for  # E490, before any weight file is opened

    adapter_for(mt if isinstance(mt, str) else "")
    info = ModelInfo(root, mt if isinstance(mt, str) else None, hidden, layers,
                     weight_layers(layout.read_headers(root).names()))
    if info.weight_layers is not None and info.weight_layers < layers:
        _fail("E241", f"{root / CONFIG} says {layers} layers but the weights hold "
              f"{info.weight_layers}", "config.json and the safetensors files come from different "
              "models (or shards are missing from the index)")
    return info
