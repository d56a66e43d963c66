"""Catalogue.open and the lookups: JSON and .sqlite sources, search, labels, tags, suggest, failures."""

import hashlib
import json
import sqlite3

import pytest

from steerc.catalogue import Catalogue, CatalogueSae, FeatureInfo, build_index
from steerc.catalogue import store as store_mod
from steerc.diagnostics import DiagnosticError


@pytest.fixture(params=["json", "sqlite", "like"])
def cat(request, doc, write_json, tmp_path):
    """The base catalogue opened from JSON, from a built index, and from an index without FTS5."""
    src = write_json(doc)
    if request.param == "json":
        c = Catalogue.open(src)
    else:
        out = build_index(src, tmp_path / "cat.sqlite", progress=False, fts=request.param == "sqlite")
        c = Catalogue.open(out)
    yield c
    c.close()


def refs(found):
    return [f.ref for f in found]


def test_saes_and_counts(cat):
    assert cat.saes() == [CatalogueSae("res2", "blocks.2.hook_resid_post", 2048, None, "demo"),
                          CatalogueSae("res3", "blocks.3.hook_resid_post", 512, None, None)]
    assert (cat.n_features("res2"), cat.n_features("res3"), cat.n_features("nope")) == (5, 1, 0)


def test_get_round_trips_every_field(cat):
    assert cat.get("res2", 12) == FeatureInfo(
        "res2", 12, "json key", ("json keys", "object key"), "Keys inside JSON objects", ("format:json",),
        3.2, 0.013, (('{"name": 1}', 3.1),))
    assert cat.get("res2", 13) is None and cat.get("res9", 12) is None
    assert cat.get("res2", 8).description == "" and cat.get("res2", 8).max_activation is None


def test_sha256_is_the_source_file_hash(cat, tmp_path):
    assert cat.sha256 == hashlib.sha256((tmp_path / "cat.json").read_bytes()).hexdigest()


def test_by_label_is_case_and_space_insensitive(cat):
    assert refs(cat.by_label("res2", "JSON   Key")) == ["res2[12]"]
    assert refs(cat.by_label("res2", "E-MAIL")) == ["res2[3]"]
    assert refs(cat.by_label("res3", "json key")) == ["res3[1]"]
    assert refs(cat.by_label("res2", "json")) == []


def test_by_label_shared_alias_returns_all(cat):
    assert refs(cat.by_label("res2", "object key")) == ["res2[8]", "res2[12]"]


def test_search_ranks_label_over_description(cat):
    assert refs(cat.search("email", sae_id="res2")) == ["res2[3]", "res2[40]"]


def test_search_needs_every_word_then_falls_back_to_any(cat):
    assert refs(cat.search("python keyword")) == ["res2[8]"]
    assert refs(cat.search("import python")) == ["res2[7]"]
    assert set(refs(cat.search("python zebra"))) == {"res2[7]", "res2[8]"}
    assert cat.search("zebra") == [] and cat.search("  ") == []


def test_search_filters_by_sae_and_limits(cat):
    assert set(refs(cat.search("json"))) == {"res2[12]", "res3[1]"}
    assert refs(cat.search("json", sae_id="res3")) == ["res3[1]"]
    assert len(cat.search("json", limit=1)) == 1


def test_search_stems_and_tolerates_punctuation(cat):
    if cat._fts:  # stemming is an FTS5 feature; LIKE matches substrings instead
        assert refs(cat.search("keys", sae_id="res2"))[0] == "res2[12]"
    assert refs(cat.search('"json" (key)', sae_id="res2"))[0] == "res2[12]"


def test_tagged_ordered_by_index(cat):
    assert refs(cat.tagged("entity:contact")) == ["res2[3]", "res2[40]"]
    assert refs(cat.tagged("FORMAT:JSON")) == ["res2[12]", "res3[1]"]
    assert refs(cat.tagged("format:json", sae_id="res3")) == ["res3[1]"]
    assert refs(cat.tagged("format:code", limit=1)) == ["res2[7]"]
    assert cat.tagged("nope") == []


def test_tags_listing(cat):
    assert cat.tags() == [("entity:contact", 2), ("format:code", 2), ("format:json", 2), ("format:prose", 1)]
    assert cat.tags("res3") == [("format:json", 1)]


def test_suggest(cat):
    assert cat.suggest("res2", "jsn key") == ["json key"]
    assert cat.suggest("res2", "emial adress")[0] == "email address"
    assert cat.suggest("res2", "zzzzzz") == []
    assert cat.suggest("res3", "pyton code") == []  # only labels of the named SAE


def test_like_fallback_warns(doc, write_json, tmp_path):
    out = build_index(write_json(doc), tmp_path / "x.sqlite", progress=False, fts=False)
    with Catalogue.open(out) as c:
        assert [w.code for w in c.warnings] == ["W100"]
    with Catalogue.open(write_json(doc)) as c:
        assert c.warnings == []


