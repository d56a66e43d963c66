"""What every backend writes: the base checkpoint's tensors with edits, new shards, config.

`write_tensors` lays out the output shards: a base shard without edits is hard-linked, a
shard with edits (or gaining a tensor) is rewritten tensor by tensor in its stored order, new
tensors appended in name order. Extra shards (the hooks' `steering.safetensors`) are listed
in `model.safetensors.index.json`; since transformers prefers `model.safetensors` over an
index, a single-file base is then renamed to one shard of an index.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from steerc.compiler.emit import (INDEX, SINGLE, Checkpoint, Entry, hash_file_tensors,
                                  link_or_copy, tensor_hash, write_json, write_safetensors)

RENAMED_SINGLE = "model-00001-of-00001.safetensors"


@dataclass
class TensorOutput:
    """What `write_tensors` wrote: per-tensor content hashes of the output and of the base
    tensors it replaced, the weight map and how each base shard was carried over."""

    hashes: dict[str, str] = field(default_factory=dict)
    before: dict[str, str] = field(default_factory=dict)
    weight_map: dict[str, str] = field(default_factory=dict)
    shards: dict[str, str] = field(default_factory=dict)  # file -> link|copy|rewritten|new


def write_tensors(base: Checkpoint, out: Path, replaced: dict, new: dict,
                  extra_shards: dict[str, list[Entry]] | None = None,
                  progress: bool = False) -> TensorOutput:
    """Write every output tensor into `out` (an empty dir). `replaced`: name -> producer for
    base tensors; `new`: name -> NewTensor (joins the shard of `beside`); `extra_shards`:
    file name -> entries of whole new files."""
    extra_shards = extra_shards or {}
    res = TensorOutput()
    joins: dict[str, list] = {}
    for nt in new.values():
        file = base.info(nt.beside).file if base.has(nt.beside) else base.files[0]
        joins.setdefault(file, []).append(nt)
    need_index = base.sharded or bool(extra_shards)
    total = sum(base.nbytes(f) for f in base.files) + sum(
        e.nbytes for es in extra_shards.values() for e in es)
    bar = tqdm(total=total, unit="B", unit_scale=True, desc="steerc compile", disable=not progress)
    try:
        for file in base.files:
            name = RENAMED_SINGLE if (file == SINGLE and need_index) else file
            names = base.names_in(file)
            edited = [n for n in names if n in replaced]
            if not edited and file not in joins:
                res.shards[name] = link_or_copy(base.root / file, out / name)
                res.hashes.update(hash_file_tensors(out / name))
                bar.update(base.nbytes(file))
            else:
                entries = []
                for n in names:
                    info = base.info(n)
                    entries.append(Entry(n, info.dtype, info.shape, replaced.get(n)))
                    if n in replaced:
                        res.before[n] = tensor_hash(n, info.dtype, info.shape, base.raw(n))
                for nt in sorted(joins.get(file, []), key=lambda t: t.name):
                    entries.append(Entry(nt.name, nt.dtype, nt.shape, nt.produce))
                res.hashes.update(write_safetensors(out / name, entries, base, bar.update))
                res.shards[name] = "rewritten"
            for e_name in names + [nt.name for nt in joins.get(file, [])]:
                res.weight_map[e_name] = name
        for file, entries in sorted(extra_shards.items()):
            res.hashes.update(write_safetensors(out / file, entries, None, bar.update))
            res.shards[file] = "new"
            for e in entries:
                res.weight_map[e.name] = file
    finally:
        bar.close()
    if need_index:
        total_size = sum((out / f).stat().st_size for f in sorted(set(res.weight_map.values())))
        write_json(out / INDEX, {"metadata": {"total_size": total_size},
                                 "weight_map": dict(sorted(res.weight_map.items()))})
    return res
