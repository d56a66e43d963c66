"""save_saelens: write an SAE (or raw tensors) as a SAELens v6 folder.

Output: `cfg.json` (v6 keys, `metadata.sae_lens_version` so SAELens does not treat it as
legacy) + `sae_weights.safetensors`. Folds already applied on load stay applied, so the
written config says `normalize_activations` none for folded normalisations.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Union

from steerc.files.write import atomic_file, dumps_json, write_atomic

from .base import SAEConfig
from .sae import SAE

if TYPE_CHECKING:  # imported by save_saelens itself, so importing steerc.saes stays torch-free
    import torch

SAE_LENS_VERSION = "6.18.0"  # the config generation we write (docs/saes.md)


def config_dict(cfg: SAEConfig) -> dict:
    """The v6 cfg.json content for `cfg`."""
    d = {
        "d_in": cfg.d_in, "d_sae": cfg.d_sae, "dtype": cfg.dtype, "device": "cpu",
        "apply_b_dec_to_input": cfg.apply_b_dec_to_input,
        "normalize_activations": cfg.normalize_activations,
        "reshape_activations": cfg.reshape_activations, "architecture": cfg.architecture,
        "metadata": {
            "sae_lens_version": SAE_LENS_VERSION, "sae_lens_training_version": SAE_LENS_VERSION,
            "model_name": cfg.model_name, "hook_name": cfg.hook_name, "hook_head_index": None,
            "neuronpedia_id": cfg.neuronpedia_id,
        },
    }
    if cfg.architecture == "topk":
        d["k"] = cfg.k
        d["rescale_acts_by_decoder_norm"] = False
    return d


def save_saelens(sae_or_tensors: "Union[SAE, Mapping[str, torch.Tensor]]", cfg: SAEConfig | None,
                 out_dir: "str | Path") -> Path:
    """Write `out_dir/cfg.json` + `out_dir/sae_weights.safetensors`; returns out_dir.

    `sae_or_tensors`: an SAE (its folded canonical tensors are written; `cfg` may be None to
    use its own) or a dict with W_enc [d_in, d_sae], W_dec [d_sae, d_in], b_dec [d_in],
    b_enc [d_sae] (b_gate for gated), threshold [d_sae] (jumprelu), r_mag/b_mag (gated).
    """
    if isinstance(sae_or_tensors, SAE):
        sae = sae_or_tensors
        cfg = cfg or sae.cfg
        t = {"W_enc": sae.W_enc, "W_dec": sae.W_dec, "b_dec": sae.b_dec}
        if cfg.architecture == "gated":
            t.update(b_gate=sae.b_enc, r_mag=sae.r_mag, b_mag=sae.b_mag)
        else:
            t["b_enc"] = sae.b_enc
        if cfg.architecture == "jumprelu":
            t["threshold"] = sae.threshold
    else:
        if cfg is None:
            raise ValueError("save_saelens needs a cfg when given raw tensors")
        t = dict(sae_or_tensors)
    import torch
    from safetensors.torch import save_file

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    dtype = getattr(torch, cfg.dtype)
    tensors = {k: v.detach().to("cpu", dtype).contiguous() for k, v in t.items() if v is not None}
    with atomic_file(out / "sae_weights.safetensors", what="SAE weights") as tmp:
        save_file(tensors, str(tmp), metadata={"format": "pt"})
    write_atomic(out / "cfg.json", dumps_json(config_dict(cfg), "cfg.json", indent=2) + "\n")
    return out
