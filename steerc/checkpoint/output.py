"""Writing an output checkpoint: the base's tensors with edits, new shards, side files.

`write_tensors` lays out the output shards: a base shard without edits is hard-linked
untouched (its sha256 is the base file's, from `steerc.files.hashing`'s cache), a shard
with edits is rewritten tensor by tensor in its stored order (untouched tensors copied kernel
side, or not written at all where the file system can reflink the base shard; edited ones
streamed from their producers; recorded by `digest.shard_digest`, whose untouched-tensor
hashes come from `digest.base_tensor_hashes`, cached by stat), and every tensor the base lacks
(the zero MLP biases `mlp_bias` creates, a steering bias, an untied head) goes into one new
shard `ADDED_SHARD`, so an additive rule rewrites no base shard at all. New shards (that
one, the hooks' `steering.safetensors`) are listed in `model.safetensors.index.json`; since
transformers prefers `model.safetensors` over an index, a single-file base is then
hard-linked as one shard of an index (renamed, never rewritten).
"""

from __future__ import annotations

import contextlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from steerc.checkpoint.digest import base_tensor_hashes
from steerc.checkpoint.layout import INDEX, SINGLE
from steerc.checkpoint.reader import Checkpoint
from steerc.checkpoint.writer import Entry, ShardWriter, run_tasks
from steerc.diagnostics import DiagnosticError
from steerc.files import read
from steerc.files.hashing import file_sha256
from steerc.files.write import copy_new, dumps_json, link_or_copy, write_new

RENAMED_SINGLE = "model-00001-of-00001.safetensors"
# Two tensors at once keep two cores busy (one thread's reads, math and hashing leave the
# other core idle). Each thread holds one tensor's working set (a writer's fp32 copy and
# read buffer: ~3x its bf16 bytes), so more threads would grow memory past the streaming
# bound (2x the largest tensor + 300 MB) on models whose MLP writers are large.
DEFAULT_JOBS = min(2, os.cpu_count() or 1)
ADDED_SHARD = "model-steerc-added.safetensors"
WEIGHT_FILES = (SINGLE, INDEX, "pytorch_model.bin", "pytorch_model.bin.index.json")


@dataclass
class TensorOutput:
    """What `write_tensors` wrote. `hashes`: `tensor_hash` of every tensor steerc wrote
    (edited or new), computed over the bytes as written; `before`: the same for the base
    tensors they replaced; `files`: per output .safetensors file, the sha256 of its bytes for
    a linked or copied base shard (the base file's hash), `digest.shard_digest` for a
    rewritten or new one; the weight map and how each shard was made."""

    hashes: dict[str, str] = field(default_factory=dict)
    before: dict[str, str] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    weight_map: dict[str, str] = field(default_factory=dict)
    shards: dict[str, str] = field(default_factory=dict)  # file -> link|copy|rewritten|new


