"""The one safetensors header validator, shared by base checkpoints and SAE files.

A safetensors file is a u64 little-endian header length, a JSON header
`{name: {"dtype", "shape", "data_offsets": [begin, end]}}` (plus an optional
`__metadata__`), then the data section. `parse_header` checks everything a reader relies
on: the length against the file, JSON, each entry's dtype, shape and byte range, and that
every range lies inside the data section. It raises `BadHeader`; each caller turns that
into its own diagnostic (E604/E605 for a base shard, E300/E308 for an SAE file), so the
rules are written once and the codes still say which input was wrong.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path

from steerc.checkpoint.dtypes import ITEMSIZE

MAX_HEADER = 100_000_000  # the safetensors library's own limit on the JSON header


@dataclass
class BadHeader(Exception):
    """A safetensors file that cannot be read as one. `missing`: the file is not there (or
    not readable) rather than unsound; `hint`: what usually fixes it."""

    message: str
    missing: bool = False
    hint: str | None = None


def parse_header(path: Path, dtypes=ITEMSIZE) -> tuple[dict, int]:
    """(header, byte offset of the data section) of the safetensors file `path`, validated;
    `__metadata__` is kept. `dtypes`: the tags accepted (default: every known tag).
    Raises BadHeader naming what is wrong (the message does not repeat the path)."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                raise BadHeader("not a safetensors file (shorter than 8 bytes)")
            (n,) = struct.unpack("<Q", head)
            if n > min(MAX_HEADER, size - 8):
                raise BadHeader(f"safetensors header claims {n} bytes but the file has {size}",
                                hint="the file is truncated or not safetensors")
            raw = f.read(n)
    except FileNotFoundError:
        raise BadHeader("file missing", missing=True) from None
    except OSError as e:
        raise BadHeader(f"cannot read file: {e}", missing=True) from None
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise BadHeader(f"safetensors header is not valid JSON ({str(e).splitlines()[0][:200]})") from None
    if not isinstance(header, dict):
        raise BadHeader("safetensors header is not a JSON object")
    data = size - 8 - n
    for name, h in header.items():
        if name != "__metadata__":
            _check_entry(name, h, data, dtypes)
    return header, 8 + n


def _check_entry(name: str, h, data: int, dtypes) -> None:
    ok = (isinstance(h, dict) and isinstance(h.get("shape"), list)
          and all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in h["shape"])
          and isinstance(h.get("data_offsets"), list) and len(h["data_offsets"]) == 2
          and all(isinstance(o, int) and not isinstance(o, bool) for o in h["data_offsets"])
          and isinstance(h.get("dtype"), str))
    if not ok:
        raise BadHeader(f"malformed header entry for tensor '{name}'")
    if h["dtype"] not in dtypes or h["dtype"] not in ITEMSIZE:
        raise BadHeader(f"tensor '{name}' has unsupported dtype {h['dtype']}")
    a, b = h["data_offsets"]
    n = ITEMSIZE[h["dtype"]]
    for s in h["shape"]:
        n *= s
    if not 0 <= a <= b or b - a != n:
        raise BadHeader(f"tensor '{name}' claims shape {h['shape']} ({n} bytes of {h['dtype']}) "
                        f"but offsets [{a}, {b}]")
    if b > data:
        raise BadHeader(f"tensor '{name}' ends at byte {b} but the data section has {data} bytes",
                        hint="the file is truncated (an interrupted download or copy?)")
