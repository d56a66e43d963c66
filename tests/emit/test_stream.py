"""Streaming compile internals: block-wise projection math equals edits.py bit for bit,
kernel-side copies (and their read/write fallback) give the same bytes, and the shard
digest recorded for a rewritten shard catches a changed byte anywhere in it, untouched
copied tensors included, while its base tensor hashes are cached by stat."""

from __future__ import annotations

import errno
import json
import os

import pytest
import torch

from bench.synth_checkpoint import SHAPES, write_checkpoint
from steerc.checkpoint import digest
from steerc.compiler import edits, stream_edits
from steerc.files import filecopy
from steerc.compiler.build_checkpoint import compile_program
from steerc.checkpoint.digest import base_tensor_hashes, file_shard_digest
from steerc.checkpoint.reader import open_checkpoint
from steerc.compiler.ir import FeatureId, Intervention, Op, Program, SaeBinding
from steerc.saes import load_sae
from tests.tinymodels import random_sae_dir


def _q(d: int, r: int = 1, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return edits.orthonormal_basis([torch.randn(d, generator=g) for _ in range(r)])


@pytest.mark.parametrize("layout,shape", [("linear", (96, 1200)), ("conv1d", (1100, 96))])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32])
@pytest.mark.parametrize("rank", [1, 2])
def test_writer_blocks_equal_whole_tensor_math(layout, shape, dtype, rank, monkeypatch):
    monkeypatch.setattr(stream_edits, "BLOCK_BYTES", 4 * 96 * 7)  # many uneven blocks
    W = (torch.randn(shape, generator=torch.Generator().manual_seed(1)) * 0.02).to(dtype)
    Q = _q(96, rank)
    want = edits.finish(edits.project_writer(W, Q, layout), dtype)
    keep = W.clone()
    got = torch.cat(list(stream_edits.writer_blocks(W, Q, layout, dtype)))
    assert got.dtype == dtype and torch.equal(got, want)
    assert torch.equal(W, keep)  # the caller's tensor is left alone (fp32 included)
    assert not torch.equal(got, W)


@pytest.mark.parametrize("with_delta", [False, True])
@pytest.mark.parametrize("rank", [0, 1, 2])
def test_embedding_blocks_equal_iter_rows(with_delta, rank, monkeypatch):
    monkeypatch.setattr(stream_edits, "BLOCK_BYTES", 4 * 64 * 5)
    monkeypatch.setattr(edits, "ROWS", 130)  # blocks with gemv tails, as at full size
    g = torch.Generator().manual_seed(2)
    E = (torch.randn(333, 64, generator=g) * 0.02).to(torch.bfloat16)
    delta = torch.randn(64, generator=g) if with_delta else None
    Q = _q(64, rank) if rank else None
    want = torch.cat(list(edits.iter_rows(lambda a, b: E[a:b], E.shape, delta, Q, torch.bfloat16)))
    got = torch.cat(list(stream_edits.embedding_blocks(lambda a, b: E[a:b], E.shape, delta, Q,
                                                       torch.bfloat16)))
    assert torch.equal(got, want)


@pytest.mark.parametrize("kernel", ["yes", "refuses", "absent"])
def test_copy_range_at_copies_the_byte_range(tmp_path, monkeypatch, kernel):
    src = tmp_path / "src"
    data = os.urandom(100_000)
    src.write_bytes(data)
    if kernel == "refuses":
        def refuse(*a, **k):
            raise OSError(errno.EXDEV, "cross-device")
        monkeypatch.setattr(os, "copy_file_range", refuse)
    elif kernel == "absent":  # not Linux
        monkeypatch.delattr(os, "copy_file_range")
    with open(src, "rb") as s, open(tmp_path / "dst", "wb", buffering=0) as d:
        d.write(b"head")
        filecopy.copy_range_at(s.fileno(), 1234, d.fileno(), 4, 70_001, chunk=4096)
        filecopy.pwrite_all(d.fileno(), b"tail", 4 + 70_001)
    assert (tmp_path / "dst").read_bytes() == b"head" + data[1234:71235] + b"tail"


