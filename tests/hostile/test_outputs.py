"""The output directory under hostile conditions: an existing one (refused without --force),
SIGINT, SIGTERM, SIGHUP and SIGKILL mid-write, a full disk mid-stream, two compiles racing for one output.
The destination is always absent, the old content, or one complete new checkpoint."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from steerc.checkpoint.digest import hash_file_tensors
from tests.hostile.world import FIX, ROOT, run_cli, write_spec

EXACT = "steer res2[1] by 4\nablate res2[2] everywhere\n"
BIG_VOCAB = 1_000_000  # 2 x 64 MB of embeddings: the write takes long enough to interrupt


@pytest.fixture(scope="module")
def big_model(base_model, tmp_path_factory):
    """The tiny base with a 1M-token vocabulary (embeddings rewritten by `ablate everywhere`)."""
    d = tmp_path_factory.mktemp("hostile-big") / "model"
    shutil.copytree(base_model, d)
    t = load_file(str(d / "model.safetensors"))
    g = torch.Generator().manual_seed(0)
    for k in ("model.embed_tokens.weight", "lm_head.weight"):
        t[k] = torch.randn(BIG_VOCAB, 16, generator=g) * 0.02
    save_file(t, str(d / "model.safetensors"), metadata={"format": "pt"})
    cfg = json.loads((d / "config.json").read_text())
    cfg["vocab_size"] = BIG_VOCAB
    (d / "config.json").write_text(json.dumps(cfg))
    return d


def _leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if ".steerc-" in p.name)


def _complete(out: Path) -> dict:
    """The manifest of `out`, after checking that every tensor it records hashes as it says
    in the shards on disk (one checkpoint, never a mix of two)."""
    manifest = json.loads((out / "steerc-manifest.json").read_text())
    got = {}
    for f in sorted(out.glob("*.safetensors")):
        got.update(hash_file_tensors(f))
    assert manifest["tensors"] and {k: got.get(k) for k in manifest["tensors"]} == manifest["tensors"]
    return manifest


# Loaded into the spawned compile (a `sitecustomize` first on its path): every positional write
# into a temp shard pauses first, so the write phase outlasts a signal sent once it started,
# however fast or loaded the machine (a plain 128 MB write can finish before the signal lands).
SLOW_WRITES = """
import os, time
_real = os.pwrite
def _slow(fd, data, offset):
    if ".steerc-tmp-" in os.readlink(f"/proc/self/fd/{fd}"):
        time.sleep(0.25)
    return _real(fd, data, offset)
