"""The SQLite index a catalogue is searched through: its tables and how it is written.

Tables (INDEX_VERSION 3):
  meta(key, value)          format, index_version, catalogue_version, sha256, source, fts
  saes(ord, id, ...)        declared SAEs in order, feature counts, fid ranges
  features(fid, sae, idx, label, aliases, description, tags, max_activation, density,
           top_contexts)    aliases/tags/top_contexts as JSON text; fid follows (SAE order,
                            index), so one SAE's features are the fid range [fid_lo, fid_hi]
  names(sae, name, is_label, fid)   normalized labels and aliases: exact lookup
  tags(tag, sae, idx, fid)          normalized tags: `tagged`, ordered by index
  features_fts              FTS5 over label/aliases/description/tags/top-context text
                            (porter stemming, bm25)
  labels_tri                FTS5 trigram over labels (contentless): "did you mean" candidates
The FTS tables are absent when the SQLite build lacks FTS5 (meta fts = 0); readers then
fall back to LIKE scans.
"""

from __future__ import annotations

import json
import sqlite3
from functools import lru_cache
from typing import Iterable

from tqdm import tqdm

from steerc.catalogue.types import normalize_name
from steerc.catalogue.validate import CATALOGUE_VERSION

FORMAT = "steerc-catalogue"
INDEX_VERSION = 3  # 2: names/tags WITHOUT ROWID, SAE fid ranges; 3: top-context text searched

_TABLES = """
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE saes(ord INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, hook TEXT NOT NULL,
                  d_sae INTEGER NOT NULL, sha256 TEXT, model TEXT, n_features INTEGER NOT NULL,
                  fid_lo INTEGER NOT NULL, fid_hi INTEGER NOT NULL);
CREATE TABLE features(fid INTEGER PRIMARY KEY, sae TEXT NOT NULL, idx INTEGER NOT NULL,
                      label TEXT NOT NULL, aliases TEXT NOT NULL, description TEXT NOT NULL,
                      tags TEXT NOT NULL, max_activation REAL, density REAL, top_contexts TEXT NOT NULL);
CREATE TABLE names(sae TEXT NOT NULL, name TEXT NOT NULL, is_label INTEGER NOT NULL, fid INTEGER NOT NULL,
                   PRIMARY KEY(sae, name, is_label, fid)) WITHOUT ROWID;
CREATE TABLE tags(tag TEXT NOT NULL, sae TEXT NOT NULL, idx INTEGER NOT NULL, fid INTEGER NOT NULL,
                  PRIMARY KEY(tag, sae, idx)) WITHOUT ROWID;
CREATE TEMP TABLE names_in(sae, name, is_label, fid);
CREATE TEMP TABLE tags_in(tag, sae, idx, fid);
"""
_FTS_TABLES = """
CREATE VIRTUAL TABLE features_fts USING fts5(sae UNINDEXED, label, aliases, description, tags, top_contexts,
    content='features', content_rowid='fid', tokenize='porter unicode61 remove_diacritics 2');
CREATE VIRTUAL TABLE labels_tri USING fts5(label, content='', detail='none', columnsize=0, tokenize='trigram');
CREATE VIRTUAL TABLE labels_tri_vocab USING fts5vocab(labels_tri, 'row');
"""
# Run after the bulk insert. Names and tags go through unordered temp tables, then into
# key-ordered WITHOUT ROWID tables: SQLite sorts once, in C, and the lookup key is the table.
_INDEXES = """
CREATE UNIQUE INDEX features_sae_idx ON features(sae, idx);
INSERT INTO names SELECT * FROM temp.names_in ORDER BY sae, name, is_label, fid;
INSERT INTO tags SELECT * FROM temp.tags_in ORDER BY tag, sae, idx;
DROP TABLE temp.names_in;
DROP TABLE temp.tags_in;
"""

_EMPTY = "[]"


@lru_cache(maxsize=1)
def fts5_available() -> bool:
    """Whether this Python's SQLite has FTS5 with the trigram tokenizer (SQLite >= 3.34)."""
    try:
        con = sqlite3.connect(":memory:")
        con.execute("CREATE VIRTUAL TABLE t USING fts5(a, tokenize='trigram')")
        con.close()
        return True
    except sqlite3.OperationalError:
        return False


_encode_str = json.encoder.c_encode_basestring or json.encoder.py_encode_basestring  # str -> JSON literal


def _dumps(x: list[str]) -> str:
    # A list of strings as JSON, without json.dumps' per-call overhead (a third of build time).
    return "[" + ",".join(map(_encode_str, x)) + "]" if x else _EMPTY


