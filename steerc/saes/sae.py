"""SAE: one lazily loaded sparse autoencoder, whatever format it came from.

Tensors are read only when asked for: a property (`W_enc`, ...) reads and caches the whole
tensor; `select` / `decoder_rows` read only the selected features' rows/columns. Every
tensor read is checked for NaN/Inf (E305), so a lazy read checks only what it read.

Loading, shape checks and `sha256` read configs, headers and raw bytes only, so they never
import torch (`steerc check` stays fast); torch is imported where tensors are made.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Sequence

from . import errors
from .base import FeatureSlice, SAEConfig
from .headers import torch_dtype
from .layout import Layout
from .store import TensorStore
from ..diagnostics import did_you_mean

if TYPE_CHECKING:
    import torch

_VECTORS = ("b_enc", "threshold", "r_mag", "b_mag")


class SAE:
    """A loaded SAE. Build it with `load_sae`; all formats give the same SAELens-style view."""

    def __init__(self, cfg: SAEConfig, store: TensorStore, layout: Layout, *,
                 path: Path, device: str = "cpu", hash_extra: Optional[dict] = None):
        self.cfg = cfg
        self.store = store
        self.layout = layout
        self.path = Path(path)
        self._device = device
        self._hash_extra = hash_extra or {}
        self._full: Optional[dict[str, Optional[torch.Tensor]]] = None
        self._sha: Optional[str] = None
        self._check_shapes()

    # ---- config views -------------------------------------------------------------------
    @property
    def device(self) -> "torch.device":
        import torch

        return torch.device(self._device)

    @property
    def hook_name(self) -> str:
        return self.cfg.hook_name

    @property
    def d_in(self) -> int:
        return self.cfg.d_in

    @property
    def d_sae(self) -> int:
        return self.cfg.d_sae

    def __repr__(self) -> str:
        c = self.cfg
        return (f"SAE({c.format}, {c.architecture}, hook={c.hook_name}, d_in={c.d_in}, "
                f"d_sae={c.d_sae}, path={self.path})")

    # ---- shape checks (headers only) ----------------------------------------------------
    def _key_or_fail(self, key: str) -> None:
        if not self.store.has(key):
            errors.fail(errors.MISSING_KEY, self.store.path, f"missing tensor '{key}'",
                        did_you_mean(key, self.store.keys()) or f"keys present: {sorted(self.store.keys())}")

    def _check_shapes(self) -> None:
        L, d_in, d_sae = self.layout, self.cfg.d_in, self.cfg.d_sae
        want: dict[str, tuple[int, ...]] = {
            L.W_enc: (d_sae, d_in) if L.enc_transposed else (d_in, d_sae),
            L.W_dec: (d_in, d_sae) if L.dec_transposed else (d_sae, d_in),
        }
        if L.b_dec:
            want[L.b_dec] = (d_in,)
        for name in _VECTORS:
            key = getattr(L, name)
            if isinstance(key, str):
                want[key] = (d_sae,)
        for key, shape in want.items():
            self._key_or_fail(key)
            got = tuple(self.store.shape(key))
            if got != shape:
                errors.fail(errors.SHAPE_MISMATCH, self.store.path,
                            f"tensor '{key}' has shape {list(got)}, expected {list(shape)} "
                            f"(d_in={d_in}, d_sae={d_sae})")

    # ---- reading canonical tensors ------------------------------------------------------
    def _read(self, idx: Optional[list[int]]) -> "dict[str, Optional[torch.Tensor]]":
        """Canonical tensors for features `idx` (None: all), folded, cast, checked."""
        import torch

        L, st = self.layout, self.store
        if idx is None:
            W_enc = st.get(L.W_enc)
            W_enc = W_enc.T if L.enc_transposed else W_enc
            W_dec = st.get(L.W_dec)
            W_dec = W_dec.T if L.dec_transposed else W_dec
        else:
            W_enc = st.rows(L.W_enc, idx).T if L.enc_transposed else st.cols(L.W_enc, idx)
            W_dec = st.cols(L.W_dec, idx).T if L.dec_transposed else st.rows(L.W_dec, idx)
        n = len(idx) if idx is not None else self.cfg.d_sae
        out: dict[str, Optional[torch.Tensor]] = {"W_enc": W_enc, "W_dec": W_dec}
        out["b_dec"] = st.get(L.b_dec) if L.b_dec else torch.zeros(self.cfg.d_in, dtype=W_dec.dtype)
        for name in _VECTORS:
            key = getattr(L, name)
            if isinstance(key, str):
                out[name] = st.get(key) if idx is None else st.rows(key, idx)
            elif isinstance(key, (int, float)) and not isinstance(key, bool):
                out[name] = torch.full((n,), float(key), dtype=W_enc.dtype)
            else:
                out[name] = torch.zeros(n, dtype=W_enc.dtype) if name == "b_enc" else None
        if L.folds:
            out = self._fold(out)
        dtype = torch_dtype(L.dtype) if L.dtype is not None else None
        for name, t in out.items():
            if t is None:
                continue
            t = t.to(dtype) if dtype is not None else t
            self._check_finite(name, t, idx)
            out[name] = t.contiguous().to(self.device)
        return out

    def _fold(self, t: "dict[str, Optional[torch.Tensor]]") -> "dict[str, Optional[torch.Tensor]]":
        import torch

        L = self.layout
        t = {k: (v.to(torch.float32) if v is not None else None) for k, v in t.items()}
        for name, s in (("W_enc", L.W_enc_scale), ("b_enc", L.b_enc_scale), ("W_dec", L.W_dec_scale),
                        ("b_dec", L.b_dec_scale), ("threshold", L.threshold_scale)):
            if s != 1.0 and t[name] is not None:
                t[name] = t[name] * s
        if L.fold_decoder_norm:
            norms = t["W_dec"].norm(dim=1)  # [k]
            t["W_dec"] = t["W_dec"] / norms[:, None]
            t["W_enc"] = t["W_enc"] * norms[None, :]
            t["b_enc"] = t["b_enc"] * norms
            if L.decoder_norm_scales_threshold and t["threshold"] is not None:
                t["threshold"] = t["threshold"] * norms
        return t

    def _check_finite(self, name: str, t: "torch.Tensor", idx: Optional[list[int]]) -> None:
        import torch

        if not t.is_floating_point():
            return
        flat = t.reshape(-1)
        step = 1 << 24  # chunks keep the boolean temporary small for multi-GB tensors
        bad_at = next((i for i in range(0, flat.numel(), step)
                       if not bool(torch.isfinite(flat[i : i + step]).all())), None)
        if bad_at is None:
            return
        key = getattr(self.layout, name, name)
        bad = (~torch.isfinite(t)).nonzero()[0].tolist()
        where = f" (selected features {idx})" if idx is not None else f" at index {bad}"
        errors.fail(errors.NON_FINITE, self.store.path,
                    f"tensor '{key}' (canonical {name}) contains NaN or Inf{where}",
                    "the file is damaged or was saved from a diverged training run")

    def _all(self) -> "dict[str, Optional[torch.Tensor]]":
        if self._full is None:
            self._full = self._read(None)
        return self._full

    @property
    def W_enc(self) -> torch.Tensor:
        """[d_in, d_sae], folded."""
        return self._all()["W_enc"]

    @property
    def b_enc(self) -> torch.Tensor:
        """[d_sae]; the gate bias b_gate for gated SAEs."""
        return self._all()["b_enc"]

    @property
    def W_dec(self) -> torch.Tensor:
        """[d_sae, d_in], folded."""
        return self._all()["W_dec"]

    @property
    def b_dec(self) -> torch.Tensor:
        """[d_in]."""
        return self._all()["b_dec"]

    @property
    def threshold(self) -> Optional[torch.Tensor]:
        """[d_sae] (jumprelu) or None."""
        return self._all()["threshold"]

    @property
    def r_mag(self) -> Optional[torch.Tensor]:
        return self._all()["r_mag"]

    @property
    def b_mag(self) -> Optional[torch.Tensor]:
        return self._all()["b_mag"]

    # ---- math ---------------------------------------------------------------------------
    # The encoder math is the shipped runtime's (steerc/runtime/modeling_steerc.py), so what
    # an SAE here computes is what a hook module in a checkpoint computes.
    def _lin(self, x: torch.Tensor) -> torch.Tensor:
        """x' W_enc [..., d_sae], x' the normalised (and b_dec-shifted) input."""
        from steerc.runtime.modeling_steerc import sae_normalize

        x = x.to(device=self.device, dtype=self.W_enc.dtype)
        x_n, _, _ = sae_normalize(x, self.cfg.normalize_activations)
        xp = x_n - self.b_dec if self.cfg.apply_b_dec_to_input else x_n
        return xp @ self.W_enc

    def pre_activation(self, x: torch.Tensor) -> torch.Tensor:
        """[..., d_sae] pre-activations (gated: the gate path `x'W_enc + b_gate`)."""
        return self._lin(x) + self.b_enc

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Feature activations f [..., d_sae] for activations x [..., d_in]."""
        from steerc.runtime.modeling_steerc import gated_activate, sae_activate

        lin = self._lin(x)
        if self.cfg.architecture == "gated":
            return gated_activate(lin, self.b_enc, self.r_mag, self.b_mag)
        return sae_activate(lin + self.b_enc, self.cfg.architecture, self.threshold, self.cfg.k)

    def decode(self, f: torch.Tensor, x: Optional[torch.Tensor] = None) -> torch.Tensor:
        """x_hat = f @ W_dec + b_dec, de-normalised with the statistics of input `x`.

        With `normalize_activations` layer_norm / constant_norm_rescale the inverse needs
        the original input's statistics, so `x` is then required.
        """
        from steerc.runtime.modeling_steerc import sae_normalize

        x_hat = f.to(self.W_dec.dtype) @ self.W_dec + self.b_dec
        kind = self.cfg.normalize_activations
        if kind == "none":
            return x_hat
        if x is None:
            raise ValueError(f"decode() of a '{kind}' SAE needs the input x to undo the normalisation")
        _, s, mu = sae_normalize(x.to(device=self.device, dtype=self.W_enc.dtype), kind)
        return x_hat * s if mu is None else x_hat * s + mu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The reconstruction decode(encode(x)) in x's space."""
        return self.decode(self.encode(x), x)

    # ---- selections ---------------------------------------------------------------------
    def _indices(self, indices: Sequence[int]) -> list[int]:
        idx = [int(i) for i in indices]
        bad = [i for i in idx if not 0 <= i < self.cfg.d_sae]
        if bad:
            errors.fail(errors.BAD_INDEX, self.path,
                        f"feature index {bad[0]} out of range (d_sae={self.cfg.d_sae})")
        return idx

    def select(self, indices: Sequence[int]) -> FeatureSlice:
        """The data a hook needs for these features, reading only their rows/columns.

        TopK needs every pre-activation for exact membership, so its slice also carries the
        full encoder (`full_W_enc`, `full_b_enc`).
        """
        idx = self._indices(indices)
        t = self._all() if self._full is not None else self._read(idx)
        if self._full is not None:
            t = {k: (v if v is None or k == "b_dec" else (v[:, idx] if k == "W_enc" else v[idx]))
                 for k, v in t.items()}
        c = self.cfg
        return FeatureSlice(
            indices=tuple(idx), architecture=c.architecture, W_enc=t["W_enc"], b_enc=t["b_enc"],
            W_dec=t["W_dec"], b_dec=t["b_dec"], apply_b_dec_to_input=c.apply_b_dec_to_input,
            normalize_activations=c.normalize_activations,
            threshold=t["threshold"] if c.architecture == "jumprelu" else None,
            r_mag=t["r_mag"], b_mag=t["b_mag"], k=c.k,
            full_W_enc=self.W_enc if c.architecture == "topk" else None,
            full_b_enc=self.b_enc if c.architecture == "topk" else None,
        )

    def decoder_rows(self, indices: Sequence[int]) -> torch.Tensor:
        """[k, d_in] decoder directions of these features (folded), read lazily."""
        idx = self._indices(indices)
        if self._full is not None:
            return self._full["W_dec"][idx]
        return self._read(idx)["W_dec"]

    # ---- identity -----------------------------------------------------------------------
    def sha256(self) -> str:
        """Content hash: every stored tensor (sorted names; name, dtype, shape, raw bytes,
        length-prefixed) plus the normalised config and the fold layout. Cached."""
        if self._sha is None:
            h = hashlib.sha256(b"steerc-sae-v1\0")

            def put(b: bytes) -> None:
                h.update(len(b).to_bytes(8, "little"))
                h.update(b)

            for key in sorted(self.store.keys()):
                put(key.encode())
                put(("torch." + self.store.dtype_name(key)).encode())  # str(torch dtype)
                put(json.dumps(list(self.store.shape(key))).encode())
                total = 0
                inner = hashlib.sha256()
                for chunk in self.store.raw_chunks(key):
                    inner.update(chunk)
                    total += len(chunk)
                put(total.to_bytes(8, "little") + inner.digest())
            meta = {"cfg": dataclasses.asdict(self.cfg), "layout": self.layout.describe(),
                    "extra": self._hash_extra}
            put(json.dumps(meta, sort_keys=True, default=str).encode())
            self._sha = h.hexdigest()
        return self._sha


def check_d_model(sae: SAE, d_model: int) -> None:
    """E309 unless the SAE's d_in equals the model's hidden size at its hook."""
    if sae.d_in != int(d_model):
        errors.fail(errors.D_MODEL_MISMATCH, sae.path,
                    f"SAE d_in is {sae.d_in} but the model's hidden size is {d_model} "
                    f"(hook {sae.hook_name})",
                    "this SAE was trained on a different model (or a hook_z / MLP-hidden hook)")