def write_tensors(base: Checkpoint, out: Path, replaced: dict, new: dict,
                  extra_shards: dict[str, list[Entry]] | None = None,
                  progress: bool = False, jobs: int | None = None) -> TensorOutput:
    """Write every output tensor into `out` (an empty dir). `replaced`: name -> producer for
    base tensors; `new`: name -> NewTensor (all into `ADDED_SHARD`); `extra_shards`: file
    name -> entries of whole new files. `jobs` > 1 makes that many tensors at once (from any
    shard), each on its own thread (`shardwrite.run_tasks`); the bytes do not depend on it."""
    extra_shards = dict(extra_shards or {})
    if new:
        extra_shards[ADDED_SHARD] = [Entry(nt.name, nt.dtype, nt.shape, nt.produce)
                                     for nt in sorted(new.values(), key=lambda t: t.name)]
    res = TensorOutput()
    need_index = base.sharded or bool(extra_shards)
    rewrite = [f for f in base.files if any(n in replaced for n in base.names_in(f))]
    total = sum(base.nbytes(f) for f in rewrite) + sum(
        e.nbytes for es in extra_shards.values() for e in es)
    bar = tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc="steerc compile",
               disable=not progress)
    jobs = DEFAULT_JOBS if jobs is None else jobs
    pool = ThreadPoolExecutor(jobs) if jobs > 1 else None
    # One intra-op thread: the edits run on small cache-sized blocks, `jobs` tensors at once;
    # OpenMP's fork/join per block, with a core taken by another tensor's thread or by
    # another process, cost up to 3x the CPU time here. Results do not depend on it (each
    # output element of the reductions is one thread's dot product).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with contextlib.ExitStack() as stack:
            writers: dict[str, ShardWriter] = {}  # output file name -> its writer
            for file in base.files:
                name = RENAMED_SINGLE if (file == SINGLE and need_index) else file
                if file not in rewrite:
                    res.shards[name] = link_or_copy(base.root / file, out / name)
                    res.files[name] = file_sha256(base.root / file)  # same bytes (cached by stat)
                else:
                    entries = [Entry(n, base.info(n).dtype, base.info(n).shape, replaced.get(n))
                               for n in base.names_in(file)]
                    writers[name] = stack.enter_context(ShardWriter(
                        out / name, entries, base, bar.update, base_tensor_hashes(base, file), file))
                    res.shards[name] = "rewritten"
                for n in base.names_in(file):
                    res.weight_map[n] = name
            for file, entries in sorted(extra_shards.items()):
                writers[file] = stack.enter_context(ShardWriter(out / file, entries, base, bar.update))
                res.shards[file] = "new"
                for e in entries:
                    res.weight_map[e.name] = file
            # every shard's tensors in one queue, so that `jobs` threads stay busy to the end
            tasks = [t for w in writers.values() for t in w.tasks]
            results = iter(run_tasks(tasks, pool))
            for name, w in writers.items():
                written = w.finish([next(results) for _ in w.tasks])
                res.hashes.update(written.tensors)
                res.before.update(written.before)
                res.files[name] = written.digest
    finally:
        torch.set_num_threads(threads)
        bar.close()
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    if need_index:
        total_size = sum((out / f).stat().st_size for f in sorted(set(res.weight_map.values())))
        write_json(out / INDEX, {"metadata": {"total_size": total_size},
                                 "weight_map": dict(sorted(res.weight_map.items()))})
    return res


def write_json(path: Path, obj, what: str | None = None) -> None:
    """Deterministic strict JSON as a new file: sorted keys, 2-space indent, trailing
    newline; a NaN or an infinity is E426 (`files.write.dumps_json`)."""
    write_new(path, dumps_json(obj, what or path.name, indent=2, sort_keys=True) + "\n")


CODE_SUFFIXES = (".py", ".pyc", ".so")


def copy_side_files(base: Path, out: Path, skip: set[str]) -> list[str]:
    """Copy the base's regular top-level non-weight files (tokenizer, generation config...).

    Code is never carried over: no `.py`/`.pyc`/`.so` file, and a tokenizer_config.json
    loses its `auto_map` (which names such code), so that trusting a steerc output only
    ever runs steerc's own code."""
    copied = []
    for p in sorted(base.iterdir()):
        if not os.path.isfile(p) or p.name in skip or p.name in WEIGHT_FILES or p.suffix == ".safetensors":
            continue
        if p.suffix in CODE_SUFFIXES:
            continue
        if p.name == "tokenizer_config.json" and _without_auto_map(p, out / p.name):
            copied.append(p.name)
            continue
        copy_new(p, out / p.name)
        copied.append(p.name)
    return copied


def _without_auto_map(src: Path, dst: Path) -> bool:
    """Write `src` (a JSON object with an `auto_map`) to `dst` without it; False (nothing
    written) when `src` has no `auto_map` or is not a JSON object."""
    try:
        doc = json.loads(read.read_bytes(src, read.MODEL_CONFIG))
    except (DiagnosticError, ValueError):
        return False
    if not isinstance(doc, dict) or "auto_map" not in doc:
        return False
    doc.pop("auto_map")
    write_json(dst, doc)
    return True
