"""SQLite catalogues are untrusted programs as much as data: steerc opens them read-only,
with `trusted_schema=OFF`, only with the exact schema it writes (no views or triggers: a
recursive view used to hang `check`), and with a time limit per query. Cached indexes of
JSON catalogues are used only while they match the source's hash and their own seal: an
edited cache entry must not change what a label resolves to."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time

import pytest

from tests.hostile.world import FIX, ROOT, run_cli, write_spec

INFINITE = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c"


@pytest.fixture()
def index(tmp_path):
    from steerc.catalogue.build_index import build_index

    return build_index(FIX / "catalogue.json", tmp_path / "cat.sqlite", progress=False)


def _edit(path, *sql):
    con = sqlite3.connect(path)
    con.executescript(";\n".join(sql))
    con.commit()
    con.close()


COLS = ("fid INTEGER PRIMARY KEY, sae TEXT, idx INTEGER, label TEXT, aliases TEXT, description TEXT, "
        "tags TEXT, max_activation REAL, density REAL, top_contexts TEXT")
CRAFTED = {
    # `features` replaced by a view that never ends: every lookup used to hang
    "recursive view": ("ALTER TABLE features RENAME TO features_real",
                       f"CREATE VIEW features AS {INFINITE.replace('SELECT x FROM c', 'SELECT x AS fid, ' + repr('res') + ' AS sae, x AS idx, x AS label, 1 AS aliases, 1 AS description, 1 AS tags, 1 AS max_activation, 1 AS density, 1 AS top_contexts FROM c')}"),
    "view beside the tables": (f"CREATE VIEW v AS {INFINITE}",),
    "trigger": ("CREATE TRIGGER t AFTER INSERT ON meta BEGIN SELECT 1; END",),
    "extra table": ("CREATE TABLE payload(x)",),
    "changed table": ("DROP TABLE features", f"CREATE TABLE features({COLS}, extra AS (abs(-1)))"),
}


@pytest.mark.parametrize("sql", CRAFTED.values(), ids=list(CRAFTED))
def test_crafted_index_is_refused_at_open(index, sql):
    from steerc.catalogue import Catalogue
    from steerc.diagnostics import DiagnosticError

    _edit(index, *sql)
    t0 = time.monotonic()
    with pytest.raises(DiagnosticError) as e:
        Catalogue.open(index)
    assert e.value.diagnostics[0].code == "E130", e.value.diagnostics
    assert time.monotonic() - t0 < 5


def test_check_with_a_recursive_view_catalogue_ends_with_a_diagnostic(base_model, index, tmp_path):
    """Through the CLI, in its own process: a hang fails the test by its timeout."""
    _edit(index, *CRAFTED["recursive view"])
    spec = write_spec(tmp_path / "s.steer", base_model, FIX / "sae_res", 'suppress res2["email"]\n', catalogue=index)
    env = dict(os.environ, PYTHONPATH=str(ROOT), STEERC_CACHE_DIR=str(tmp_path / "cache"))
    p = subprocess.run([sys.executable, "-m", "steerc", "check", str(spec)], capture_output=True,
                       text=True, timeout=120, env=env)
    assert p.returncode == 1 and "error[E130]" in p.stderr and "view" in p.stderr, p.stderr[-2000:]


def test_the_connection_is_read_only_untrusting_and_time_limited(index):
    from steerc.catalogue.safedb import deadline, open_index_db
    from steerc.diagnostics import DiagnosticError

    con = open_index_db(index)
    assert con.execute("PRAGMA trusted_schema").fetchone()[0] == 0
    with pytest.raises(sqlite3.OperationalError):
        con.execute("INSERT INTO meta VALUES ('x', 'y')")
    t0 = time.monotonic()
    with pytest.raises(DiagnosticError) as e:
        with deadline(con, index, seconds=0.3):
            con.execute(INFINITE).fetchall()
    assert e.value.diagnostics[0].code == "E131" and time.monotonic() - t0 < 5
    con.close()


def test_a_genuine_index_still_opens(index):
    from steerc.catalogue import Catalogue

    with Catalogue.open(index) as cat:
        assert [f.index for f in cat.by_label("res", "email")] == [0]


# -- the cache of JSON catalogues --------------------------------------------------------

def _cached_entry(tmp_path):
    from steerc.catalogue.store import cache_dir

    entries = sorted(cache_dir().glob("*.sqlite"))
    assert len(entries) == 1, entries
    return entries[0]


def _open_cached(path):
    from steerc.catalogue import Catalogue

    return Catalogue.open(path, cache=True)


def test_an_edited_cache_entry_does_not_change_what_a_label_resolves_to(tmp_path, monkeypatch):
    monkeypatch.setenv("STEERC_CACHE_DIR", str(tmp_path / "cache"))
    cat = tmp_path / "cat.json"
    shutil.copyfile(FIX / "catalogue.json", cat)
    with _open_cached(cat) as c:
        want = [f.index for f in c.by_label("res", "email")]
    entry = _cached_entry(tmp_path)
    # point the name "email" at feature 5: what an attacker or a stray sqlite3 shell does
    _edit(entry, "UPDATE names SET fid = 6 WHERE name = 'email'")
    with _open_cached(cat) as c:
        assert [f.index for f in c.by_label("res", "email")] == want == [0]


def test_a_cache_entry_of_another_catalogue_is_not_used(tmp_path, monkeypatch):
    """An entry renamed to this source's hash (its seal rewritten to match) records another
    source hash: rebuilt, not used."""
    from steerc.catalogue.store import seal_cache_entry

    monkeypatch.setenv("STEERC_CACHE_DIR", str(tmp_path / "cache"))
    doc = json.loads((FIX / "catalogue.json").read_text())
    other = json.loads(json.dumps(doc))
    other["features"][0]["aliases"], other["features"][5]["aliases"] = [], ["email"]
    (tmp_path / "a.json").write_text(json.dumps(doc))
    (tmp_path / "b.json").write_text(json.dumps(other))
    _open_cached(tmp_path / "b.json").close()
    b_entry = _cached_entry(tmp_path)
    with _open_cached(tmp_path / "a.json") as c:
        assert [f.index for f in c.by_label("res", "email")] == [0]
    a_entry = next(p for p in b_entry.parent.glob("*.sqlite") if p != b_entry)
    shutil.copyfile(b_entry, a_entry)
    seal_cache_entry(a_entry)
    with _open_cached(tmp_path / "a.json") as c:
        assert [f.index for f in c.by_label("res", "email")] == [0]


def test_check_uses_the_sealed_cache_only(base_model, tmp_path, monkeypatch):
    """The same through `steerc check`: the edited entry is rebuilt and the spec resolves
    as the JSON says (the lock records the feature)."""
    import steerc.catalogue.store as store

    monkeypatch.setenv("STEERC_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(store, "IN_MEMORY_MAX_BYTES", 0)  # cache every catalogue
    cat = tmp_path / "cat.json"
    shutil.copyfile(FIX / "catalogue.json", cat)
    spec = write_spec(tmp_path / "s.steer", base_model, FIX / "sae_res", 'suppress res2["email"]\n', catalogue=cat)
    lock = tmp_path / "steer.lock"
    rc, _, err = run_cli(["check", str(spec), "--write-lock", "--lock", str(lock)])
    assert rc == 0, err
    first = lock.read_text()
    _edit(_cached_entry(tmp_path), "UPDATE names SET fid = 6 WHERE name = 'email'")
    lock.unlink()
    rc, _, err = run_cli(["check", str(spec), "--write-lock", "--lock", str(lock)])
    assert rc == 0, err
    assert lock.read_text() == first


@pytest.mark.parametrize("sql", ["UPDATE features SET aliases = 'not json' WHERE idx = 0",
                                 "UPDATE features SET max_activation = 'high' WHERE idx = 0",
                                 "UPDATE features SET top_contexts = '[[1, \"x\"]]' WHERE idx = 0"],
                         ids=["aliases not JSON", "text statistic", "context of the wrong shape"])
def test_rows_that_do_not_decode_are_a_diagnostic(index, sql):
    """The schema is steerc's, the values are not: SQLite's column types are only affinities."""
    from steerc.catalogue import Catalogue
    from steerc.diagnostics import DiagnosticError

    _edit(index, sql)
    with Catalogue.open(index) as cat:
        with pytest.raises(DiagnosticError) as e:
            cat.get("res", 0)
    assert e.value.diagnostics[0].code == "E111"
