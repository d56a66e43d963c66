"""Checks on a base checkpoint's files before anything is written (E603-E610).

A base checkpoint is input like any other: shards can be missing, truncated or not
safetensors at all, an index can name tensors its shard lacks, and a tensor a weight edit
must rewrite can be quantized. Each of these is a diagnostic naming the file and tensor,
never a traceback from deep inside the writer.

    E603 model.safetensors.index.json unreadable     E607 config.json transformers cannot read
    E604 a shard named by the index is missing       E608 an edited tensor's dtype is not float
    E605 a safetensors file is corrupt or truncated  E609 an edited tensor's shape does not fit
    E606 the index names a tensor its shard lacks    E610 writing the output failed (disk, perms)
    E601 no safetensors weights at all (a `.bin` checkpoint is never unpickled)
"""

from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path

from steerc.diagnostics import Diagnostic, DiagnosticError
from steerc.files import read

SINGLE = "model.safetensors"
INDEX = "model.safetensors.index.json"
FLOAT_DTYPES = ("F64", "F32", "F16", "BF16")
ITEMSIZE = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1,
            "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1, "U16": 2, "U32": 4, "U64": 8}
MAX_HEADER = 100 << 20  # safetensors' own limit on the JSON header (100 MB)


def fail(code: str, message: str, hint: str | None = None):
    raise DiagnosticError([Diagnostic(code, message, None, hint)])


def read_index(path: Path) -> dict:
    """The index's JSON with a `weight_map` of str -> str; E603 otherwise."""
    index = read.read_json(path, read.SHARD_INDEX)
    wm = index.get("weight_map")
    if not isinstance(wm, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in wm.items()):
        fail("E603", f"{path}: no `weight_map` of tensor name -> shard file")
    bad = sorted({v for v in wm.values() if os.path.basename(v) != v})
    if bad:  # a shard path must stay inside the checkpoint directory
        fail("E603", f"{path}: shard names must be plain file names, found '{bad[0]}'")
    return index


def read_header(path: Path) -> tuple[dict, int]:
    """A safetensors file's header (validated: dtypes, shapes, offsets inside the file) and
    where its data starts. E604 when the file is missing, E605 when it is not sound."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                fail("E605", f"{path}: not a safetensors file (shorter than 8 bytes)")
            (n,) = struct.unpack("<Q", head)
            if n > min(MAX_HEADER, size - 8):
                fail("E605", f"{path}: header claims {n} bytes but the file has {size}",
                     "the file is truncated or not safetensors")
            header = json.loads(f.read(n))
    except FileNotFoundError:
        fail("E604", f"{path}: shard file missing", "copy every shard the index names")
    except (OSError, ValueError, RecursionError) as e:
        fail("E605", f"{path}: unreadable safetensors header ({str(e).splitlines()[0][:200]})")
    if not isinstance(header, dict):
        fail("E605", f"{path}: safetensors header is not a JSON object")
    data = size - 8 - n
    for name, h in header.items():
        if name == "__metadata__":
            continue
        _check_entry(path, name, h, data)
    return header, 8 + n


def _check_entry(path: Path, name: str, h, data: int) -> None:
    ok = (isinstance(h, dict) and h.get("dtype") in ITEMSIZE and isinstance(h.get("shape"), list)
          and all(isinstance(s, int) and s >= 0 for s in h["shape"])
          and isinstance(h.get("data_offsets"), list) and len(h["data_offsets"]) == 2
          and all(isinstance(o, int) for o in h["data_offsets"]))
    if not ok:
        fail("E605", f"{path}: malformed header entry for tensor '{name}'")
    a, b = h["data_offsets"]
    n = ITEMSIZE[h["dtype"]]
    for s in h["shape"]:
        n *= s
    if not 0 <= a <= b or b - a != n:
        fail("E605", f"{path}: tensor '{name}' has offsets [{a}, {b}] for {n} bytes of {h['dtype']} "
                     f"{h['shape']}")
    if b > data:
        fail("E605", f"{path}: tensor '{name}' ends at byte {b} but the data section has {data} bytes",
             "the file is truncated (an interrupted download or copy?)")


@dataclass(frozen=True)
class Headers:
    """A base checkpoint's weight files as their headers say (no tensor data read)."""

    files: tuple[str, ...]
    headers: dict           # file -> validated header (`__metadata__` included)
    starts: dict            # file -> byte offset of its data section
    sharded: bool
    meta: dict              # the index's `metadata` ({} for a single file)

    def names(self) -> list[str]:
        """Every tensor name, sorted."""
        return sorted(n for h in self.headers.values() for n in h if n != "__metadata__")


def read_headers(root: Path) -> Headers:
    """Index and header of every safetensors file of a checkpoint directory, validated
    (E601 none, E603 index, E604 missing shard, E605 corrupt header, E606 index vs shard);
    what `check` reads of the weights and what `compile` streams from."""
    root = Path(root)
    if (root / INDEX).is_file():
        index = read_index(root / INDEX)
        files, sharded, meta = sorted(set(index["weight_map"].values())), True, index.get("metadata", {})
    elif (root / SINGLE).is_file():
        files, sharded, meta = [SINGLE], False, {}
    else:
        fail("E601", f"no safetensors weights in {root}",
             "steerc reads `model.safetensors` or a sharded `model.safetensors.index.json`; "
             "convert .bin checkpoints with `save_pretrained(..., safe_serialization=True)`")
    headers, starts = {}, {}
    for file in files:
        headers[file], starts[file] = read_header(root / file)
    if sharded:
        check_index_matches(root, index["weight_map"], headers)
    return Headers(tuple(files), headers, starts, sharded, meta)


def check_index_matches(root: Path, weight_map: dict, headers: dict[str, dict]) -> None:
    """E606 when the index names a tensor that its shard's header does not hold."""
    for name, file in sorted(weight_map.items()):
        if name not in headers.get(file, {}):
            fail("E606", f"{root / 'model.safetensors.index.json'} maps '{name}' to {file}, "
                         "which does not hold it", "the index and shards come from different saves")


def check_edit_targets(plan, base, config) -> None:
    """E608/E609 for a tensor a weight edit rewrites that the edit math cannot take: an
    integer/quantized dtype, or a shape without a d_model axis (wrong config)."""
    cfg = getattr(config, "text_config", None) or config
    d_model = getattr(cfg, "hidden_size", None) or getattr(cfg, "n_embd", None)
    for lo in plan.weight_edits:
        for name in lo.tensors:
            if not base.has(name):
                continue  # a bias slot the edit creates
            info = base.info(name)
            if info.dtype not in FLOAT_DTYPES:
                fail("E608", f"tensor '{name}' of {base.root} is {info.dtype}; a weight edit needs a "
                             f"float tensor ({', '.join(FLOAT_DTYPES)})",
                     "compile against the unquantized checkpoint, or use --target hooks")
            if d_model and d_model not in info.shape:
                fail("E609", f"tensor '{name}' of {base.root} has shape {list(info.shape)}, with no axis "
                             f"of the model's hidden size {d_model}", "config.json and weights disagree")
