"""Safetensors and checkpoint I/O, shared by the compiler, the SAE loaders and verify.

    dtypes.py   the one table of safetensors dtype tags (torch-free)
    header.py   the one header validator (`parse_header`), each caller's codes on top
    layout.py   a base checkpoint directory: index, shards, headers (E601, E603-E606)
    reader.py   `Checkpoint`: tensors, row blocks and raw bytes on demand
    digest.py   tensor and shard hashes (what the manifest records, verify recomputes)
    writer.py   one output shard: `Entry`/producers, `ShardWriter`, parallel tasks
    finite.py   no NaN/inf in any computed block
    output.py   a whole output checkpoint: `write_tensors`, side files, strict JSON

Importing the package imports nothing; `dtypes`, `header` and `layout` never import torch
(`check` reads headers), the others do.
"""
