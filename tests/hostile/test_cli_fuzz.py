"""Every subcommand's path arguments and numbers, fuzzed through the real CLI (in-process).

Paths come from a zoo built once in a temp dir: empty, `.`, `/`, a directory, a FIFO with
no writer, `/dev/zero`, `/dev/null`, symlinks (to a FIFO, a loop, dangling), missing, 5000
characters long, holding a NUL, not UTF-8, holding ESC/RLO, a junk file, an empty file.
Numbers: 0, negative, huge, 23 digits, NaN/inf spellings, fullwidth and Arabic-Indic digits.

For every example: the exit code is 0, 1 or 2; no "internal error" and no traceback; it
finishes within LIMIT seconds (a FIFO or /dev/zero read would hang or fill memory); nothing
is created outside the temp dirs (the repository and the fixtures are snapshotted). stdout
is strict UTF-8, as a real one is, so an undecodable file name reaching it is caught.

The default run is short (STEERC_FUZZ_EXAMPLES=12 per subcommand, well under a minute);
set STEERC_FUZZ_EXAMPLES=300 for a longer campaign.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from tests.hostile.world import FIX, ROOT, write_spec

EXAMPLES = int(os.environ.get("STEERC_FUZZ_EXAMPLES", "12"))
LIMIT = 60.0  # seconds per command; a hostile read that hangs never ends at all
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize=not os.environ.get("STEERC_FUZZ_RANDOM"),
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                           HealthCheck.data_too_large])

KINDS = ("empty", "dot", "root", "dir", "fifo", "dev_zero", "dev_null", "link_fifo", "link_loop", "dangling",
         "missing", "long", "nul", "non_utf8", "escapes", "junk", "empty_file")
NUMBERS = ("0", "-1", "-3", "1", "3", "1e400", "nan", "NaN", "inf", "-inf", "9" * 23, "１", "٣", "1_000",
           " 5", "", "0x10", "1.5", "+2", "18446744073709551616", "-0")
FORMATS = ("text", "json", "sarif", "github")


class _Hang(BaseException):
    """Raised by the alarm: a BaseException, so the CLI's backstop cannot swallow it."""


def _snapshot() -> set[str]:
    """Every path under the repository's source folders and the fixtures (not .venv)."""
    seen = {p.name for p in ROOT.iterdir()}
    for sub in ("steerc", "tests", "specs", "demo", "examples", "docs"):
        seen |= {str(p) for p in (ROOT / sub).rglob("*") if "__pycache__" not in p.parts}
    return seen


class World(dict):
    """The fixture's paths; a short repr, since hypothesis prints it with every failure."""

    def __repr__(self) -> str:
        return "<world>"


@pytest.fixture(scope="module")
def world(tmp_path_factory, base_model):
    """The path zoo, a valid spec, a catalogue and a compiled checkpoint."""
    from steerc.cli import main

    d = tmp_path_factory.mktemp("cli-fuzz")
    zoo = d / "zoo"
    zoo.mkdir()
    os.mkfifo(zoo / "fifo")
    (zoo / "link_fifo").symlink_to(zoo / "fifo")
    (zoo / "loop").symlink_to(zoo / "loop")
    (zoo / "dangling").symlink_to(zoo / "nowhere")
    (zoo / "junk").write_bytes(b'model "\x1b[2J\xe2\x80\xae" @@@ \x00 \xff\n' * 3)
    (zoo / "empty_file").write_bytes(b"")
    non_utf8 = os.fsdecode(bytes(zoo) + b"/\xff\xfe.steer")
    Path(non_utf8).write_bytes(b"suppress \xff\n")
    escapes = zoo / "\x1b[31mred\u202eevil.steer"
    escapes.write_text("suppress res2[\u202e1]\n", encoding="utf-8")
    paths = {"empty": "", "dot": ".", "root": "/", "dir": str(zoo), "fifo": str(zoo / "fifo"),
             "dev_zero": "/dev/zero", "dev_null": "/dev/null", "link_fifo": str(zoo / "link_fifo"),
             "link_loop": str(zoo / "loop"), "dangling": str(zoo / "dangling"), "missing": str(zoo / "missing"),
             "long": str(zoo / ("x" * 5000)), "nul": str(zoo / "a\0b"), "non_utf8": non_utf8,
             "escapes": str(escapes), "junk": str(zoo / "junk"), "empty_file": str(zoo / "empty_file")}
    spec = write_spec(d / "ok.steer", base_model, FIX / "sae_res", "steer res2[1] by 4\n")
    ckpt = d / "ckpt"
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        assert main(["compile", str(spec), "-o", str(ckpt), "--no-progress"]) == 0
    return World(paths=paths, spec=str(spec), ckpt=str(ckpt), catalogue=str(FIX / "catalogue.json"),
                 model=str(base_model), sae=str(FIX / "sae_res"), tmp=d)


