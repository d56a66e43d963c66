"""Open a catalogue index someone else built: read-only, only steerc's own schema, time-limited.

    con = open_index_db(Path("cat.sqlite"))     # E130 foreign schema, E111 not readable
    with deadline(con):                           # E131 when one query runs too long
        rows = con.execute(sql, params).fetchall()

An SQLite file is a program as much as data: a view or trigger runs SQL on read (a recursive
view never ends), a generated column or an index on an expression calls functions, and the
schema decides what a table read returns. So an index is opened read-only (URI `mode=ro`,
`query_only`), with `trusted_schema=OFF` (no functions with side effects from the schema),
and its schema must be exactly what this steerc's `write_index` creates, table for table and
statement for statement: no views, no triggers, no extra tables. A progress handler aborts
any statement still running after QUERY_SECONDS, whatever the file holds.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from functools import lru_cache
from pathlib import Path
from typing import Iterator

from steerc.diagnostics import Diagnostic, DiagnosticError

E_NOT_CATALOGUE = "E110"  # as store.py names it
E_SCHEMA = "E130"
E_TOO_SLOW = "E131"
QUERY_SECONDS = 30.0  # longest one catalogue query may run (a 1M-feature LIKE scan: ~1 s)
_PROGRESS_STEPS = 10_000  # VM instructions between deadline checks (~100 µs)
_REBUILD = "rebuild it with `steerc catalogue build SOURCE -o OUT.sqlite`"


@lru_cache(maxsize=2)
def reference_schema(fts: bool) -> frozenset[tuple[str, str, str, str | None]]:
    """(type, name, tbl_name, sql) of every schema object `write_index` creates."""
    from steerc.catalogue.index import write_index

    con = sqlite3.connect(":memory:")
    try:
        write_index(con, {"saes": [], "features": []}, sha256="", source="", progress=False, fts=fts)
        return frozenset(con.execute("SELECT type, name, tbl_name, sql FROM sqlite_master"))
    finally:
        con.close()


def _refuse(path: Path, why: str):
    raise DiagnosticError([Diagnostic(
        E_SCHEMA, f"{path}: refusing this catalogue index: {why}",
        hint="steerc only reads indexes with the exact schema it writes (no views, triggers or "
             "extra tables); " + _REBUILD)])


def check_schema(con: sqlite3.Connection, path: Path) -> None:
    """E130 unless the schema of `con` is exactly steerc's (with or without FTS5 tables)."""
    with deadline(con, path):
        found = frozenset(con.execute("SELECT type, name, tbl_name, sql FROM sqlite_master"))
    kinds = {t for t, *_ in found}
    for bad in ("view", "trigger"):
        if bad in kinds:
            names = sorted(n for t, n, *_ in found if t == bad)
            _refuse(path, f"it holds {bad}s ({', '.join(names)[:200]}), which run SQL when read")
    from steerc.catalogue.index import fts5_available

    # the one variant the file claims (with FTS5 tables or without) is built and compared
    ref = reference_schema(fts5_available() and any(n == "features_fts" for _, n, *_ in found))
    if found == ref:
        return
    extra = sorted(n for _, n, *_ in found - ref)
    missing = sorted(n for _, n, *_ in ref - found)
    detail = "; ".join(s for s in (f"unexpected or changed: {', '.join(extra)[:200]}" if extra else "",
                                    f"missing: {', '.join(missing)[:200]}" if missing else "") if s)
    _refuse(path, f"its schema is not the one steerc writes ({detail})")


class GuardedConnection(sqlite3.Connection):
    """A connection whose statements stop at `deadline_at` (time.monotonic), via a progress
    handler: set by `deadline`, infinite outside it."""

    deadline_at = float("inf")

    def _past_deadline(self) -> int:
        # Non-zero aborts the running statement (sqlite3.OperationalError: interrupted).
        return int(time.monotonic() > self.deadline_at)


def open_index_db(path: Path) -> GuardedConnection:
    """A read-only, time-limited connection to the index at `path` whose `meta` table is
    steerc's (else E110), so the caller may read it (versions: E112) before `check_schema`
    (E130). sqlite3 errors propagate (the caller names them E111)."""
    con = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True, factory=GuardedConnection)
    try:
        con.execute("PRAGMA trusted_schema = OFF")
        con.execute("PRAGMA query_only = ON")
        con.execute("PRAGMA cell_size_check = ON")
        con.set_progress_handler(con._past_deadline, _PROGRESS_STEPS)
        with deadline(con, path):
            meta = con.execute("SELECT type, name, tbl_name, sql FROM sqlite_master "
                               "WHERE name = 'meta'").fetchall()
        if len(meta) != 1 or meta[0] not in reference_schema(False):
            raise DiagnosticError([Diagnostic(
                E_NOT_CATALOGUE, f"{path}: an SQLite file but not a steerc catalogue index",
                hint=_REBUILD)])
    except BaseException:
        con.close()
        raise
    return con


@contextlib.contextmanager
def deadline(con: sqlite3.Connection, path: Path, seconds: float | None = None) -> Iterator[None]:
    """Run the block's statements on `con` under a time limit (QUERY_SECONDS by default);
    E131 when one is stopped. A connection without the handler (in memory) is unlimited."""
    limit = QUERY_SECONDS if seconds is None else seconds
    guarded = isinstance(con, GuardedConnection)
    if guarded:
        con.deadline_at = time.monotonic() + limit
    try:
        yield
    except sqlite3.OperationalError as e:
        if not guarded or "interrupted" not in str(e):
            raise
        raise DiagnosticError([Diagnostic(
            E_TOO_SLOW, f"{path}: a catalogue query ran longer than {limit:g} s and was stopped",
            hint="the index may be crafted or damaged; " + _REBUILD)]) from None
    finally:
        if guarded:
            con.deadline_at = float("inf")
