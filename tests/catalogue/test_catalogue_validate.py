"""JSON catalogue validation: schema errors with JSON paths, and the rules beyond the schema."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from steerc.catalogue import Catalogue, catalogue_schema, validate_catalogue
from steerc.catalogue.validate import _validators, feature_is_plainly_valid
from steerc.diagnostics import DiagnosticError


def codes(diags):
    return [d.code for d in diags]


def test_base_catalogue_is_valid(doc):
    assert validate_catalogue(doc, "cat.json") == []


def test_schema_file_in_specs_is_the_one_used():
    from pathlib import Path

    spec = Path(__file__).parents[2] / "specs" / "schemas" / "catalogue.schema.json"
    assert json.loads(spec.read_text()) == catalogue_schema()
    assert catalogue_schema()["$schema"].endswith("2020-12/schema")


def test_schema_error_names_file_and_json_path(doc):
    doc["features"][2]["max_activation"] = -1
    diags = validate_catalogue(doc, "cat.json")
    assert [d.message for d in diags] == ["cat.json: $.features[2].max_activation: -1 is less than the minimum of 0"]
    assert codes(diags) == ["E102"]


@pytest.mark.parametrize(
    "edit, path",
    [
        (lambda d: d["features"][0].__setitem__("index", "12"), "$.features[0].index"),
        (lambda d: d["features"][1].__setitem__("density", 1.5), "$.features[1].density"),
        (lambda d: d["features"][1]["aliases"].append("  "), "$.features[1].aliases[1]"),
        (lambda d: d["features"][0]["top_contexts"][0].pop("activation"), "$.features[0].top_contexts[0]"),
        (lambda d: d["features"][3].__setitem__("colour", "red"), "$.features[3]"),
        (lambda d: d["saes"][1].pop("hook"), "$.saes[1]"),
        (lambda d: d["saes"][0].__setitem__("d_sae", 0), "$.saes[0].d_sae"),
        (lambda d: d.__setitem__("features", {}), "$.features"),
    ],
)
def test_schema_errors_point_at_the_problem(doc, edit, path):
    edit(doc)
    diags = validate_catalogue(doc, "c.json")
    assert diags and all(d.code == "E102" for d in diags)
    assert diags[0].message.startswith(f"c.json: {path}: ")


def test_wrong_version_is_its_own_error(doc):
    doc["version"] = 2
    (d,) = validate_catalogue(doc, "c.json")
    assert d.code == "E103" and "$.version" in d.message and "version 1" in d.hint


def test_duplicate_feature(doc):
    doc["features"].append({"sae": "res2", "index": 12, "label": "something else"})
    (d,) = validate_catalogue(doc, "c.json")
    assert d.code == "E104"
    assert d.message == "c.json: $.features[6]: duplicate feature res2[12] (first at $.features[0])"


def test_label_collision_is_case_insensitive(doc):
    doc["features"].append({"sae": "res2", "index": 99, "label": "JSON  Key"})
    (d,) = validate_catalogue(doc, "c.json")
    assert d.code == "E105" and "$.features[6].label" in d.message and "res2[12]" in d.message


def test_alias_colliding_with_another_label(doc):
    doc["features"][3]["aliases"] = ["Email Address"]
    (d,) = validate_catalogue(doc, "c.json")
    assert d.code == "E105" and "$.features[3].aliases[0]" in d.message and "res2[3]" in d.message


def test_shared_alias_and_same_label_in_other_sae_are_fine(doc):
    # "object key" is an alias of two features; "json key" labels a feature in res2 and in res3.
    assert validate_catalogue(doc, "c.json") == []


def test_undeclared_sae_and_range(doc):
    doc["features"].append({"sae": "res4", "index": 1, "label": "x"})
    doc["features"].append({"sae": "res3", "index": 512, "label": "y"})
    diags = validate_catalogue(doc, "c.json")
    assert codes(diags) == ["E106", "E107"]
    assert "$.features[6].sae" in diags[0].message and diags[0].hint.startswith("did you mean 'res")
    assert "$.features[7].index" in diags[1].message and "512" in diags[1].message


def test_duplicate_sae_id(doc):
    doc["saes"].append(dict(doc["saes"][0]))
    assert codes(validate_catalogue(doc, "c.json")) == ["E108"]


def test_many_errors_are_capped(doc):
    doc["features"] = [{"sae": "res2", "index": i, "label": 5} for i in range(500)]
    diags = validate_catalogue(doc, "c.json")
    assert len(diags) == 51 and diags[-1].code == "E109" and "450 more" in diags[-1].message


def test_neuronpedia_array_gets_a_hint():
    diags = validate_catalogue([{"modelId": "gpt2-small", "layer": "6-res-jb", "index": "1", "description": "x"}], "np.json")
    assert diags[0].hint and "--from neuronpedia" in diags[0].hint


def test_invalid_json_has_line_and_column(write_json):
    p = write_json('{"version": 1,\n  "saes": [}\n')
    with pytest.raises(DiagnosticError) as e:
        Catalogue.open(p)
    (d,) = e.value.diagnostics
    assert d.code == "E101" and d.span.file == str(p) and (d.span.line, d.span.col) == (2, 12)


def test_nan_is_not_json(write_json, doc):
    doc["features"][0]["max_activation"] = float("nan")
    p = write_json(json.dumps(doc))
    with pytest.raises(DiagnosticError) as e:
        Catalogue.open(p)
    assert e.value.diagnostics[0].code == "E101" and "NaN" in e.value.diagnostics[0].message


def test_open_reports_every_problem(write_json, doc):
    doc["features"][0]["density"] = -0.5
    doc["features"][1]["label"] = 7
    with pytest.raises(DiagnosticError) as e:
        Catalogue.open(write_json(doc))
    msgs = [d.message for d in e.value.diagnostics]
    assert any("$.features[0].density" in m for m in msgs) and any("$.features[1].label" in m for m in msgs)


names = st.one_of(st.text(max_size=5), st.sampled_from(["x", " ", "a b", "\n", "\u00a0", "\u2003x", "\x1c", "\u200b"]), st.integers(), st.none())
numbers = st.one_of(st.integers(-3, 3), st.floats(allow_nan=False), st.booleans(), st.none(), st.text(max_size=2))
features = st.fixed_dictionaries(
    {"sae": st.one_of(st.sampled_from(["res2", "r-3.x", "2bad", ""]), numbers),
     "index": numbers, "label": names},
    optional={"aliases": st.one_of(st.lists(names, max_size=3), names),
              "description": st.one_of(st.text(max_size=3), numbers),
              "tags": st.one_of(st.lists(st.sampled_from(["a:b", "a b", "", "x"]), max_size=3), names),
              "max_activation": numbers, "density": numbers,
              "top_contexts": st.lists(st.one_of(
                  st.fixed_dictionaries({"text": names, "activation": numbers}),
                  st.dictionaries(st.sampled_from(["text", "activation", "z"]), numbers, max_size=3)), max_size=2),
              "extra": numbers})


@settings(max_examples=150, deadline=None)
@given(features)
def test_fast_check_accepts_only_what_the_schema_accepts(f):
    _, feature_validator = _validators()
    if feature_is_plainly_valid(f):
        assert feature_validator.is_valid(f)
