"""Hostile spec files through parse + resolve (what `steerc check` runs): a fast hypothesis
sample of the generators bench/fuzz_campaign.py runs 100k times, plus the campaign's finds
as regression tests. The only allowed outcomes: a Program, or a DiagnosticError that renders."""

from __future__ import annotations

import importlib.util
import signal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("fuzz_campaign", ROOT / "bench" / "fuzz_campaign.py")
fc = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fc)

LIMIT = 5.0  # seconds per input


@pytest.fixture(scope="module")
def harness():
    """(spec path in a scratch dir beside the fixtures, memoized environment), warmed up."""
    old = signal.signal(signal.SIGALRM, fc._alarm)
    work = fc.scratch_dir()
    env = fc.MemoEnvironment()
    assert fc.run_one(work / "a.steer", fc.VALID.encode(), env, 600.0)[0] == "ok"
    yield work / "a.steer", env
    signal.signal(signal.SIGALRM, old)


def _check(harness, data: bytes) -> str:
    path, env = harness
    outcome, sig, dt = fc.run_one(path, data, env, LIMIT)
    assert outcome in ("ok", "diag"), (outcome, sig, data[:300])
    return outcome


SETTINGS = settings(max_examples=300, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@SETTINGS
@given(st.binary(max_size=300))
def test_random_bytes(harness, data):
    _check(harness, data)


@SETTINGS
@given(st.lists(st.tuples(st.integers(0, len(fc.VALID)), st.integers(0, 30),
                          st.sampled_from(fc.INTERESTING)), min_size=1, max_size=6))
def test_mutated_valid_spec(harness, edits):
    data = fc.VALID.encode()
    for pos, cut, insert in edits:
        data = data[:pos] + insert + data[pos + cut:]
    _check(harness, data)


@SETTINGS
@given(st.randoms(use_true_random=False))
def test_grammar_aware_generation(harness, r):
    _check(harness, fc.gen_grammar(r))


@SETTINGS
@given(st.text(alphabet=st.characters(blacklist_categories=()), max_size=120))
def test_any_unicode_text_including_lone_surrogates(harness, text):
    _check(harness, ('model "m"\nsae res2 = "s"\nsteer res2["' + text + '"] by 1\n')
           .encode("utf-8", "surrogatepass"))


# ---- inputs the campaign found (each crashed before its fix) -----------------------------


def test_unclosed_deep_when_nesting_is_a_diagnostic(harness):
    """RecursionError: the parser deep-copied its value stack to compute expected tokens."""
    nested = "when res2[1] > 0 {\n" * 1000 + "suppress res2[2]\n" + "}\n" * 999
    assert _check(harness, ('model "m"\nsae res2 = "s"\n' + nested).encode()) == "diag"


@pytest.mark.parametrize("stmt", ['enforce json schema "\\u0000"',
                                  'expect "p" matches schema "a\\u0000b"',
                                  'sae res2 = "\\u0000"',
                                  'sae res2 = "s\\u0000"\nsae res2 = "s"'])
def test_nul_in_a_path_is_a_diagnostic(harness, stmt):
    """ValueError 'embedded null byte' from open() in the schema loader, and from realpath
    when an SAE alias is declared twice."""
    path, env = harness
    path.write_text(f'model "m"\nsae res2 = "s"\ncatalogue "c.json"\n{stmt}\n', encoding="utf-8")
    from steerc.compiler.load import load
    from steerc.diagnostics import DiagnosticError

    with pytest.raises(DiagnosticError) as e:
        load(path, env=env)
    assert {"E207", "E208"} & {d.code for d in e.value.diagnostics}


@pytest.mark.parametrize("text", ["steer res2[1] by 1e400", "steer res2[1] by 9999999999999999999999",
                                  "suppress res2[9999999999999999999999]", "x" * 200_000,
                                  "suppress res2[1]\r\nsteer res2[2] by 1\r\n", "steer res2[1] by -0"])
def test_named_hostile_values(harness, text):
    _check(harness, ('model "m"\nsae res2 = "s"\n' + text).encode())


@pytest.mark.skipif(not __import__("os").path.exists("/dev/zero"), reason="needs /dev/zero")
def test_schema_that_never_ends_is_refused(harness):
    """`enforce json schema "/dev/zero"` read forever before the fix."""
    path, env = harness
    path.write_text('model "m"\nsae res2 = "s"\ncatalogue "c.json"\nenforce json schema "/dev/zero"\n')
    from steerc.compiler.load import load
    from steerc.diagnostics import DiagnosticError

    with pytest.raises(DiagnosticError) as e:
        load(path, env=env)
    assert any(d.code == "E207" and "not a regular file" in d.message for d in e.value.diagnostics)
