"""Which schemas the guard enforces: clear E47x diagnostics for the rest."""

import json

import pytest

from steerc.diagnostics import DiagnosticError, Span
from steerc.guard import UNENFORCED_KEYWORDS, GuardFactory, check_schema_supported
from tests.guard.conftest import SCHEMA

SPAN = Span("specs/x.steer", 3, 1, 19)


def test_supported_schema_has_no_problems():
    assert check_schema_supported(SCHEMA) == []
    assert check_schema_supported(json.loads(SCHEMA)) == []


@pytest.mark.parametrize("keyword, sub", [
    ("uniqueItems", {"type": "array", "uniqueItems": True}),
    ("if", {"type": "object", "if": {"required": ["a"]}, "then": {"required": ["b"]}}),
    ("dependentRequired", {"type": "object", "dependentRequired": {"a": ["b"]}}),
])
def test_unenforced_keyword_is_an_error_with_its_path(keyword, sub):
    schema = {"type": "object", "properties": {"x": sub}}
    [d, *_] = check_schema_supported(schema, SPAN)
    assert d.code == "E471" and d.is_error and d.span == SPAN
    assert f"'{keyword}'" in d.message and "#/properties/x" in d.message and d.hint


@pytest.mark.parametrize("keyword", ["uniqueItems", "contains", "propertyNames", "dependentRequired"])
def test_unenforced_list_matches_xgrammar(keyword):
    # The list is probed, not guessed: xgrammar emits the same grammar with and without it.
    import xgrammar as xgr

    assert keyword in UNENFORCED_KEYWORDS
    extra = {"uniqueItems": True, "contains": {"const": 1}, "propertyNames": {"maxLength": 1},
             "dependentRequired": {"a": ["b"]}}[keyword]
    if keyword in ("uniqueItems", "contains"):
        base, enforced = {"type": "array", "items": {"type": "integer"}}, {"minItems": 2}
    else:
        base = {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "integer"}}}
        enforced = {"required": ["a"]}
    g = lambda s: str(xgr.Grammar.from_json_schema(json.dumps(s)))  # noqa: E731
    assert g({**base, keyword: extra}) == g(base)
    assert g({**base, **enforced}) != g(base)  # the probe can tell an enforced keyword


def test_library_error_is_translated():
    [d] = check_schema_supported({"$ref": "#/$defs/missing"}, SPAN)
    assert d.code == "E472" and "cannot compile" in d.message
    assert ".cc:" not in d.message and "/project/" not in d.message


def test_approximation_warning_becomes_an_error():
    overlapping = {"oneOf": [{"type": "integer"}, {"type": "number"}]}
    [d] = check_schema_supported(overlapping)
    assert d.code == "E471" and "oneOf" in d.message
    disjoint = {"oneOf": [{"type": "string"}, {"type": "integer"}]}
    assert check_schema_supported(disjoint) == []


@pytest.mark.parametrize("text, fragment", [
    ("{not json", "not valid JSON"),
    ('{"type": 12}', "invalid JSON Schema"),
    ("[1, 2]", "must be an object"),
])
def test_bad_schema_text(text, fragment):
    [d] = check_schema_supported(text)
    assert d.code == "E470" and fragment in d.message


def test_external_ref_is_refused():
    [d] = check_schema_supported({"$ref": "https://example.com/s.json"})
    assert d.code == "E471" and "external $ref" in d.message


def test_factory_raises_diagnostics(tok):
    with pytest.raises(DiagnosticError) as e:
        GuardFactory(tok, json.dumps({"type": "array", "uniqueItems": True}), vocab_size=100)
    assert e.value.diagnostics[0].code == "E471"
