"""Every file steerc writes (lock, `catalogue build -o`, `verify --json/--plot`, `fmt`) goes
through `steerc.files.write`: a symlink, a FIFO, a device or a directory at the path is
refused (E424) and left as it was, never followed, replaced or opened; an input is never
written over (E421); a failed write is a diagnostic (E420/E425), never a traceback; the
result is whole (temp file + fsync + rename) with the old file's permission bits, else
`0666 & ~umask`.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from steerc.diagnostics import DiagnosticError
from steerc.files.write import replaceable_mode, write_atomic
from tests.hostile.world import FIX, run_cli, write_spec


def _code(fn) -> str:
    with pytest.raises(DiagnosticError) as e:
        fn()
    return e.value.diagnostics[0].code


@pytest.fixture
def specials(tmp_path):
    """name -> path of each kind of thing that is not a regular file, and what it points at."""
    target = tmp_path / "precious.txt"
    target.write_text("precious")
    (tmp_path / "link").symlink_to(target)
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "dir").mkdir()
    return {"link": tmp_path / "link", "dangling": tmp_path / "dangling",
            "fifo": tmp_path / "fifo", "dir": tmp_path / "dir"}


def _unchanged(tmp_path, specials):
    assert (tmp_path / "precious.txt").read_text() == "precious"
    assert specials["link"].is_symlink() and specials["dangling"].is_symlink()
    assert not (tmp_path / "nowhere").exists()
    assert specials["fifo"].is_fifo() and specials["dir"].is_dir()
    assert not [p for p in tmp_path.iterdir() if ".steerc-tmp-" in p.name]


@pytest.mark.parametrize("kind", ["link", "dangling", "fifo", "dir"])
def test_atomic_write_refuses_what_is_not_a_regular_file(tmp_path, specials, kind):
    assert _code(lambda: write_atomic(specials[kind], "x")) == "E424"
    _unchanged(tmp_path, specials)


def test_a_device_node_is_refused():
    """/dev/null (as root, the old lock writer would have replaced it): the check that runs
    before any write refuses it."""
    assert _code(lambda: replaceable_mode(Path("/dev/null"))) == "E424"


def test_modes_are_kept_or_follow_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        write_atomic(tmp_path / "new.json", "{}")
        assert stat.S_IMODE((tmp_path / "new.json").stat().st_mode) == 0o640
        kept = tmp_path / "kept.lock"
        kept.write_text("old")
        kept.chmod(0o604)
        write_atomic(kept, "new")
        assert kept.read_text() == "new" and stat.S_IMODE(kept.stat().st_mode) == 0o604
    finally:
        os.umask(old)


def test_write_failures_are_diagnostics(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    assert _code(lambda: write_atomic(f / "below-a-file.json", "x")) == "E425"   # ENOTDIR
    assert _code(lambda: write_atomic(tmp_path / ("n" * 300), "x")) == "E420"    # ENAMETOOLONG
    assert _code(lambda: write_atomic("", "x")) == "E420"


@settings(max_examples=60, deadline=None)
@given(names=st.lists(st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="/\0"),
                               min_size=1, max_size=300).filter(lambda n: n not in (".", "..")),
                       min_size=1, max_size=3))
def test_any_path_is_written_or_a_diagnostic(tmp_path_factory, names):
    """Arbitrary names (long, unicode, spaces, leading dots): a file appears, or a
    DiagnosticError; never another exception, never a temp file left."""
    root = tmp_path_factory.mktemp("anyname")
    path = root.joinpath(*names)
    try:
        write_atomic(path, "data")
    except DiagnosticError as e:
        assert e.diagnostics[0].code in ("E420", "E421", "E422", "E424", "E425")
    else:
        assert Path(os.path.abspath(path)).read_text() == "data"
    assert not [p for p in root.rglob("*") if ".steerc-tmp-" in p.name]


# ---- through the CLI -----------------------------------------------------------------------

@pytest.fixture
def spec(tmp_path, base_model):
    return write_spec(tmp_path / "s.steer", base_model, FIX / "sae_res", "steer res2[1] by 4\n")


@pytest.mark.parametrize("kind", ["link", "dangling", "fifo", "dir"])
def test_lock_is_never_written_through_a_special_file(spec, tmp_path, specials, kind):
    rc, _, err = run_cli(["check", str(spec), "--write-lock", "--lock", str(specials[kind])])
    assert rc == 1 and "[E424]" in err
    _unchanged(tmp_path, specials)


def test_lock_is_never_written_over_an_input(spec, base_model):
    before = spec.read_bytes()
    for lock in (spec, FIX / "sae_res" / "cfg.json", base_model / "config.json"):
        rc, _, err = run_cli(["check", str(spec), "--write-lock", "--lock", str(lock)])
        assert rc == 1 and "[E421]" in err, err
    assert spec.read_bytes() == before


@pytest.mark.parametrize("kind", ["link", "dangling", "fifo", "dir"])
def test_catalogue_build_refuses_special_outputs(tmp_path, specials, kind):
    rc, _, err = run_cli(["catalogue", "build", str(FIX / "catalogue.json"), "-o", str(specials[kind]),
                          "--no-progress"])
    assert rc == 1 and "[E424]" in err
    _unchanged(tmp_path, specials)


def test_catalogue_build_never_overwrites_its_source(tmp_path):
    src = tmp_path / "cat.src"  # any name: the JSON is read whatever the suffix
    src.write_bytes((FIX / "catalogue.json").read_bytes())
    for out in (src, tmp_path):
        rc, _, err = run_cli(["catalogue", "build", str(src), "-o", str(out), "--no-progress"])
        assert rc == 1 and "[E421]" in err, err
    assert src.read_bytes() == (FIX / "catalogue.json").read_bytes()
    rc, _, err = run_cli(["catalogue", "build", str(src), "-o", str(tmp_path / "c.sqlite"), "--no-progress"])
    assert rc == 0, err
    assert stat.S_IMODE((tmp_path / "c.sqlite").stat().st_mode) == 0o666 & ~_umask()


def _umask() -> int:
    old = os.umask(0)
    os.umask(old)
    return old


def test_verify_report_paths_fail_before_the_work(tmp_path, specials):
    """`--json` to an unwritable place, a special file, an input, or a 300-character name:
    a diagnostic in a second (the checks run before the checkpoint is even read)."""
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "config.json").write_text("{}")
    f = tmp_path / "file"
    f.write_text("x")
    cases = [(str(f / "report.json"), "E425"), (str(specials["fifo"]), "E424"),
             (str(specials["link"]), "E424"), (str(ckpt / "config.json"), "E421"),
             (str(tmp_path / ("r" * 300 + ".json")), "E420"), ("", "E420")]
    for path, code in cases:
        for flag in ("--json", "--plot"):
            rc, _, err = run_cli(["verify", str(ckpt), flag, path])
            assert rc == 1 and f"[{code}]" in err, (flag, path, err)
    assert (ckpt / "config.json").read_text() == "{}"
    _unchanged(tmp_path, specials)


def test_fmt_keeps_mode_and_refuses_a_symlinked_spec(tmp_path):
    s = tmp_path / "a.steer"
    s.write_text('model   "m"\n')
    s.chmod(0o600)
    rc, _, err = run_cli(["fmt", str(s)])
    assert rc == 0, err
    assert s.read_text() == 'model "m"\n' and stat.S_IMODE(s.stat().st_mode) == 0o600
    real = tmp_path / "real.steer"
    real.write_text('model   "m"\n')
    link = tmp_path / "link.steer"
    link.symlink_to(real)
    rc, _, err = run_cli(["fmt", str(link)])
    assert rc == 1 and "[E424]" in err
    assert link.is_symlink() and real.read_text() == 'model   "m"\n'


def test_verify_report_with_a_non_finite_number_is_a_diagnostic(monkeypatch, tmp_path):
    """A NaN in the report (a KL of nan) is E426, not `NaN` in a file CI parses as JSON."""
    from steerc.commands import verify as cmd

    class R:
        ok = True

    monkeypatch.setattr("steerc.api.verify", lambda *a, **k: R())
    monkeypatch.setattr("steerc.verify.render_text", lambda r: "report")
    monkeypatch.setattr("steerc.verify.to_json", lambda r: {"kl": {"mean": float("nan")}})
    out = tmp_path / "r.json"
    R.base_model = str(tmp_path / "base")
    rc, _, err = run_cli(["verify", str(tmp_path / "ckpt"), "--json", str(out)])
    assert rc == 1 and "[E426]" in err and "$.kl.mean" in err and not out.exists()
    assert cmd  # the command calls steerc.api.verify, patched above
