"""Neuronpedia import: JSONL, gzip batches, the legacy array, feature and activation rows."""

import gzip
import json

import pytest

from steerc.catalogue import Catalogue, build_index, import_neuronpedia, validate_catalogue
from steerc.diagnostics import DiagnosticError


def expl(index, description, type_name="oai_token-act-pair", id_="c1", layer="6-res-jb"):
    return {"id": id_, "modelId": "gpt2-small", "layer": layer, "index": str(index), "authorId": "a",
            "description": description, "embedding": None, "typeName": type_name,
            "explanationModelName": "gpt-4o-mini", "umap_x": None, "umap_y": None}


def write_jsonl(path, rows, gz=False):
    data = "".join(json.dumps(r) + "\n" for r in rows).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


ROWS = [
    expl(1234, " email  addresses\n", id_="b2"),
    expl(1234, "mentions of e-mail", type_name="np_max-act-logits", id_="z9"),
    expl(1234, "email addresses", type_name="np_max-act-logits", id_="a1"),
    expl(7, "JSON keys"),
    expl(9, "json keys"),  # same label as 7: disambiguated
    expl(20, ""),  # empty: ignored
]


def test_jsonl_choice_aliases_and_disambiguation(tmp_path):
    p = write_jsonl(tmp_path / "e.jsonl", ROWS)
    doc = import_neuronpedia([p], "res6", "blocks.6.hook_resid_pre", 24576)
    assert validate_catalogue(doc, "np") == []
    assert doc["saes"] == [{"id": "res6", "hook": "blocks.6.hook_resid_pre", "d_sae": 24576, "model": "gpt2-small"}]
    by_index = {f["index"]: f for f in doc["features"]}
    assert sorted(by_index) == [7, 9, 1234]
    # np_max-act-logits is preferred, then the lower id; the other texts become aliases.
    assert by_index[1234]["label"] == "email addresses"
    assert by_index[1234]["aliases"] == ["mentions of e-mail"]
    assert "gpt2-small/6-res-jb/1234" in by_index[1234]["description"]
    assert by_index[7]["label"] == "JSON keys" and by_index[9]["label"] == "json keys #9"


def test_alias_that_is_another_label_is_dropped(tmp_path):
    p = write_jsonl(tmp_path / "e.jsonl", ROWS + [expl(7, "Email Addresses", id_="zz"), expl(7, "object keys", id_="zy")])
    doc = import_neuronpedia([p], "res6", "h", 24576)
    assert [f["aliases"] for f in doc["features"] if f["index"] == 7] == [["object keys"]]
    assert validate_catalogue(doc, "np") == []


def test_choice_does_not_depend_on_row_order(tmp_path):
    a = import_neuronpedia([write_jsonl(tmp_path / "a.jsonl", ROWS)], "r", "h", 24576)
    b = import_neuronpedia([write_jsonl(tmp_path / "b.jsonl", ROWS[::-1])], "r", "h", 24576)
    assert a == b


def test_gz_batches_in_s3_layout_with_feature_and_activation_rows(tmp_path):
    root = tmp_path / "v1" / "gpt2-small" / "6-res-jb"
    # Batches are ordered by the index *string*, so they are not contiguous ranges.
    write_jsonl(root / "explanations" / "batch-0.jsonl.gz", [expl(10, "ten"), expl(100, "hundred")], gz=True)
    write_jsonl(root / "explanations" / "batch-1.jsonl.gz", [expl(2, "two")], gz=True)
    write_jsonl(root / "features" / "batch-0.jsonl.gz", [
        {"modelId": "gpt2-small", "layer": "6-res-jb", "index": "10", "maxActApprox": 4.5, "frac_nonzero": 0.002},
        {"modelId": "gpt2-small", "layer": "6-res-jb", "index": "2", "maxActApprox": -1, "frac_nonzero": 3},
    ], gz=True)
    write_jsonl(root / "activations" / "batch-0.jsonl.gz", [
        {"modelId": "gpt2-small", "layer": "6-res-jb", "index": "10", "tokens": ["a", " b"], "values": [0, 2], "maxValue": 2.0},
        {"modelId": "gpt2-small", "layer": "6-res-jb", "index": "10", "tokens": ["c"], "values": [3], "maxValue": 3.0},
    ], gz=True)
    doc = import_neuronpedia([root], "res6", "blocks.6.hook_resid_pre", 24576)
    f = {f["index"]: f for f in doc["features"]}
    assert sorted(f) == [2, 10, 100]
    assert (f[10]["max_activation"], f[10]["density"]) == (4.5, 0.002)
    assert f[10]["top_contexts"] == [{"text": "c", "activation": 3.0}, {"text": "a b", "activation": 2.0}]
    assert "max_activation" not in f[2] and "density" not in f[2]  # invalid stats dropped
    out = build_index(doc, tmp_path / "np.sqlite", progress=False)
    with Catalogue.open(out) as c:
        assert c.by_label("res6", "TEN")[0].max_activation == 4.5


def test_legacy_json_array(tmp_path):
    rows = [{"modelId": "gpt2-small", "layer": "8-res-jb", "index": "5", "description": "the word 'the'",
             "explanationModelName": "gpt-3.5-turbo", "typeName": "oai_token-act-pair"}]
    p = tmp_path / "gpt2-small_8-res-jb.json"
    p.write_text(json.dumps(rows))
    doc = import_neuronpedia([p], "res8", "blocks.8.hook_resid_pre", 24576)
    assert [(f["index"], f["label"]) for f in doc["features"]] == [(5, "the word 'the'")]
    gz = tmp_path / "legacy.json.gz"
    gz.write_bytes(gzip.compress(json.dumps(rows).encode()))
    assert import_neuronpedia([gz], "res8", "blocks.8.hook_resid_pre", 24576) == doc


def test_several_sources_need_a_choice(tmp_path):
    p = write_jsonl(tmp_path / "e.jsonl", [expl(1, "a"), expl(2, "b", layer="7-res-jb")])
    with pytest.raises(DiagnosticError) as e:
        import_neuronpedia([p], "r", "h", 100)
    assert e.value.diagnostics[0].code == "E122" and "gpt2-small/7-res-jb" in e.value.diagnostics[0].message
    doc = import_neuronpedia([p], "r", "h", 100, source="7-res-jb")
    assert [f["label"] for f in doc["features"]] == ["b"]


def test_bad_rows_are_diagnostics(tmp_path):
    p = write_jsonl(tmp_path / "e.jsonl", [expl(1, "a"), expl("x", "b"), expl(500, "c")])
    with pytest.raises(DiagnosticError) as e:
        import_neuronpedia([p], "r", "h", 100)
    assert [d.code for d in e.value.diagnostics] == ["E123", "E123"]
    assert "e.jsonl:2" in e.value.diagnostics[0].message
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"index": "1"}\n{oops\n')
    with pytest.raises(DiagnosticError) as e:
        import_neuronpedia([bad], "r", "h", 100)
    (d,) = e.value.diagnostics
    assert d.code == "E120" and d.span.line == 2
    with pytest.raises(DiagnosticError) as e:
        import_neuronpedia([tmp_path / "missing.jsonl"], "r", "h", 100)
    assert e.value.diagnostics[0].code == "E100"


def test_no_explanations(tmp_path):
    p = write_jsonl(tmp_path / "e.jsonl", [expl(1, "   ")])
    with pytest.raises(DiagnosticError) as e:
        import_neuronpedia([p], "r", "h", 100)
    assert e.value.diagnostics[0].code == "E124"
