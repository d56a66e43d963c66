"""`apply(model, program, saes)`: the reference semantics, as hooks on an unedited model.

    with apply(model, program, {"res2": sae}):
        logits = model(ids).logits        # steered
    # here the model is exactly as before (no hook, no buffer, no parameter changed)

This is what every compiled checkpoint is tested against (docs/semantics.md, ir.py docstring).
"""

from __future__ import annotations

from contextlib import contextmanager

from steerc.arch.registry import adapter_for
from steerc.runtime.build_hooks import build_hooks
from steerc.runtime.modeling_steerc import install


def _model_dtype(model):
    for p in model.parameters():
        if p.is_floating_point():
            return p.dtype, p.device
    return None, None


@contextmanager
def apply(model, program, saes, *, interventions=None):
    """Install hook modules applying `program` (or the given `interventions`) on `model`
    for the duration of the `with` block; yields the `SteercHooks` module.

    `saes`: alias -> SAE, alias -> path, or a loader `f(SaeBinding) -> SAE`.
    `project_out ... everywhere` projects every residual write (embeddings, attention and
    MLP outputs) and every residual-space edit steerc makes.
    """
    adapter = adapter_for(model.config)
    hooks = build_hooks(program, saes, model.config, adapter, interventions=interventions)
    dtype, device = _model_dtype(model)
    hooks = hooks.to(device=device, dtype=dtype)
    handle = install(model, hooks, register=False)
    try:
        yield hooks
    finally:
        handle.remove()
