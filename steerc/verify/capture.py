"""Read the residual stream at TransformerLens hook points of a loaded HF model.

    with capture(model, ["blocks.2.hook_resid_post"]) as got:
        model(ids)
    x = got["blocks.2.hook_resid_post"]        # (B, T, d), the last forward pass

The capture sits where steerc's own hook modules edit that point (`Adapter.edit_site`) and
is registered after them, so on a steered checkpoint it reads the stream *after* the
steering was applied there (weight edits are in the weights, hook edits ran first).
"""

from __future__ import annotations

from contextlib import contextmanager

import torch

from steerc.arch.registry import adapter_for


def _first(value):
    return value[0] if isinstance(value, (tuple, list)) else value


def _input(args, kwargs):
    return args[0] if args else kwargs["hidden_states"]


@contextmanager
def capture(model: torch.nn.Module, hooks: list[str]):
    """Yield a dict filled, on every forward pass, with hook name -> activation (B, T, d)
    (detached; the latest pass wins). Every torch hook is removed on exit."""
    adapter = adapter_for(model.config)
    got: dict[str, torch.Tensor] = {}
    handles = []
    try:
        for hook in dict.fromkeys(hooks):
            site = adapter.edit_site(hook, model.config)
            mod = model.get_submodule(site.path)
            if site.where == "in":
                def pre(module, args, kwargs, hook=hook):
                    got[hook] = _input(args, kwargs).detach()
                handles.append(mod.register_forward_pre_hook(pre, with_kwargs=True))
            elif site.add_input_of:
                # resid_mid = the layer's input + the attention write (after its edits)
                slot: dict = {}

                def keep(module, args, kwargs, slot=slot):
                    slot["x"] = _input(args, kwargs).detach()

                def post_sum(module, args, output, hook=hook, slot=slot):
                    got[hook] = slot.pop("x") + _first(output).detach()
                handles.append(model.get_submodule(site.add_input_of)
                               .register_forward_pre_hook(keep, with_kwargs=True))
                handles.append(mod.register_forward_hook(post_sum))
            else:
                def post(module, args, output, hook=hook):
                    got[hook] = _first(output).detach()
                handles.append(mod.register_forward_hook(post))
        yield got
    finally:
        for h in handles:
            h.remove()


def content_mask(ids: torch.Tensor, tokenizer) -> torch.Tensor:
    """(B, T) bool: False at special tokens (BOS/EOS/PAD), whose activations are outliers
    and not what a spec is about."""
    special = set(getattr(tokenizer, "all_special_ids", []) or [])
    mask = torch.ones_like(ids, dtype=torch.bool)
    for s in special:
        mask &= ids != s
    return mask