os.pwrite = _slow
"""


def _spawn(spec: Path, out: Path, *extra: str, slow: Path | None = None) -> subprocess.Popen:
    """The compile CLI in a subprocess; `slow`: a folder for the SLOW_WRITES sitecustomize."""
    path = [str(ROOT)]
    if slow is not None:
        slow.mkdir(exist_ok=True)
        (slow / "sitecustomize.py").write_text(SLOW_WRITES)
        path.insert(0, str(slow))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(path))
    return subprocess.Popen([sys.executable, "-m", "steerc", "compile", str(spec), "-o", str(out),
                             "--no-progress", *extra], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _wait_for_write(proc: subprocess.Popen, parent: Path, out: Path, timeout: float = 120.0) -> None:
    """Block until the compile has started writing shard bytes into its temp dir."""
    t = time.monotonic()
    while time.monotonic() - t < timeout:
        for tmp in parent.glob(f".{out.name}.steerc-tmp-{proc.pid}-*"):
            if any(f.stat().st_size > 0 for f in tmp.glob("*.safetensors")):
                return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.005)
    pytest.fail("the compile never started writing")


def test_existing_output_is_refused_without_force(base_model, tmp_path):
    spec = write_spec(tmp_path / "s.steer", base_model, FIX / "sae_res", EXACT)
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    rc, _, err = run_cli(["compile", str(spec), "-o", str(out)])
    assert rc == 1 and "[E401]" in err and "--force" in err
    assert [p.name for p in out.iterdir()] == ["mine.txt"]
    # --force replaces only a checkpoint steerc wrote: not a directory of the user's
    rc, _, err = run_cli(["compile", str(spec), "-o", str(out), "--force"])
    assert rc == 1 and "[E423]" in err and "steerc-manifest.json" in err
    assert [p.name for p in out.iterdir()] == ["mine.txt"]
    (out / "mine.txt").unlink()
    assert run_cli(["compile", str(spec), "-o", str(out), "--force"])[0] == 0  # empty: replaced
    _complete(out)
    assert run_cli(["compile", str(spec), "-o", str(out), "--force"])[0] == 0  # a checkpoint
    _complete(out)
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("existing", [False, True])
def test_disk_full_mid_stream(base_model, tmp_path, monkeypatch, existing):
    """OSError(ENOSPC) after 4 KB of a shard: E610, the destination untouched, temp removed."""
    spec = write_spec(tmp_path / "s.steer", base_model, FIX / "sae_res", EXACT)
    out = tmp_path / "out"
    if existing:
        assert run_cli(["compile", str(spec), "-o", str(out)])[0] == 0
        before = {p.name: p.read_bytes() for p in out.iterdir()}
    # the writer uses positional I/O (os.pwrite, os.copy_file_range) on the output shards
    real = {name: getattr(os, name) for name in ("pwrite", "copy_file_range")}
    counts: dict[str, int] = {}

    def full(name):
        def call(*a):
            fd = a[0] if name == "pwrite" else a[1]
            path = os.readlink(f"/proc/self/fd/{fd}")
            if ".steerc-tmp-" in path and path.endswith(".safetensors"):
                counts[path] = counts.get(path, 0) + (len(a[1]) if name == "pwrite" else a[2])
                if counts[path] > 4096:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return real[name](*a)
        return call

    for name in real:
        monkeypatch.setattr(os, name, full(name))
    rc, _, err = run_cli(["compile", str(spec), "-o", str(out), "--force"])
    for name, fn in real.items():
        monkeypatch.setattr(os, name, fn)
    assert rc == 1 and "[E610]" in err and "No space left on device" in err, err
    assert _leftovers(tmp_path) == []
    if existing:
        assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    else:
        assert not out.exists()


@pytest.mark.parametrize("sig, rc, says", [
    (signal.SIGINT, 130, "interrupted"),
    (signal.SIGTERM, 143, "terminated (SIGTERM)"),  # what CI runners send on a timeout
    (signal.SIGHUP, 129, "terminated (SIGHUP)"),    # a closed terminal
])
def test_signal_mid_write_leaves_nothing(big_model, tmp_path, sig, rc, says):
    spec = write_spec(tmp_path / "s.steer", big_model, FIX / "sae_res", EXACT)
    out = tmp_path / "out"
    proc = _spawn(spec, out, slow=tmp_path / "slow")
    _wait_for_write(proc, tmp_path, out)
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == rc, stderr
    assert says in stderr and "Traceback" not in stderr
    assert not out.exists()
    assert _leftovers(tmp_path) == []


def test_sigkill_mid_write_keeps_old_output_and_next_compile_cleans_up(big_model, tmp_path):
    spec = write_spec(tmp_path / "s.steer", big_model, FIX / "sae_res", EXACT)
    out = tmp_path / "out"
    out.mkdir()
    (out / "steerc-manifest.json").write_text('{"schema_version": 1, "compiler": {"name": "steerc"}}')
    (out / "old.txt").write_text("old")
    proc = _spawn(spec, out, "--force")
    _wait_for_write(proc, tmp_path, out)
    proc.kill()
    proc.communicate(timeout=60)
    assert sorted(p.name for p in out.iterdir()) == ["old.txt", "steerc-manifest.json"]  # untouched
    stale = _leftovers(tmp_path)
    assert stale and all(f"-tmp-{proc.pid}-" in s for s in stale)  # the killed compile's temp
    proc = _spawn(spec, out, "--force")
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr
    _complete(out)
    assert _leftovers(tmp_path) == []  # the dead compile's temp dir was removed


def test_two_compiles_racing_for_one_output(big_model, tmp_path):
    """Both finish; the output is one of the two checkpoints, whole (manifest hashes match)."""
    a = write_spec(tmp_path / "a.steer", big_model, FIX / "sae_res", EXACT)
    b = write_spec(tmp_path / "b.steer", big_model, FIX / "sae_res", "steer res2[1] by -2\nablate res2[3] everywhere\n")
    out = tmp_path / "out"
    procs = [_spawn(a, out, "--force"), _spawn(b, out, "--force")]
    for p in procs:
        _, stderr = p.communicate(timeout=300)
        assert p.returncode == 0, stderr
    manifest = _complete(out)
    assert manifest["spec"]["file"] in ("../a.steer", "../b.steer")  # relative to the checkpoint
    assert _leftovers(tmp_path) == []


def test_output_appearing_during_compile_is_not_replaced_without_force(tmp_path):
    """Another compile (or the user) creates the output while this one writes: without
    --force this one fails E401 at the end, its temp dir removed, their output untouched."""
    from steerc.files.outdir import atomic_dir
    from steerc.diagnostics import DiagnosticError

    out = tmp_path / "out"
    with pytest.raises(DiagnosticError) as e:
        with atomic_dir(out) as tmp:
            (tmp / "mine.txt").write_text("mine")
            out.mkdir()
            (out / "theirs.txt").write_text("theirs")
    assert e.value.diagnostics[0].code == "E401"
    assert [p.name for p in out.iterdir()] == ["theirs.txt"]
    assert _leftovers(tmp_path) == []
