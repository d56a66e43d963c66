"""Steering-vector files -> per-layer vectors (numpy, float32), for `direction NAME = file "f"`.

    vecs = read_vectors(path, key=None, allow_pickle=False, span=span)   # {layer | None: (d,)}

The layer is the block whose output (`blocks.L.hook_resid_post`) the vector belongs to;
None for a file that holds one vector and says nothing about where (the spec's `at layer`
says). By the file name:

  *.safetensors  `key "k"` picks one tensor; without a key, the file's only tensor, or
                 tensors named `direction.N` (llama.cpp's naming) as layer N. A tensor of
                 shape (d,) is one vector; (L, d) is one vector per layer, row N = layer N.
  *.gguf         a llama.cpp / repeng control vector: `direction.N` is added to the output
                 of layer N (llama.cpp's `llama_adapter_cvec`), so it is layer N here.
  *.svec         IBM activation-steering's JSON (`{"directions": {"N": [...]}}`); its layer N
                 is the output of decoder layer N (its hidden_states[N + 1]).
  *.pt / *.pth   a torch-saved tensor ((d,) or (L, d)) or a dict {N: tensor}; a pickle, so
                 only with --allow-pickle, and then read with torch.load(weights_only=True).

Every problem is a DiagnosticError at the spec string naming the file (E307, E320-E325).
Reading needs no torch except for .pt files and bfloat16 safetensors.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

import numpy as np

from steerc.diagnostics import Diagnostic, DiagnosticError, Span
from steerc.files import read

VECTOR_FILE = read.Kind("vector file", 4 * read.GiB, "E320", "E320",
                        "a .safetensors, .gguf, .svec or .pt steering-vector file")
SUFFIXES = (".safetensors", ".gguf", ".svec", ".pt", ".pth")
_LAYER_KEY = re.compile(r"direction\.([0-9]+)")
_NUMBER = re.compile(r"[0-9]+")  # ASCII only: int() also reads other scripts' digits

Vectors = dict  # {int | None: np.ndarray (d,) float32}


def fail(code: str, message: str, span: Span | None, hint: str | None = None) -> DiagnosticError:
    return DiagnosticError([Diagnostic(code, message, span, hint)])


def read_vectors(path: str, key: str | None = None, *, allow_pickle: bool = False,
                 span: Span | None = None, key_span: Span | None = None) -> Vectors:
    """The vectors of a steering-vector file by layer (see the module docstring)."""
    low = path.lower()
    suffix = next((s for s in SUFFIXES if low.endswith(s)), None)
    if suffix is None:
        raise fail("E321", f"'{path}' is not a steering-vector file steerc reads", span,
                   "name a .safetensors, .gguf (llama.cpp control vector), .svec (IBM "
                   "activation-steering) or .pt file")
    if key is not None and suffix not in (".safetensors", ".pt", ".pth"):
        raise fail("E322", f"`key` picks a tensor of a .safetensors or .pt file; '{path}' is "
                   f"a {suffix} file", key_span or span, "remove `key \"...\"`")
    if suffix == ".safetensors":
        out = _safetensors(path, key, span, key_span)
    elif suffix == ".gguf":
        out = _gguf(path, span)
    elif suffix == ".svec":
        out = _svec(path, span)
    else:
        out = _torch(path, key, allow_pickle, span, key_span)
    return {n: _check_vector(path, n, v, span) for n, v in sorted(out.items(), key=_order)}


def _order(item):
    return (-1 if item[0] is None else item[0])


def _check_vector(path: str, layer: int | None, v: Any, span: Span | None) -> np.ndarray:
    where = "" if layer is None else f" (layer {layer})"
    v = np.asarray(v)
    if v.ndim != 1 or v.size == 0 or not np.issubdtype(v.dtype, np.number):
        raise fail("E323", f"the vector{where} in '{path}' has shape {list(v.shape)}; a direction "
                   "is one vector (d,)", span, "one vector per layer: (d,) or (layers, d)")
    v = v.astype(np.float32)
    if not np.isfinite(v).all():
        raise fail("E324", f"the vector{where} in '{path}' holds NaN or Inf", span,
                   "the file is damaged, or the vector was computed from a diverged run")
    if not np.any(v):
        raise fail("E324", f"the vector{where} in '{path}' is all zeros: it has no direction",
                   span, "a zero vector steers nothing and cannot be projected out")
    return v


def _split(t: np.ndarray) -> Vectors:
    """(d,) -> one vector; (L, d) -> row N is layer N."""
    if t.ndim == 2:
        return {n: t[n] for n in range(t.shape[0])}
    return {None: t}


def _safetensors(path: str, key: str | None, span: Span | None, key_span: Span | None) -> Vectors:
    from safetensors import SafetensorError

    raw = read.read_bytes(path, VECTOR_FILE, span)  # regular file, size-limited
    n = int.from_bytes(raw[:8], "little") if len(raw) >= 8 else 0
    try:
        if b'"BF16"' in raw[8:8 + n]:  # numpy has no bfloat16
            from safetensors.torch import load as torch_load

            tensors = {k: v.float().numpy() for k, v in torch_load(raw).items()}
        else:
            from safetensors.numpy import load as np_load

            tensors = np_load(raw)
    except (SafetensorError, ValueError, TypeError, KeyError, RuntimeError) as e:
        raise fail("E320", f"'{path}' is not a readable safetensors file ({e})", span) from None
    names = sorted(tensors)
    if key is not None:
        if key not in tensors:
            from steerc.diagnostics import did_you_mean

            raise fail("E322", f"'{path}' has no tensor '{key}'", key_span or span,
                       did_you_mean(key, names) or f"its tensors: {', '.join(names[:10])}")
        return _split(tensors[key])
    layered = {int(m.group(1)): tensors[k] for k in names if (m := _LAYER_KEY.fullmatch(k))}
    if layered and len(layered) == len(names):
        return layered
    if len(names) == 1:
        return _split(tensors[names[0]])
    raise fail("E322", f"'{path}' holds {len(names)} tensors and steerc cannot tell which is "
               "the direction", span, f'pick one with  key "{names[0]}"  (its tensors: '
               f"{', '.join(names[:10])}{', ...' if len(names) > 10 else ''})")


def _gguf(path: str, span: Span | None) -> Vectors:
    try:
        from gguf import GGUFReader
    except ImportError:
        raise fail("E325", f"reading '{path}' needs the `gguf` package", span,
                   "pip install 'steerc[gguf]'") from None
    with read.open_regular(path, VECTOR_FILE, span):  # a regular file (GGUFReader maps the path)
        pass
    try:
        r = GGUFReader(path)
        tensors = {t.name: np.array(t.data, dtype=np.float32).reshape(-1) for t in r.tensors}
    except Exception as e:  # gguf raises ValueError/KeyError/struct errors on bad files
        raise fail("E320", f"'{path}' is not a readable GGUF file ({type(e).__name__}: {e})",
                   span) from None
    out = {}
    for name, t in tensors.items():
        m = _LAYER_KEY.fullmatch(name)
        if m is None:
            continue
        n = int(m.group(1))
        if n == 0:  # llama.cpp refuses it too: "invalid (zero) direction tensor layer index"
            raise fail("E323", f"'{path}' holds direction.0, which llama.cpp refuses", span,
                       "control vectors number layers from 1 (direction.N is added to layer N's output)")
        out[n] = t
    if not out:
        raise fail("E322", f"'{path}' holds no `direction.N` tensor: not a control vector", span,
                   "write it with llama.cpp's cvector-generator or repeng's export_gguf")
    return out


def _svec(path: str, span: Span | None) -> Vectors:
    doc = read.read_json(path, VECTOR_FILE, dict, span)
    dirs = doc.get("directions")
    if not isinstance(dirs, dict) or not dirs:
        raise fail("E322", f"'{path}' has no \"directions\" object", span,
                   'an .svec file is {"model_type": ..., "directions": {"LAYER": [numbers]}}')
    out = {}
    for k, v in dirs.items():
        if not _NUMBER.fullmatch(k):
            raise fail("E322", f"'{path}': direction key {k!r} is not a layer number", span)
        n = int(k)
        if not isinstance(v, list) or not all(isinstance(x, (int, float)) and not isinstance(x, bool)
                                              for x in v):
            raise fail("E323", f"'{path}': the direction of layer {n} is not a list of numbers", span)
        out[n] = np.asarray(v, dtype=np.float64)
    return out


def _torch(path: str, key: str | None, allow_pickle: bool, span: Span | None,
           key_span: Span | None) -> Vectors:
    if not allow_pickle:
        raise fail("E307", f"'{path}' is a pickle, which can run code when loaded", span,
                   "pass --allow-pickle if you trust this file (it is then read with "
                   "torch.load(weights_only=True)), or convert it to .safetensors")
    import torch

    with read.open_regular(path, VECTOR_FILE, span) as f:
        try:
            obj = torch.load(f, map_location="cpu", weights_only=True)
        except Exception as e:  # weights_only refusals and corrupt archives alike
            raise fail("E320", f"'{path}' cannot be read as a torch file ({type(e).__name__}: {e})",
                       span) from None
    if isinstance(obj, dict):
        if key is not None:
            if key not in obj:
                raise fail("E322", f"'{path}' has no entry '{key}'", key_span or span,
                           f"its keys: {', '.join(map(str, list(obj)[:10]))}")
            obj = obj[key]
        else:
            out = {}
            for k, v in obj.items():
                if not (isinstance(k, int) or (isinstance(k, str) and _NUMBER.fullmatch(k))) or not torch.is_tensor(v):
                    raise fail("E322", f"'{path}' is a dict whose entry {k!r} is not layer -> tensor",
                               span, 'pick one tensor with  key "..."')
                out[int(k)] = v.float().numpy()
            return out
    if not torch.is_tensor(obj):
        raise fail("E323", f"'{path}' holds a {type(obj).__name__}, not a tensor", span,
                   "save the direction with torch.save(tensor)")
    return _split(obj.float().numpy())


def vectors_sha256(vecs: Vectors) -> str:
    """One hash of the vectors a direction uses (layer, float32 little-endian bytes)."""
    h = hashlib.sha256(b"steerc-direction-v1\0")
    for n, v in sorted(vecs.items(), key=_order):
        h.update(json.dumps(n).encode() + b"\0")
        h.update(np.ascontiguousarray(v, dtype="<f4").tobytes())
    return h.hexdigest()
