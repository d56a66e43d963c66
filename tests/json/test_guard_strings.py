"""JSON strings must not hold raw control characters (RFC 8259; `json.loads` rejects them).

xgrammar 0.2.8 gets this right for a plain `{"type": "string"}`, but its rule for a string
with `minLength`/`maxLength` admits raw tabs and other control characters, so the guard
can emit output that strict parsers refuse (seen in bench/json_enforce_bench.py). The xfail
turns into a failure (strict) once the guard or xgrammar closes the hole.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

xgr = pytest.importorskip("xgrammar")

DEMO = Path(__file__).resolve().parents[2] / "demo" / "model"
pytestmark = pytest.mark.skipif(not (DEMO / "tokenizer.json").exists(), reason="demo tokenizer absent")


def accepts(schema: dict, text: str) -> bool:
    from transformers import AutoTokenizer

    from steerc.guard import shipped_generate as tpl

    tok = AutoTokenizer.from_pretrained(DEMO)
    grammar = tpl.compile_grammar(tok, json.dumps(schema), eos_token_ids=[tok.eos_token_id])
    return xgr.GrammarMatcher(grammar).accept_string(text)


STRING = {"type": "object", "properties": {"t": {"type": "string"}}, "required": ["t"]}
BOUNDED = {"type": "object", "properties": {"t": {"type": "string", "maxLength": 40}}, "required": ["t"]}


@pytest.mark.parametrize("ch", ["\t", "\n", "\x01"])
def test_plain_string_refuses_raw_control_chars(ch):
    assert accepts(STRING, '{"t": "ab"}')
    assert not accepts(STRING, '{"t": "a' + ch + 'b"}')


@pytest.mark.xfail(strict=True, reason="xgrammar 0.2.8: maxLength strings admit raw control chars")
def test_bounded_string_refuses_raw_tab():
    assert accepts(BOUNDED, '{"t": "ab"}')
    assert not accepts(BOUNDED, '{"t": "a\tb"}')


def test_length_bounded_strings_are_refused_at_check_time():
    from steerc.guard import check_schema_supported

    diags = check_schema_supported(json.dumps(BOUNDED))
    assert [d.code for d in diags] == ["E471"]
    assert "#/properties/t" in diags[0].message and "minLength/maxLength" in diags[0].hint
    assert check_schema_supported(json.dumps(STRING)) == []
