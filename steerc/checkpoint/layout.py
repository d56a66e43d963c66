"""A base checkpoint directory's weight files, as their headers say (E601, E603-E606).

A base checkpoint is input like any other: shards can be missing, truncated or not
safetensors at all, and an index can name tensors its shard lacks. Each is a diagnostic
naming the file and tensor, never a traceback from deep inside the writer.

    E601 no safetensors weights at all (a `.bin` checkpoint is never unpickled)
    E603 model.safetensors.index.json unreadable   E605 a safetensors file is corrupt or truncated
    E604 a shard named by the index is missing     E606 the index names a tensor its shard lacks
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from steerc.checkpoint.header import BadHeader, parse_header
from steerc.diagnostics import Diagnostic, DiagnosticError
from steerc.files import read

SINGLE = "model.safetensors"
INDEX = "model.safetensors.index.json"


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
    """A base safetensors file's header (validated by `header.parse_header`) and where its
    data starts. E604 when the file is missing, E605 when it is not sound."""
    try:
        return parse_header(path)
    except BadHeader as e:
        if e.missing:
            fail("E604", f"{path}: shard file missing", "copy every shard the index names")
        fail("E605", f"{path}: {e.message}", e.hint)


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
