"""`compile -o` never replaces, enters or contains an input, the working or home directory, `/`,
a non-directory or an empty path; `--force` replaces only a checkpoint steerc wrote.

Each named case of the review, then a hypothesis property over (which input) x (how the
output path reaches it: the path itself, an ancestor, a symlink to either, `.` from inside it,
odd spellings) x (--force or not): exit 1, an E4xx diagnostic, and every byte of the world
(model, SAE, catalogue, schema, specs) unchanged, no temp dir left behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from steerc.diagnostics import DiagnosticError
from steerc.files.outdir import check_output_dir
from tests.hostile.world import FIX, run_cli

RULES = 'steer res2[1] by 4\nexpect "hi" matches schema "schema.json"\n'


@pytest.fixture(scope="module")
def world(tmp_path_factory, base_model):
    """w/{model/, sae/, cat.json, schema.json, common.steer, s.steer, sub/}: a spec with
    every kind of input (it `use`s common.steer)."""
    w = tmp_path_factory.mktemp("guard") / "w"
    w.mkdir()
    shutil.copytree(base_model, w / "model")
    shutil.copytree(FIX / "sae_res", w / "sae")
    shutil.copyfile(FIX / "catalogue.json", w / "cat.json")
    (w / "schema.json").write_text('{"type": "object"}\n')
    (w / "common.steer").write_text(RULES)
    (w / "s.steer").write_text('model "model"\nsae res2 = "sae"\ncatalogue "cat.json"\n'
                               'use "common.steer"\n')
    (w / "sub").mkdir()
    return w


def snapshot(root: Path) -> dict[str, str]:
    """relative path -> sha256 of every file (and `dir` / `link -> target`) under root."""
    out = {}
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            p = Path(dirpath) / name
            rel = str(p.relative_to(root))
            if p.is_symlink():
                out[rel] = "link -> " + os.readlink(p)
            elif p.is_dir():
                out[rel] = "dir"
            else:
                out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@contextlib.contextmanager
def cwd(path: Path):
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def refused(world: Path, out: str, *extra: str, at: Path | None = None) -> str:
    """Compile w/s.steer to `out` from directory `at`: must exit 1 with an E4xx and leave
    the world byte-identical; returns stderr."""
    before = snapshot(world)
    with cwd(at or world):
        rc, _, err = run_cli(["compile", str(world / "s.steer"), "-o", out, "--no-progress", *extra])
    assert rc == 1, err
    assert any(f"[E{c}]" in err for c in ("401", "420", "421", "422", "423")), err
    assert snapshot(world) == before
    return err


@pytest.mark.parametrize("force", [False, True])
@pytest.mark.parametrize("target, code", [
    ("model", "E421"), ("sae", "E421"), ("cat.json", "E421"), ("schema.json", "E421"),
    ("common.steer", "E421"), ("s.steer", "E421"), ("model/config.json", "E421"),
    ("model/model.safetensors", "E421")])
def test_output_is_an_input(world, target, code, force):
    err = refused(world, str(world / target), *(["--force"] if force else []))
    assert f"[{code}]" in err and "never writes" in err


@pytest.mark.parametrize("force", [False, True])
def test_output_above_inputs_or_the_cwd(world, force):
    flags = ["--force"] if force else []
    assert "[E421]" in refused(world, str(world), *flags)          # holds every input
    assert "[E421]" in refused(world, str(world.parent), *flags)
    assert "[E422]" in refused(world, ".", *flags, at=world / "sub")  # the cwd
    assert "[E421]" in refused(world, "..", *flags, at=world / "sub")  # holds inputs and the cwd
    assert "[E421]" in refused(world, "/", *flags, at=world / "sub")
    (world / "sub" / "deeper").mkdir(exist_ok=True)
    assert "[E422]" in refused(world, "..", *flags, at=world / "sub" / "deeper")  # above the cwd


def test_empty_output_path_is_refused(world):
    """`-o ""`: an unset $OUT; before, it meant the working directory."""
    err = refused(world, "", "--force", at=world / "sub")
    assert "[E420]" in err and "empty" in err


def test_home_directory_is_refused(world, monkeypatch, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "notes.txt").write_text("mine")
    monkeypatch.setenv("HOME", str(home))
    assert "[E422]" in refused(world, str(home), "--force", at=world / "sub")
    assert "[E422]" in refused(world, str(tmp_path), "--force", at=world / "sub")
    assert (home / "notes.txt").read_text() == "mine"


def test_dev_null_and_other_non_directories(world, tmp_path):
    """`-o /dev/null --force` (as root it became a directory): refused without touching it.
    Checked through `check_output_dir`, which decides before anything is written."""
    with pytest.raises(DiagnosticError) as e:
        check_output_dir("/dev/null", force=True)
    assert e.value.diagnostics[0].code == "E423" and "not a directory" in e.value.diagnostics[0].message
    with pytest.raises(DiagnosticError) as e:
        check_output_dir("/dev/null", force=False)
    assert e.value.diagnostics[0].code == "E401"
    f = tmp_path / "file.bin"
    f.write_bytes(b"data")
    err = refused(world, str(f), "--force")
    assert "[E423]" in err and f.read_bytes() == b"data"
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    assert "[E423]" in refused(world, str(fifo), "--force")
    assert fifo.is_fifo()


def test_force_replaces_only_a_checkpoint_steerc_wrote(world, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    err = refused(world, str(mine), "--force")
    assert "[E423]" in err and (mine / "thesis.tex").read_text() == "years of work"
    # a forged manifest that is not a steerc manifest does not count either
    (mine / "steerc-manifest.json").write_text('{"hello": 1}')
    assert "[E423]" in refused(world, str(mine), "--force")
    out = tmp_path / "out"
    assert run_cli(["compile", str(world / "s.steer"), "-o", str(out), "--no-progress"])[0] == 0
    assert run_cli(["compile", str(world / "s.steer"), "-o", str(out), "--no-progress", "--force"])[0] == 0
    # a symlink to a checkpoint is not replaced (the link would go, the target stay)
    link = tmp_path / "link"
    link.symlink_to(out)
    assert "[E423]" in refused(world, str(link), "--force")
    assert link.is_symlink() and (out / "steerc-manifest.json").is_file()


def test_a_compiled_checkpoint_used_as_base_is_an_input(world, tmp_path):
    """Compiling on top of a checkpoint and writing back over it: refused even though it
    holds a steerc manifest."""
    out = tmp_path / "first"
    assert run_cli(["compile", str(world / "s.steer"), "-o", str(out), "--no-progress"])[0] == 0
    spec = tmp_path / "again.steer"
    spec.write_text(f'model "{out}"\nsae res2 = "{world / "sae"}"\nsteer res2[2] by 1\n')
    before = snapshot(out)
    rc, _, err = run_cli(["compile", str(spec), "-o", str(out), "--force", "--no-progress"])
    assert rc == 1 and "[E421]" in err and "base model" in err
    assert snapshot(out) == before


# ---- the property ------------------------------------------------------------------------

INPUTS = ["model", "sae", "cat.json", "schema.json", "common.steer", "s.steer",
          "model/model.safetensors"]


@st.composite
def hostile_outputs(draw):
    """(output path, cwd) reaching one input of the world, spelled some way."""
    target = draw(st.sampled_from(INPUTS))
    how = draw(st.sampled_from(["itself", "ancestor", "symlink", "symlink to ancestor",
                                "dot inside", "dotdot"]))
    spelling = draw(st.sampled_from(["absolute", "relative", "trailing slash", "dot segments"]))
    return target, how, spelling


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=hostile_outputs(), force=st.booleans())
def test_no_output_path_reaches_an_input(world, tmp_path_factory, case, force):
    target, how, spelling = case
    links = tmp_path_factory.mktemp("links")
    at = world / "sub"
    path = world / target
    if how == "ancestor":
        path = path.parent
    elif how in ("symlink", "symlink to ancestor"):
        dest = path if how == "symlink" else path.parent
        path = links / "l"
        path.symlink_to(dest)
    elif how in ("dot inside", "dotdot"):
        at = path if path.is_dir() else path.parent
        path = Path(".") if how == "dot inside" else Path("..")
    text = str(path)
    if spelling == "relative" and path.is_absolute():
        text = os.path.relpath(path, at)
    elif spelling == "trailing slash":
        text += "/"
    elif spelling == "dot segments" and path.is_absolute():
        text = str(path.parent / "." / "sub" / ".." / path.name)
    refused(world, text, *(["--force"] if force else []), at=at)
    assert not [p for p in world.rglob("*") if ".steerc-" in p.name]


def test_the_guard_recognises_the_compilers_manifest():
    """outdir keeps its own copy of the manifest's name (files/ imports nothing of the
    compiler): it must be the name the compiler writes."""
    from steerc.compiler.manifest import MANIFEST
    from steerc.files import outdir

    assert outdir.MANIFEST == MANIFEST
