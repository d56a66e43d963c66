"""Rewritten shards made as a reflink of their base shard (`filecopy.clone_file`), then only
the edited tensors written: the same bytes and manifest as the copy path, the base never
written through, and the fallbacks (file systems that refuse, layouts that differ).

A real reflink needs btrfs/XFS/bcachefs; CI's ext4 refuses it, so the clone path is tested
everywhere with a stand-in clone (a plain full copy) and for real where STEERC_REFLINK_DIR
names a directory on such a file system (e.g. a loop-mounted XFS image)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from safetensors import safe_open

from bench.synth_checkpoint import SHAPES, Shape, write_checkpoint
from steerc.checkpoint import writer as shardwrite
from steerc.files import filecopy
from steerc.compiler.build_checkpoint import compile_program
from steerc.checkpoint.reader import open_checkpoint
from steerc.checkpoint.writer import Entry, ShardWriter, mirrors, run_tasks, safetensors_header
from steerc.compiler.ir import FeatureId, Intervention, Op, Program, SaeBinding
from steerc.saes import load_sae
from tests.tinymodels import random_sae_dir


def _make(root: Path, shape: Shape = SHAPES["tiny"], shard_bytes: int = 100_000) -> Program:
    write_checkpoint(shape, root / "base", shard_bytes=shard_bytes)
    hook = f"blocks.{shape.layers // 2}.hook_resid_post"
    random_sae_dir(shape.hidden, 16, hook, root / "sae", scale=8.0)
    b = SaeBinding("r", str(root / "sae"), hook, shape.hidden, 16, "0" * 64)
    iv = Intervention(Op.PROJECT_OUT, FeatureId("r", 5), 0.0, (), everywhere=True,
                      origin="ablate r[5] everywhere")
    return Program("s.steer", str(root / "base"), (b,), None, (iv,))


def _files(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir())}


def _compile(prog: Program, out: Path) -> dict:
    return compile_program(prog, out, saes={"r": load_sae(Path(prog.saes[0].path))}).manifest


def _spy_copies(monkeypatch) -> list[str]:
    """Record the destination file of every kernel-side range copy."""
    dsts: list[str] = []
    real = shardwrite.copy_range_at

    def spy(src, off, dst, dst_off, n, *a, **k):
        dsts.append(Path(os.readlink(f"/proc/self/fd/{dst}")).name)
        return real(src, off, dst, dst_off, n, *a, **k)
    monkeypatch.setattr(shardwrite, "copy_range_at", spy)
    return dsts


def test_clone_path_gives_the_copy_paths_bytes_and_copies_nothing(tmp_path, monkeypatch):
    prog = _make(tmp_path)
    monkeypatch.setattr(shardwrite, "clone_file", lambda src, dst: False)  # as on ext4
    copied = _spy_copies(monkeypatch)
    m = _compile(prog, tmp_path / "copy")
    rewritten = {f for f, how in m["shards"].items() if how == "rewritten"}
    assert len(rewritten) >= 2 and rewritten <= set(copied)
    monkeypatch.undo()

    clones: list[str] = []

    def stand_in(src: Path, dst: int) -> bool:  # what a reflink leaves: the base's bytes
        clones.append(src.name)
        os.pwrite(dst, src.read_bytes(), 0)
        return True
    monkeypatch.setattr(shardwrite, "clone_file", stand_in)
    copied = _spy_copies(monkeypatch)
    base_before = _files(tmp_path / "base")
    m2 = _compile(prog, tmp_path / "clone")
    assert sorted(clones) == sorted(rewritten)
    assert not set(copied) & rewritten  # the untouched tensors were not written again
    assert _files(tmp_path / "clone") == _files(tmp_path / "copy")
    assert m2 == m
    assert _files(tmp_path / "base") == base_before


def test_header_is_padded_to_the_mirrored_shards_data_start(tmp_path):
    base = open_checkpoint(write_checkpoint(SHAPES["tiny"], tmp_path / "base", shard_bytes=100_000))
    f = base.files[0]
    entries = [Entry(n, base.info(n).dtype, base.info(n).shape) for n in base.names_in(f)]
    assert mirrors(base, f, entries)
    natural = safetensors_header(entries)
    wide = safetensors_header(entries, len(natural) + 64)
    assert len(wide) == len(natural) + 64 and wide[8:].rstrip() == natural[8:].rstrip()
    assert safetensors_header(entries, len(natural) - 8) == natural  # does not fit: natural
    assert safetensors_header(entries, len(natural) + 61) == natural  # not 8-aligned
    out = tmp_path / "one.safetensors"
    with ShardWriter(out, entries, base, mirror=f) as w:
        w.finish(run_tasks(w.tasks, None))
    assert out.read_bytes() == (tmp_path / "base" / f).read_bytes()  # our header == synth's
    with safe_open(out, "pt") as s:
        assert sorted(s.keys()) == sorted(e.name for e in entries)


def test_mirrors_only_the_same_layout(tmp_path):
    base = open_checkpoint(write_checkpoint(SHAPES["tiny"], tmp_path / "base", shard_bytes=100_000))
    f = base.files[0]
    entries = [Entry(n, base.info(n).dtype, base.info(n).shape) for n in base.names_in(f)]
    assert mirrors(base, f, entries)
    assert not mirrors(base, f, entries[:-1])
    assert not mirrors(base, f, entries[::-1])
    assert not mirrors(base, f, [*entries[:-1], Entry(entries[-1].name, "F32", entries[-1].shape)])
    assert not mirrors(base, None, entries) and not mirrors(None, f, entries)
    with open(tmp_path / "base" / f, "ab") as fh:
        fh.write(b"\0" * 8)  # trailing bytes: a clone would keep them
    assert not mirrors(open_checkpoint(tmp_path / "base"), f, entries)


def _reflink_dir() -> Path | None:
    d = os.environ.get("STEERC_REFLINK_DIR")
    return Path(d) if d else None


@pytest.mark.skipif(_reflink_dir() is None,
                    reason="set STEERC_REFLINK_DIR to a directory on btrfs/XFS to test real reflinks")
def test_real_reflink_writes_only_the_edited_bytes(monkeypatch):
    root = _reflink_dir() / "steerc-clone-test"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    try:
        probe = root / "probe"
        probe.write_bytes(b"x" * 4096)
        with open(root / "probe2", "wb") as d:
            assert filecopy.clone_file(probe, d.fileno()), "STEERC_REFLINK_DIR cannot reflink"
        shape = Shape(hidden=256, layers=16, intermediate=2048, vocab=8192, heads=4, kv_heads=2)
        prog = _make(root, shape, shard_bytes=16 << 20)
        base_before = {p.name: p.read_bytes() for p in (root / "base").glob("*.safetensors")}
        m, grew = _compile_measured(prog, root / "clone")
        monkeypatch.setattr(shardwrite, "clone_file", lambda src, dst: False)
        m2, grew_copy = _compile_measured(prog, root / "copy")
        assert m2 == m and _files(root / "clone") == _files(root / "copy")
        rewritten = [f for f, how in m["shards"].items() if how == "rewritten"]
        base = open_checkpoint(root / "base")
        untouched = sum(base.info(n).offsets[1] - base.info(n).offsets[0]
                        for f in rewritten for n in base.names_in(f) if n not in m["tensors"])
        assert untouched > 20 << 20  # most of each rewritten shard is untouched
        # the copy path writes the untouched tensors of the rewritten shards, the clone doesn't
        # (0.75: XFS rounds copy-on-write up to its CoW extent size around each edited tensor)
        assert grew_copy - grew > 0.75 * untouched, (grew, grew_copy, untouched)
        assert {p.name: p.read_bytes() for p in (root / "base").glob("*.safetensors")} == base_before
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _compile_measured(prog: Program, out: Path) -> tuple[dict, int]:
    """Compile; the manifest and how many bytes the file system's used space grew."""
    os.sync()
    used0 = _used(out.parent)
    m = _compile(prog, out)
    os.sync()
    return m, _used(out.parent) - used0


def _used(path: Path) -> int:
    st = os.statvfs(path)
    return (st.f_blocks - st.f_bfree) * st.f_frsize
