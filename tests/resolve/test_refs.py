"""Feature references and sets: index, label, alias, search, tag and search sets."""

from steerc.compiler.ir import FeatureId, Op
from steerc.compiler.load import load, load_program

from conftest import FIX, HEADER, HEADER2, codes, errors


def feats(program):
    return [(iv.feature.sae, iv.feature.index) for iv in program.interventions]


def test_index_label_alias_search(spec):
    p = load_program(spec('suppress res2[9]\nsuppress res2["json key"]\nsuppress res2["EMAIL"]\n'
                          'suppress res2[search "card game"]\n'))
    assert feats(p) == [("res2", 9), ("res2", 1), ("res2", 0), ("res2", 11)]
    assert p.interventions[1].feature == FeatureId("res2", 1, "json key")
    assert all(iv.op == Op.SET and iv.value == 0.0 for iv in p.interventions)
    assert all(iv.points == ("blocks.1.hook_resid_post",) for iv in p.interventions)


def test_index_out_of_range_and_unknown_alias(spec):
    d = errors(spec('suppress res2[64]\nsuppress res3[1]\n'))
    assert [x.code for x in d] == ["E202", "E201"]
    assert d[0].span.line == 4 and "0..63" in d[0].hint
    assert "res2" in d[1].hint


def test_unknown_label_suggests(spec):
    (d,) = errors(spec('suppress res2["json kye"]\n'))
    assert d.code == "E203" and "json key" in d.hint


def test_search_zero_and_many(spec):
    d = errors(spec('suppress res2[search "zebra"]\nsuppress res2[search "bridge"]\n'))
    assert [x.code for x in d] == ["E204", "E205"]
    assert 'res2[10] "bridge engineering"' in d[1].hint and 'res2[11]' in d[1].hint


def test_shared_alias_is_ambiguous(spec):
    (d,) = errors(spec('suppress res2["twin"]\n'))
    assert d.code == "E205" and "res2[14]" in d.hint and "res2[15]" in d.hint


def test_tag_set_limit_and_empty(spec):
    p = load_program(spec('suppress features tagged "entity:person"\n'))
    assert feats(p) == [("res2", 8), ("res2", 13)]
    p = load_program(spec('suppress features tagged "entity:person" limit 1\n'))
    assert feats(p) == [("res2", 8)]
    (d,) = errors(spec('suppress features tagged "entity:nobody"\n'))
    assert d.code == "E206"


def test_sets_span_all_saes_unless_in(spec):
    p = load_program(spec('suppress features tagged "entity:contact"\n', HEADER2))
    assert feats(p) == [("mlp", 0), ("res2", 0)] or feats(p) == [("res2", 0), ("mlp", 0)]
    hooks = {iv.feature.sae: iv.points for iv in p.interventions}
    assert hooks["mlp"] == ("blocks.0.hook_mlp_out",)
    p = load_program(spec('suppress features tagged "entity:contact" in mlp\n', HEADER2))
    assert feats(p) == [("mlp", 0)]


def test_search_set(spec):
    p = load_program(spec('suppress features matching "bridge" limit 5\n'))
    assert sorted(feats(p)) == [("res2", 10), ("res2", 11)]
    p = load_program(spec('suppress features matching "bridge" limit 1\n'))
    assert len(p.interventions) == 1


def test_labels_need_a_catalogue(spec):
    header = f'model "{FIX / "model"}"\nsae res2 = "{FIX / "sae_res"}"\n'
    (d,) = errors(spec('suppress res2["email"]\n', header))
    assert d.code == "E211"
    p = load_program(spec('suppress res2[3]\n', header))  # index refs need none
    assert p.interventions[0].feature == FeatureId("res2", 3, None)


def test_catalogue_override(spec, tmp_path):
    import json
    doc = json.loads((FIX / "catalogue.json").read_text())
    for f in doc["features"]:
        if f["label"] == "email address":
            f["index"], f["label"] = 40, "email address"
    alt = tmp_path / "alt.json"
    alt.write_text(json.dumps(doc))
    p = load_program(spec('suppress res2["email"]\n'), catalogue_override=str(alt))
    assert feats(p) == [("res2", 40)]
    assert p.catalogue == str(alt)


def test_catalogue_with_other_sha_is_rejected(spec, tmp_path):
    import json
    doc = json.loads((FIX / "catalogue.json").read_text())
    doc["saes"][0]["sha256"] = "0" * 64
    (tmp_path / "c.json").write_text(json.dumps(doc))
    header = f'model "{FIX / "model"}"\nsae res2 = "{FIX / "sae_res"}"\ncatalogue "c.json"\n'
    d = errors(spec('suppress res2[1]\n', header))
    assert d[0].code == "E212" and "different SAE" in d[0].message


def test_sae_matched_by_hook_and_size_when_no_sha(spec):
    p = load_program(spec('suppress mlp["python keyword"]\n', HEADER2))
    assert feats(p) == [("mlp", 2)]


def test_missing_files_point_at_the_string(spec):
    d = errors(spec('suppress res2[1]\n', 'model "./nope"\nsae res2 = "nope/sae"\ncatalogue "c.json"\n'))
    assert [x.code for x in d] == ["E207", "E207", "E207"]
    assert d[1].span.col == 12 and "relative to the spec" in d[1].hint


def test_no_model(spec):
    (d,) = errors(spec('suppress res2[1]\n', HEADER.split("\n", 1)[1]))
    assert d.code == "E200"


def test_unused_sae_warns(spec):
    assert codes(spec('suppress res2[1]\n', HEADER2)) == ["W207"]


def test_fixture_catalogue_records_the_fixture_sae_hash():
    import json
    from steerc.saes import load_sae
    recorded = json.loads((FIX / "catalogue.json").read_text())["saes"][0]["sha256"]
    assert recorded == load_sae(FIX / "sae_res").sha256(), (
        "SAE.sha256 changed: rerun tests/fixtures/make_fixtures.py, then UPDATE_GOLDEN=1")
