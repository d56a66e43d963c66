"""Golden syntax diagnostics: tests/golden/syntax/NAME.steer -> NAME.out, the exact
`render_all` output. Paths are relative (the test runs in the golden folder) so the files
are machine-independent. Regenerate with UPDATE_GOLDEN=1 and review the diff."""

import os
from pathlib import Path

import pytest

from steerc.diagnostics import DiagnosticError, render_all
from steerc.grammar.parser import parse_file

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "syntax"
CASES = sorted(p.stem for p in GOLDEN.glob("*.steer"))


def render(name: str) -> str:
    try:
        parse_file(f"{name}.steer")
    except DiagnosticError as e:
        return render_all(e.diagnostics) + "\n"
    raise AssertionError(f"{name}.steer parsed without errors")


def test_enough_cases():
    codes = {name.split("_")[0] for name in CASES}
    assert len(CASES) >= 25 and len(codes) >= 20


@pytest.mark.parametrize("name", CASES)
def test_golden(name, monkeypatch):
    monkeypatch.chdir(GOLDEN)
    got = render(name)
    out = GOLDEN / f"{name}.out"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        out.write_text(got, encoding="utf-8")
    assert got == out.read_text(encoding="utf-8")
