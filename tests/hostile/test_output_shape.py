"""What a compiled output is made of, whatever the base and the environment: permission bits
that follow the umask (not 0700), real files even when the base's shards are symlinks (a
standalone checkpoint, no link to outside), and usage or path errors that are diagnostics:
a 300-character `-o`, `--jobs 0`."""

from __future__ import annotations

import io
import json
import os
import shutil
import stat
from contextlib import redirect_stderr
from pathlib import Path

import pytest
import torch

from tests.hostile.world import FIX, run_cli, write_spec

EXACT = "steer res2[1] by 4\n"
EVERYWHERE = "ablate res2[2] everywhere\n"


def _compile(spec: Path, out: Path, *extra: str) -> None:
    rc, _, err = run_cli(["compile", str(spec), "-o", str(out), "--no-progress", *extra])
    assert rc == 0, err


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o002])
@pytest.mark.parametrize("body", [EXACT, EVERYWHERE])
def test_modes_follow_the_umask(base_model, tmp_path, mask, body):
    """The output dir is 0777 & ~umask like mkdir's (mkdtemp made it 0700); every file steerc
    writes is 0666 & ~umask; a hard-linked base shard is the base's own file."""
    spec = write_spec(tmp_path / "s.steer", base_model, FIX / "sae_res", body)
    out = tmp_path / "out"
    old = os.umask(mask)
    try:
        _compile(spec, out)
    finally:
        os.umask(old)
    assert stat.S_IMODE(out.stat().st_mode) == 0o777 & ~mask
    for p in out.rglob("*"):
        st = p.lstat()
        if stat.S_ISDIR(st.st_mode):
            assert stat.S_IMODE(st.st_mode) == 0o777 & ~mask, p
        elif st.st_nlink == 1:
            assert stat.S_IMODE(st.st_mode) == 0o666 & ~mask, p


@pytest.fixture(scope="module")
def linked_base(base_model, tmp_path_factory):
    """The base laid out like a Hugging Face cache snapshot: every file a relative symlink
    into ../../blobs/."""
    root = tmp_path_factory.mktemp("hfcache")
    blobs, snap = root / "blobs", root / "snapshots" / "rev"
    blobs.mkdir()
    snap.mkdir(parents=True)
    for p in sorted(base_model.iterdir()):
        shutil.copyfile(p, blobs / p.name)
        (snap / p.name).symlink_to(Path("..") / ".." / "blobs" / p.name)
    return root, snap


@pytest.mark.parametrize("body", [EXACT, EVERYWHERE])
def test_symlinked_base_gives_a_standalone_output(base_model, linked_base, tmp_path, body):
    """Shards and side files behind symlinks: the output holds real files (the same bytes
    as from the plain base), and loads after the blobs are gone."""
    from transformers import AutoModelForCausalLM

    root, snap = linked_base
    plain, linked = tmp_path / "plain", tmp_path / "linked"
    _compile(write_spec(tmp_path / "p.steer", base_model, FIX / "sae_res", body), plain)
    _compile(write_spec(tmp_path / "l.steer", snap, FIX / "sae_res", body), linked)
    assert not [p for p in linked.rglob("*") if p.is_symlink()]
    mp, ml = (json.loads((d / "steerc-manifest.json").read_text()) for d in (plain, linked))
    assert (mp["files"], mp["tensors"], mp["side_files"]) == (ml["files"], ml["tensors"], ml["side_files"])
    moved = tmp_path / "moved-blobs"
    shutil.move(root / "blobs", moved)  # the output must not need them
    try:
        model = AutoModelForCausalLM.from_pretrained(linked)
        ref = AutoModelForCausalLM.from_pretrained(plain)
        ids = torch.tensor([[1, 5, 7, 9]])
        assert torch.equal(model(ids).logits, ref(ids).logits)
    finally:
        shutil.move(moved, root / "blobs")


def test_a_base_file_that_is_a_symlink_to_a_directory_is_a_diagnostic(base_model, tmp_path):
    """A side file (tokenizer.json) that resolves to something other than a regular file is
    skipped, a shard that does is E620 (not E610 'cannot write the output')."""
    from steerc.diagnostics import DiagnosticError
    from steerc.files.write import link_or_copy

    (tmp_path / "d").mkdir()
    (tmp_path / "shard.safetensors").symlink_to(tmp_path / "d")
    with pytest.raises(DiagnosticError) as e:
        link_or_copy(tmp_path / "shard.safetensors", tmp_path / "copy")
    assert e.value.diagnostics[0].code == "E620" and not (tmp_path / "copy").exists()


@pytest.mark.parametrize("out", [lambda t: t / ("o" * 300), lambda t: t / ("o" * 300) / "x",
                                 lambda t: t / ("é" * 150)])
def test_overlong_output_names_are_diagnostics(base_model, tmp_path, out):
    spec = write_spec(tmp_path / "s.steer", base_model, FIX / "sae_res", EXACT)
    rc, _, err = run_cli(["compile", str(spec), "-o", str(out(tmp_path)), "--no-progress"])
    assert rc == 1 and "[E420]" in err and "the file system allows" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.steer"]


def test_a_long_but_legal_output_name_compiles(base_model, tmp_path):
    """255 bytes is legal: the temp dir beside it shortens its own name to stay legal."""
    spec = write_spec(tmp_path / "s.steer", base_model, FIX / "sae_res", EXACT)
    out = tmp_path / ("o" * 255)
    _compile(spec, out)
    assert (out / "steerc-manifest.json").is_file()
    _compile(spec, out, "--force")


@pytest.mark.parametrize("jobs", ["0", "-3", "two", "1.5"])
def test_jobs_must_be_a_positive_count(base_model, tmp_path, jobs):
    from steerc.cli import main

    spec = write_spec(tmp_path / "s.steer", base_model, FIX / "sae_res", EXACT)
    err = io.StringIO()
    with redirect_stderr(err):  # a usage error: exit 2 (main returns it, no SystemExit)
        rc = main(["compile", str(spec), "-o", str(tmp_path / "out"), "--jobs", jobs])
    assert rc == 2 and "--jobs" in err.getvalue() and "Traceback" not in err.getvalue()
    assert not (tmp_path / "out").exists()