def run_bounded(argv: list[str], cwd: Path) -> tuple[int, str]:
    """Run `steerc ARGV` in `cwd` with stdout as strict as a real one; (exit code, output)."""
    from steerc.cli import main

    out_b, err_b = io.BytesIO(), io.BytesIO()
    out = io.TextIOWrapper(out_b, encoding="utf-8", errors="strict", write_through=True)
    err = io.TextIOWrapper(err_b, encoding="utf-8", errors="backslashreplace", write_through=True)
    stdin = io.TextIOWrapper(io.BytesIO(b"suppress \xff\n"), encoding="utf-8")

    def alarm(signum, frame):
        raise _Hang()

    old = signal.signal(signal.SIGALRM, alarm)
    old_cwd, old_stdin = os.getcwd(), sys.stdin
    signal.setitimer(signal.ITIMER_REAL, LIMIT)
    try:
        os.chdir(cwd)
        sys.stdin = stdin
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = main(argv)
    except _Hang:
        pytest.fail(f"steerc {argv!r:.300} ran past {LIMIT} s")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        os.chdir(old_cwd)
        sys.stdin = old_stdin
    text = err_b.getvalue().decode("utf-8", "replace") + out_b.getvalue().decode("utf-8", "replace")
    return rc, text


def _expect_sane(argv: list[str], cwd: Path) -> None:
    rc, text = run_bounded(argv, cwd)
    assert rc in (0, 1, 2), (rc, argv, text[-1500:])
    assert "internal error" not in text and "Traceback" not in text, (argv, text[-1500:])


@pytest.fixture(scope="module")
def repo_untouched():
    before = _snapshot()
    yield
    assert _snapshot() - before == set(), "a fuzzed command created files in the repository"


def _paths(kinds=KINDS):
    return st.sampled_from(kinds)


FEATURE_REFS = ("res2[1]", "res2[-1]", "res2[99999999999]", "res2", "[1]", "res2[1", "nope[1]", "res2[١]", "")
numbers = st.one_of(st.sampled_from(NUMBERS), st.integers(-10**30, 10**30).map(str))


def _argv(world, draw, command: str) -> list[str]:
    P = lambda: world["paths"][draw(_paths())]  # noqa: E731
    fresh = str(world["tmp"] / "out" / f"o{draw(st.integers(0, 10**9))}")
    fmt = draw(st.sampled_from(((),) + tuple(("--format", f) for f in FORMATS + ("xml",))))
    spec, ckpt, cat = world["spec"], world["ckpt"], world["catalogue"]
    if command == "check":
        forms = [[P()], [spec, "--lock", P()], [spec, "--locked", "--lock", P()], [spec, "--catalogue", P()]]
    elif command == "explain":
        forms = [[P()], [spec, "--catalogue", P()]]
    elif command == "compile":
        out = draw(st.sampled_from((fresh, *(world["paths"][k] for k in ("dir", "fifo", "dev_null", "root", "dot")))))
        forms = [[P(), "-o", fresh], [spec, "-o", out, "--jobs", draw(numbers), "--no-progress"],
                 [spec, "-o", fresh, "--locked", "--lock", P(), "--no-progress"], [spec, "-o", fresh, "--catalogue", P()]]
    elif command == "verify":
        bad = world["paths"][draw(_paths(tuple(k for k in KINDS if k not in ("empty", "empty_file"))))]
        forms = [[P()], [ckpt, "--prompts", bad], [ckpt, "--neutral", bad],
                 [ckpt, "--prompts", bad, "--max-windows", draw(numbers), "--max-new-tokens", draw(numbers)]]
    elif command == "trace":
        fmt = ()
        forms = [["hello", "--spec", P()], ["hello", "--model", P(), "--sae", world["sae"]],
                 ["hello", "--model", world["model"], "--sae", P()], ["hello", "--spec", spec, "--catalogue", P()],
                 ["hello", "--spec", P(), "--top", draw(numbers)],
                 ["--feature", draw(st.sampled_from(FEATURE_REFS) | st.text(max_size=12)), "--spec", spec],
                 ["--feature", "res2[1]", "--spec", spec, "--neutral", P(), "--strength", draw(numbers)]]
    elif command == "catalogue":
        fmt = ()
        forms = [["catalogue", "check", P()], ["catalogue", "search", "email", "-c", P()],
                 ["catalogue", "search", "email", "-c", cat, "--limit", draw(numbers)],
                 ["catalogue", "show", "res", draw(numbers), "-c", cat], ["catalogue", "tags", "-c", P()],
                 ["catalogue", "build", P(), "-o", fresh + ".sqlite"],
                 ["catalogue", "build", P(), "-o", fresh + ".sqlite", "--from", "neuronpedia", "--sae", "s",
                  "--hook", "blocks.1.hook_resid_post", "--d-sae", draw(numbers)]]
        return draw(st.sampled_from(forms))
    else:  # fmt: "/" would walk the whole file system (legitimate, and ~20 s)
        Q = lambda: world["paths"][draw(_paths(tuple(k for k in KINDS if k != "root")))]  # noqa: E731
        forms = [[Q()], ["--check", Q()], ["--diff", Q()], ["-"]]
    return [command, *draw(st.sampled_from(forms)), *fmt]


@pytest.mark.parametrize("command", ["check", "explain", "compile", "verify", "trace", "catalogue", "fmt"])
@SETTINGS
@given(data=st.data())
def test_every_subcommand_survives_hostile_paths_and_numbers(world, repo_untouched, command, data):
    argv = _argv(world, data.draw, command)
    _expect_sane(argv, world["tmp"])


@pytest.mark.parametrize("kind", KINDS)
def test_each_hostile_path_as_a_spec(world, repo_untouched, kind):
    """Every zoo entry once, deterministically, for the commands that read a spec."""
    fmt = [["fmt", "--check", world["paths"][kind]]] if kind != "root" else []  # "/": see _argv
    for argv in (["check", world["paths"][kind]], *fmt,
                 ["check", world["spec"], "--lock", world["paths"][kind], "--format", "json"]):
        _expect_sane(argv, world["tmp"])
