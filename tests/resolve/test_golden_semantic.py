"""Golden semantic diagnostics: tests/golden/semantic/NAME.steer -> NAME.out.

NAME.out is exactly what `steerc check NAME.steer` prints (stderr then stdout), run from
that folder so paths stay relative. Regenerate with UPDATE_GOLDEN=1 and review the diff.
Files under inc/ are included by cases, not cases themselves.
"""

import os
import re
from pathlib import Path

import pytest

from steerc.cli import main

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "semantic"
CASES = sorted(p.stem for p in GOLDEN.glob("*.steer"))


def run_case(name: str, capsys) -> tuple[int, str]:
    rc = main(["check", f"{name}.steer"])
    out = capsys.readouterr()
    return rc, out.err + out.out


@pytest.mark.parametrize("name", CASES)
def test_golden(name, capsys, monkeypatch):
    monkeypatch.chdir(GOLDEN)
    rc, text = run_case(name, capsys)
    expected = GOLDEN / f"{name}.out"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        expected.write_text(text, encoding="utf-8")
    assert text == expected.read_text(encoding="utf-8")
    # the case's name says which code it is about, and whether it must fail
    m = re.match(r"([ew]\d{3})_", name)
    if m:
        assert f"[{m.group(1).upper()}]" in text
        assert rc == (1 if m.group(1)[0] == "e" else 0)


def test_at_least_twenty_distinct_codes():
    codes = set()
    for p in GOLDEN.glob("*.out"):
        codes.update(re.findall(r"(?:error|warning)\[([EW]2\d\d)\]", p.read_text()))
    assert len(codes) >= 20, sorted(codes)