def test_read_range_reports_a_truncated_file(tmp_path):
    (tmp_path / "f").write_bytes(b"x" * 100)
    with open(tmp_path / "f", "rb") as f:
        assert b"".join(bytes(c) for c in filecopy.read_range(f.fileno(), 10, 90, chunk=7)) == b"x" * 90
        with pytest.raises(OSError, match="truncated"):
            list(filecopy.read_range(f.fileno(), 10, 91))


@pytest.fixture(scope="module")
def ablated(tmp_path_factory):
    root = tmp_path_factory.mktemp("stream")
    s = SHAPES["tiny"]
    write_checkpoint(s, root / "base", shard_bytes=100_000)
    hook = f"blocks.{s.layers // 2}.hook_resid_post"
    random_sae_dir(s.hidden, 16, hook, root / "sae", scale=8.0)
    b = SaeBinding("r", str(root / "sae"), hook, s.hidden, 16, "0" * 64)
    iv = Intervention(Op.PROJECT_OUT, FeatureId("r", 5), 0.0, (), everywhere=True,
                      origin="ablate r[5] everywhere")
    res = compile_program(Program("s.steer", str(root / "base"), (b,), None, (iv,)), root / "out",
                          saes={"r": load_sae(root / "sae")})
    return root, res.manifest


def test_rewritten_shard_digest_catches_a_changed_copied_byte(ablated):
    root, m = ablated
    out, base = open_checkpoint(root / "out"), open_checkpoint(root / "base")
    rewritten = [f for f, how in m["shards"].items() if how == "rewritten"]
    assert rewritten
    for f in rewritten:
        assert m["files"][f] == file_shard_digest(root / "out" / f)
    f = max(rewritten, key=lambda f: len([n for n in out.names_in(f) if n not in m["tensors"]]))
    copied = [n for n in out.names_in(f) if n not in m["tensors"]]
    assert copied  # a rewritten shard also holds tensors copied as they are
    for n in copied:
        assert out.raw(n) == base.raw(n)
    path = root / "out" / f
    info = out.info(copied[-1])
    at = out.data_start[f] + info.offsets[0] + 1
    blob = bytearray(path.read_bytes())
    blob[at] ^= 0x01
    path.unlink()  # the output shard may share nothing with the base, but never write through
    path.write_bytes(bytes(blob))
    assert file_shard_digest(path) != m["files"][f]


def test_before_hashes_are_the_base_tensors(ablated):
    root, m = ablated
    base = open_checkpoint(root / "base")
    for e in m["edits"]:
        if base.has(e["tensor"]):
            info = base.info(e["tensor"])
            assert e["before_sha256"] == digest.tensor_hash(e["tensor"], info.dtype, info.shape,
                                                          base.raw(e["tensor"]))


def test_base_tensor_hashes_are_cached_by_stat(tmp_path, monkeypatch):
    monkeypatch.setenv("STEERC_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("STEERC_HASH_CACHE", "1")
    write_checkpoint(SHAPES["tiny"], tmp_path / "base", shard_bytes=40_000)
    base = open_checkpoint(tmp_path / "base")
    f = base.files[0]
    first = base_tensor_hashes(base, f)
    assert first == digest.hash_file_tensors(tmp_path / "base" / f)
    calls = []
    real = digest.hash_file_tensors
    monkeypatch.setattr(digest, "hash_file_tensors", lambda p: calls.append(p) or real(p))
    assert base_tensor_hashes(base, f) == first and calls == []
    os.utime(tmp_path / "base" / f, ns=(1, 1))  # a changed stat signature recomputes
    assert base_tensor_hashes(base, f) == first and len(calls) == 1
    assert json.dumps(first)  # plain str -> str
