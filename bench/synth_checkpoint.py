"""Synthetic Llama checkpoints with real shapes, written streaming (never whole in RAM).

    .venv/bin/python bench/synth_checkpoint.py llama-3.2-1b /tmp/synth-1b [--shard-gb 2]
    .venv/bin/python bench/synth_checkpoint.py tiny /tmp/synth-tiny

    from bench.synth_checkpoint import SHAPES, write_checkpoint
    write_checkpoint(SHAPES["llama-3.2-1b"], "/tmp/synth-1b", shard_bytes=2 << 30)

bf16, sharded with `model.safetensors.index.json` (HF shard names), tied embeddings like
the real Llama-3.2 models. Weights are random bf16 bit patterns drawn with numpy's PCG64
(uint16 per element, ~1 GB/s): random sign and mantissa, exponent limited so that
|w| is in [2^-9, 2^-5) (a sane scale for a forward pass); norm weights are 1.0. Each
tensor is generated and written in 16 MiB blocks, so peak memory is one block.
"""

from __future__ import annotations

import argparse
import json
import struct
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

BLOCK = 8 << 20  # elements per generated block (16 MiB of bf16)


@dataclass(frozen=True)
class Shape:
    """A Llama-family model shape (the fields of LlamaConfig that fix tensor shapes)."""

    hidden: int
    layers: int
    intermediate: int
    vocab: int
    heads: int
    kv_heads: int
    tied: bool = True


SHAPES = {
    "llama-3.2-1b": Shape(2048, 16, 8192, 128256, 32, 8),
    "llama-3.2-3b": Shape(3072, 28, 8192, 128256, 24, 8),
    "llama-3.1-8b": Shape(4096, 32, 14336, 128256, 32, 8, tied=False),  # 16 GB: steerc only
    "mid": Shape(1024, 4, 4096, 32000, 16, 4),  # inference bench: a few layers, CPU-friendly
    "tiny": Shape(64, 2, 128, 512, 4, 2),  # CI tests: ~100 KB
}


def tensors(s: Shape) -> list[tuple[str, tuple[int, ...]]]:
    """(name, shape) of every stored tensor, in HF's save order."""
    hd = s.hidden // s.heads
    out = [("model.embed_tokens.weight", (s.vocab, s.hidden))]
    for i in range(s.layers):
        p = f"model.layers.{i}"
        out += [(f"{p}.input_layernorm.weight", (s.hidden,)),
                (f"{p}.self_attn.q_proj.weight", (s.heads * hd, s.hidden)),
                (f"{p}.self_attn.k_proj.weight", (s.kv_heads * hd, s.hidden)),
                (f"{p}.self_attn.v_proj.weight", (s.kv_heads * hd, s.hidden)),
                (f"{p}.self_attn.o_proj.weight", (s.hidden, s.heads * hd)),
                (f"{p}.post_attention_layernorm.weight", (s.hidden,)),
                (f"{p}.mlp.gate_proj.weight", (s.intermediate, s.hidden)),
                (f"{p}.mlp.up_proj.weight", (s.intermediate, s.hidden)),
                (f"{p}.mlp.down_proj.weight", (s.hidden, s.intermediate))]
    out.append(("model.norm.weight", (s.hidden,)))
    if not s.tied:
        out.append(("lm_head.weight", (s.vocab, s.hidden)))
    return out


def config_dict(s: Shape) -> dict:
    """config.json of the shape (LlamaConfig defaults for everything else)."""
    from transformers import LlamaConfig

    cfg = LlamaConfig(vocab_size=s.vocab, hidden_size=s.hidden, intermediate_size=s.intermediate,
                      num_hidden_layers=s.layers, num_attention_heads=s.heads,
                      num_key_value_heads=s.kv_heads, tie_word_embeddings=s.tied,
                      max_position_embeddings=2048, rms_norm_eps=1e-5, rope_theta=500000.0,
                      bos_token_id=1, eos_token_id=2, pad_token_id=0)
    d = cfg.to_dict()
    d["architectures"] = ["LlamaForCausalLM"]
    d["torch_dtype"] = d["dtype"] = "bfloat16"
    return d


def _blocks(rng: np.random.Generator, n: int, norm: bool):
    """bf16 bit patterns (uint16) for n elements, in blocks of at most BLOCK."""
    for a in range(0, n, BLOCK):
        m = min(BLOCK, n - a)
        if norm:
            yield np.full(m, 0x3F80, dtype=np.uint16)  # 1.0
            continue
        r = rng.integers(0, 1 << 16, m, dtype=np.uint16)
        exp = ((r >> 7) & 3).astype(np.uint16) + np.uint16(118)  # 2^-9 .. 2^-6 scale
        yield (r & np.uint16(0x807F)) | (exp << np.uint16(7))


def _write_shard(path: Path, items: list[tuple[str, tuple[int, ...]]], seed: int) -> int:
    header, off = {"__metadata__": {"format": "pt"}}, 0
    for name, shape in items:
        n = 2 * int(np.prod(shape))
        header[name] = {"dtype": "BF16", "shape": list(shape), "data_offsets": [off, off + n]}
        off += n
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-len(blob) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(blob)))
        f.write(blob)
        for k, (name, shape) in enumerate(items):
            rng = np.random.default_rng([seed, k])
            for block in _blocks(rng, int(np.prod(shape)), name.endswith("norm.weight")):
                f.write(block.tobytes())
    return off


def write_checkpoint(s: Shape, out: str | Path, *, shard_bytes: int = 2 << 30, seed: int = 0) -> Path:
    """Write config.json, shards and the index for shape `s` into `out`; returns `out`."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    groups: list[list] = [[]]
    size = 0
    for name, shape in tensors(s):
        n = 2 * int(np.prod(shape))
        if groups[-1] and size + n > shard_bytes:
            groups.append([])
            size = 0
        groups[-1].append((name, shape))
        size += n
    weight_map, total = {}, 0
    for i, items in enumerate(groups):
        file = f"model-{i + 1:05d}-of-{len(groups):05d}.safetensors"
        total += _write_shard(out / file, items, seed * 1000 + i)
        weight_map.update({name: file for name, _ in items})
    (out / "model.safetensors.index.json").write_text(json.dumps(
        {"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2, sort_keys=True))
    (out / "config.json").write_text(json.dumps(config_dict(s), indent=2, sort_keys=True))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("shape", choices=sorted(SHAPES))
    ap.add_argument("out")
    ap.add_argument("--shard-gb", type=float, default=2.0)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    write_checkpoint(SHAPES[a.shape], a.out, shard_bytes=int(a.shard_gb * (1 << 30)), seed=a.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