def test_large_json_is_cached_by_content_hash(doc, write_json, tmp_path):
    p = write_json(doc)
    with Catalogue.open(p, cache=True) as c:
        assert c.path == p and c.get("res2", 12).label == "json key"
    cached = list((tmp_path / "cache" / "catalogue").glob("*.sqlite"))  # and its .sha256 seal
    assert len(cached) == 1 and cached[0].name.startswith(hashlib.sha256(p.read_bytes()).hexdigest())
    with Catalogue.open(p, cache=True) as c:  # served from the cache
        assert c.by_label("res2", "e-mail")[0].index == 3
    cached[0].write_bytes(b"SQLite format 3\x00" + b"\x00" * 200)  # a damaged entry is rebuilt
    with Catalogue.open(p, cache=True) as c:
        assert c.n_features("res2") == 5


def test_build_index_from_dict_hashes_canonical_json(doc, tmp_path):
    a = build_index(doc, tmp_path / "a.sqlite", progress=False)
    reordered = json.loads(json.dumps(doc, sort_keys=True))
    b = build_index(reordered, tmp_path / "b.sqlite", progress=False)
    with Catalogue.open(a) as ca, Catalogue.open(b) as cb:
        assert ca.sha256 == cb.sha256 and len(ca.sha256) == 64


def test_build_index_rejects_invalid(doc, tmp_path):
    doc["features"][0]["index"] = -1
    with pytest.raises(DiagnosticError):
        build_index(doc, tmp_path / "a.sqlite", progress=False)
    assert not (tmp_path / "a.sqlite").exists()


def _open_fails(path):
    with pytest.raises(DiagnosticError) as e:
        Catalogue.open(path)
    return e.value.diagnostics[0]


def test_missing_file(tmp_path):
    d = _open_fails(tmp_path / "nope.json")
    assert d.code == "E100" and "nope.json" in d.message


def test_directory(tmp_path):
    assert _open_fails(tmp_path).code == "E100"


def test_binary_garbage(tmp_path):
    p = tmp_path / "x.bin"
    p.write_bytes(b"\xff\xfe\x00garbage")
    assert _open_fails(p).code == "E101"


def test_corrupt_sqlite(doc, write_json, tmp_path):
    out = build_index(write_json(doc), tmp_path / "c.sqlite", progress=False)
    data = bytearray(out.read_bytes())
    data[16:100] = b"\xee" * 84  # smash the header past the magic
    out.write_bytes(bytes(data))
    assert _open_fails(out).code == "E111"


def test_truncated_sqlite(doc, write_json, tmp_path):
    out = build_index(write_json(doc), tmp_path / "c.sqlite", progress=False)
    out.write_bytes(out.read_bytes()[:1500])
    with pytest.raises(DiagnosticError) as e:
        with Catalogue.open(out) as c:
            c.search("json")
            c.get("res2", 12)
    assert e.value.diagnostics[0].code == "E111"


def test_sqlite_that_is_not_a_catalogue(tmp_path):
    p = tmp_path / "other.sqlite"
    con = sqlite3.connect(p)
    con.execute("CREATE TABLE t(x)")
    con.commit()
    con.close()
    assert _open_fails(p).code == "E110"


def test_index_of_another_version(doc, write_json, tmp_path):
    out = build_index(write_json(doc), tmp_path / "c.sqlite", progress=False)
    con = sqlite3.connect(out)
    con.execute("UPDATE meta SET value = '99' WHERE key = 'index_version'")
    con.commit()
    con.close()
    d = _open_fails(out)
    assert d.code == "E112" and "catalogue build" in d.hint


def test_unwritable_cache_falls_back_to_memory(doc, write_json, tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    monkeypatch.setenv("STEERC_CACHE_DIR", str(blocker))
    with Catalogue.open(write_json(doc), cache=True) as c:
        assert c.n_features("res2") == 5
    assert store_mod.cache_dir() == blocker / "catalogue"


def test_search_with_interleaved_saes(doc, tmp_path):
    # Features of the two SAEs interleaved in the file: the index groups them per SAE.
    doc["features"] = doc["features"][::-1]
    doc["features"].append({"sae": "res3", "index": 0, "label": "json value", "description": "a value"})
    with Catalogue.open(build_index(doc, tmp_path / "i.sqlite", progress=False)) as c:
        assert sorted(refs(c.search("json", sae_id="res3"))) == ["res3[0]", "res3[1]"]
        assert refs(c.search("json", sae_id="res2")) == ["res2[12]"]
        assert c.search("json", sae_id="nope") == []
        assert c.suggest("res3", "json valeu")[0] == "json value"