def _feature_rows(features: Iterable[dict]) -> Iterable[tuple]:
    for fid, f in enumerate(features, start=1):
        ctx = f.get("top_contexts") or ()
        yield (fid, f["sae"], int(f["index"]), f["label"], _dumps(f.get("aliases") or []),
               f.get("description", ""), _dumps(f.get("tags") or []),
               f.get("max_activation"), f.get("density"),
               json.dumps([[c["text"], c["activation"]] for c in ctx], ensure_ascii=False) if ctx else _EMPTY)


def _name_rows(features: list[dict]) -> Iterable[tuple]:
    for fid, f in enumerate(features, start=1):
        label = normalize_name(f["label"])
        yield f["sae"], label, 1, fid
        if f.get("aliases"):
            for n in dict.fromkeys(map(normalize_name, f["aliases"])):  # ordered dedupe: same bytes every build
                if n != label:
                    yield f["sae"], n, 0, fid


def _tag_rows(features: list[dict]) -> Iterable[tuple]:
    for fid, f in enumerate(features, start=1):
        for t in dict.fromkeys(t.casefold() for t in f.get("tags") or ()):  # tags hold no whitespace (schema)
            yield t, f["sae"], int(f["index"]), fid


def write_index(con: sqlite3.Connection, doc: dict, *, sha256: str, source: str,
                progress: bool = True, fts: bool | None = None) -> None:
    """Write a validated catalogue document into an empty database `con`.

    `fts=None` uses FTS5 when available; False forces the LIKE fallback (tests use it).
    """
    use_fts = fts5_available() if fts is None else (fts and fts5_available())
    order = {s["id"]: i for i, s in enumerate(doc["saes"])}  # ids are unique (validated)
    features = sorted(doc["features"], key=lambda f: (order[f["sae"]], int(f["index"])))
    counts: dict[str, int] = {}
    for f in features:
        counts[f["sae"]] = counts.get(f["sae"], 0) + 1
    first, lo = {}, 1
    for s in doc["saes"]:
        first[s["id"]], lo = lo, lo + counts.get(s["id"], 0)
    con.execute("PRAGMA journal_mode=OFF")
    con.execute("PRAGMA synchronous=OFF")
    con.execute("PRAGMA cache_size=-262144")  # 256 MiB page cache while building
    con.execute("PRAGMA temp_store=MEMORY")
    with con:
        con.executescript(_TABLES)
        meta = {"format": FORMAT, "index_version": str(INDEX_VERSION), "catalogue_version": str(CATALOGUE_VERSION),
                "sha256": sha256, "source": source, "fts": "1" if use_fts else "0"}
        con.executemany("INSERT INTO meta VALUES (?, ?)", sorted(meta.items()))
        con.executemany("INSERT INTO saes VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [(i, s["id"], s["hook"], s["d_sae"], s.get("sha256"), s.get("model"), counts.get(s["id"], 0),
                          first[s["id"]], first[s["id"]] + counts.get(s["id"], 0) - 1)
                         for i, s in enumerate(doc["saes"])])
        bar = tqdm(total=len(features), desc="catalogue: features", unit="f", unit_scale=True,
                   disable=not progress or len(features) < 50_000, leave=False)
        rows = _feature_rows(features)
        chunk = 50_000
        while True:
            batch = [r for _, r in zip(range(chunk), rows)]
            if not batch:
                break
            con.executemany("INSERT INTO features VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", batch)
            bar.update(len(batch))
        bar.close()
        con.executemany("INSERT INTO temp.names_in VALUES (?, ?, ?, ?)", _name_rows(features))
        con.executemany("INSERT INTO temp.tags_in VALUES (?, ?, ?, ?)", _tag_rows(features))
        con.executescript(_INDEXES)
        if use_fts:
            _write_fts(con, features, progress)
    con.execute("PRAGMA journal_mode=DELETE")


def _write_fts(con: sqlite3.Connection, features: list[dict], progress: bool) -> None:
    con.executescript(_FTS_TABLES)
    steps = tqdm(total=2, desc="catalogue: search index", disable=not progress or len(features) < 50_000, leave=False)
    con.execute("INSERT INTO features_fts(features_fts) VALUES ('rebuild')")
    steps.update()
    con.executemany("INSERT INTO labels_tri(rowid, label) VALUES (?, ?)",
                    ((fid, f["label"]) for fid, f in enumerate(features, start=1)))
    steps.update()
    steps.close()
