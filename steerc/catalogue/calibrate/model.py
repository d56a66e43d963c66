"""The model side of calibration: load model, tokenizer and SAEs; encode one batch (each
feature's output side through the unembedding is `steerc.arch.logitlens.output_side`).

`Encoder.activations(batch)` runs the model only up to the deepest hook an SAE reads
(a forward hook there stops it), so layers after it and the LM head are never computed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from steerc.catalogue.calibrate.corpus import Batch
from steerc.diagnostics import Diagnostic, DiagnosticError

E_MODEL = "E146"
E_SAE_MISMATCH = "E144"
_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass(frozen=True)
class SaeJob:
    """One SAE to calibrate: catalogue id, path as given, and the loaded SAE."""

    id: str
    path: str
    sae: object


class _Stop(Exception):
    """Raised by the early-exit hook once every SAE's input is captured."""


def load_model(path: str, *, dtype: str, device: str):
    """(model, tokenizer) from a local checkpoint folder; E146 when it cannot be loaded."""
    from steerc.hfload import load_model as load_hf_model, load_tokenizer

    if not os.path.isdir(path):
        raise DiagnosticError([Diagnostic(E_MODEL, f"{path}: no such model folder",
                                          hint="pass the folder of a transformers checkpoint (config.json + safetensors)")])
    # never the checkpoint's own code (E640), never a prompt: the one loader steerc has
    tok = load_tokenizer(path, error_code=E_MODEL)
    model = load_hf_model(path, error_code=E_MODEL, dtype=_DTYPES[dtype])
    try:
        model = model.to(device)
    except (RuntimeError, ValueError) as e:  # a device torch does not have here
        raise DiagnosticError([Diagnostic(E_MODEL, f"{path}: cannot move the model to {device} ({e})".splitlines()[0])])
    return model, tok


def check_saes(model, saes: list[SaeJob]) -> None:
    """E144 when an SAE reads a hook the model lacks or has the wrong width."""
    from steerc.arch.registry import adapter_for

    diags = []
    try:
        adapter = adapter_for(model.config)
    except Exception as e:  # an unsupported family: say so instead of failing later
        raise DiagnosticError([Diagnostic(E_SAE_MISMATCH, f"model family not supported for calibration ({e})")])
    for j in saes:
        try:
            adapter.edit_site(j.sae.hook_name, model.config)
        except Exception as e:
            diags.append(Diagnostic(E_SAE_MISMATCH, f"{j.path}: hook {j.sae.hook_name} is not a point of this model ({e})"))
            continue
        if j.sae.d_in != adapter.d_model(model.config):
            diags.append(Diagnostic(E_SAE_MISMATCH, f"{j.path}: SAE d_in {j.sae.d_in} != model hidden size "
                                    f"{adapter.d_model(model.config)} at {j.sae.hook_name}",
                                    hint="this SAE was trained on another model"))
    if diags:
        raise DiagnosticError(diags)


class Encoder:
    """Runs batches through the model and the SAEs; `activations` yields per SAE (N, d_sae)."""

    def __init__(self, model, saes: list[SaeJob], device: str):
        from steerc.arch.hookpoint import HookPoint
        from steerc.arch.registry import adapter_for

        self.model, self.saes, self.device = model, saes, device
        adapter = adapter_for(model.config)
        deepest = max((j.sae.hook_name for j in saes), key=HookPoint.parse)
        self._site = adapter.edit_site(deepest, model.config)
        self._hooks = [j.sae.hook_name for j in saes]
        self._weights = [_encode_weights(j.sae, device) for j in saes]

    @torch.no_grad()
    def activations(self, batch: Batch) -> list[torch.Tensor]:
        """Per SAE, float32 feature activations (N, d_sae) at the batch's content tokens."""
        from steerc.verify.capture import capture

        ids = batch.ids.to(self.device)
        att = batch.attn.to(self.device)
        with capture(self.model, self._hooks) as got:
            stop = self._stop_hook()
            try:
                self.model(input_ids=ids, attention_mask=att.long(), use_cache=False)
            except _Stop:
                pass
            finally:
                stop.remove()
        mask = batch.mask.to(self.device)
        return [sae.encode(got[h][mask].float()).float().cpu() if w is None else _encode(got[h][mask].float(), w).cpu()
                for h, sae, w in zip(self._hooks, (j.sae for j in self.saes), self._weights)]

    def _stop_hook(self):
        site = self._site
        if site.where == "in":
            def pre(module, args, kwargs):
                raise _Stop
            return self.model.get_submodule(site.path).register_forward_pre_hook(pre, with_kwargs=True)

        def post(module, args, output):
            raise _Stop
        return self.model.get_submodule(site.path).register_forward_hook(post)


def _encode_weights(sae, device: str):
    """Encoder weights in float32 on `device` for the common architectures, else None
    (then `SAE.encode` is used)."""
    cfg = sae.cfg
    if cfg.architecture not in ("standard", "jumprelu", "topk"):
        return None
    if getattr(cfg, "normalize_activations", "none") not in ("none", None):
        return None
    return {"arch": cfg.architecture, "W_enc": sae.W_enc.float().to(device), "b_enc": sae.b_enc.float().to(device),
            "b_dec": sae.b_dec.float().to(device) if getattr(cfg, "apply_b_dec_to_input", False) else None,
            "threshold": sae.threshold.float().to(device) if sae.threshold is not None else None,
            "k": getattr(cfg, "k", None)}


def _encode(x: torch.Tensor, w: dict) -> torch.Tensor:
    from steerc.runtime.modeling_steerc import sae_activate

    if w["b_dec"] is not None:
        x = x - w["b_dec"]
    pre = torch.addmm(w["b_enc"], x, w["W_enc"])  # (N, d_sae)
    if w["arch"] == "jumprelu":
        return pre.relu_().mul_(pre > w["threshold"])
    return sae_activate(pre, w["arch"], k=w["k"])

