"""Every ```steer block in docs/language.md parses, and the syntax-code table documents
every E0xx code the grammar package can emit."""

import re
from pathlib import Path

import pytest

from steerc.grammar.parser import parse

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "language.md").read_text(encoding="utf-8")
BLOCKS = re.findall(r"^```steer\n(.*?)^```", DOC, flags=re.S | re.M)


def test_there_are_examples():
    assert len(BLOCKS) >= 8


@pytest.mark.parametrize("i", range(len(BLOCKS)))
def test_doc_example_parses(i):
    assert parse(BLOCKS[i], f"language.md#{i}").statements


def test_every_syntax_code_is_documented():
    source = "".join(p.read_text() for p in (ROOT / "steerc" / "grammar").glob("*.py"))
    used = set(re.findall(r'"(E0\d\d)"', source))
    documented = set(re.findall(r"^\| (E0\d\d) \|", DOC, flags=re.M))
    assert used and used <= documented, used - documented
