"""The one way steerc loads a Hugging Face config, model or tokenizer: never running its code.

    config = load_config("models/base")              # AutoConfig, trust_remote_code=False
    model = load_model("models/base")                # fp32, eval mode, safetensors only
    tok = load_tokenizer("models/base")

A checkpoint can name Python code of its own (`auto_map` in config.json or
tokenizer_config.json). Left to its default (`trust_remote_code=None`), transformers then
asks "Do you wish to run the custom code? [y/N]" on stdin, so a "y" piped into a CI job runs
whatever the checkpoint ships. Every load here passes `trust_remote_code=False` (transformers
then uses its own class for a model type it knows, and raises for one it does not: E640),
`local_files_only=True` (nothing is fetched: an `auto_map` naming `other/repo--module.Class`
cannot pull code either) and, for weights, `use_safetensors=True` (a `.bin` is a pickle).

The one exception is `load_model(..., shipped_code=True)`, for a checkpoint steerc compiled:
`steerc verify` calls it only after checking that every `.py` file in the checkpoint is byte
for byte the code this steerc version writes (steerc/verify/checkpoint.py).
"""

from __future__ import annotations

import os

from steerc.diagnostics import Diagnostic, DiagnosticError

E_NEEDS_CODE = "E640"
_HINT = ("steerc never runs a checkpoint's own code: use a checkpoint of a model family "
         "transformers supports natively (its config.json `model_type` names it)")


def _needs_code(e: Exception) -> bool:
    """Whether transformers refused because the checkpoint needs its own code."""
    return "trust_remote_code" in str(e)


def _call(what: str, path: str | os.PathLike, code: str, fn, hint: str | None = None, **kw):
    """`fn(path, **kw)` with the no-code flags; E640 when code would be needed, else a
    DiagnosticError `code` with transformers' first message line."""
    try:
        return fn(str(path), trust_remote_code=kw.pop("trust_remote_code", False),
                  local_files_only=True, **kw)
    except DiagnosticError:
        raise
    except Exception as e:  # transformers raises ValueError, OSError, KeyError... on bad files
        if _needs_code(e):
            raise DiagnosticError([Diagnostic(
                E_NEEDS_CODE, f"the {what} at '{path}' can only be loaded by running Python code "
                "it ships (`auto_map`); steerc does not run it", None, _HINT)]) from None
        first = (str(e).strip().splitlines() or [""])[0][:300]
        raise DiagnosticError([Diagnostic(
            code, f"transformers cannot load the {what} at '{path}': {type(e).__name__}: {first}",
            None, hint or "check that the directory is a complete transformers checkpoint")]) from None


def load_config(path: str | os.PathLike, *, error_code: str = "E607"):
    """`AutoConfig` of a local checkpoint, without running its code (E640, or `error_code`
    for any other failure)."""
    from transformers import AutoConfig

    return _call("model config", path, error_code, AutoConfig.from_pretrained,
                 "check model_type and the JSON syntax of config.json")


def load_model(path: str | os.PathLike, *, error_code: str = "E507", shipped_code: bool = False,
               dtype=None):
    """`AutoModelForCausalLM` of a local checkpoint in `dtype` (default fp32), eval mode, from
    safetensors only.

    `shipped_code=True` lets transformers import the checkpoint's `.py` files: only for a
    steerc-compiled checkpoint whose code files were checked against this steerc's own."""
    import torch
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    model = _call("model", path, error_code, AutoModelForCausalLM.from_pretrained,
                  trust_remote_code=shipped_code, dtype=dtype or torch.float32,
                  use_safetensors=True)
    return model.eval()


def load_tokenizer(path: str | os.PathLike, *, error_code: str = "E507"):
    """`AutoTokenizer` of a local checkpoint, without running its code."""
    from transformers import AutoTokenizer

    return _call("tokenizer", path, error_code, AutoTokenizer.from_pretrained)
