"""`Catalogue`: read access to a feature catalogue through its SQLite index.

`Catalogue.open` takes a built `.sqlite` index (any file starting with the SQLite magic) or
a JSON catalogue. A JSON catalogue is validated and indexed once: small files (under
IN_MEMORY_MAX_BYTES) into an in-memory database, larger ones into a content-addressed cache
file `<cache>/catalogue/<sha256>-i<INDEX_VERSION>.sqlite`, where `<cache>` is
$STEERC_CACHE_DIR, else $XDG_CACHE_HOME/steerc, else ~/.cache/steerc. A cache file is only
written after validation succeeds, and its name is the source's hash, so it can never be
stale; an unwritable cache directory falls back to memory. A cache entry is used only when
it records that same source hash and its bytes still match the seal written beside it when
it was built (`<entry>.sha256`); otherwise it is rebuilt. Every index, cached or given, is
opened through `safedb` (read-only, steerc's exact schema, a time limit per query).
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
import os
import re
import sqlite3
from pathlib import Path

from steerc.catalogue.build_index import build_index
from steerc.catalogue.index import FORMAT, INDEX_VERSION, fts5_available, write_index
from steerc.catalogue.safedb import check_schema, deadline, open_index_db
from steerc.catalogue.types import CatalogueSae, FeatureInfo, normalize_name
from steerc.catalogue.validate import CATALOGUE_VERSION, parse_catalogue_bytes
from steerc.files import read
from steerc.diagnostics import Diagnostic, DiagnosticError

IN_MEMORY_MAX_BYTES = 4 << 20
SQLITE_MAGIC = b"SQLite format 3\x00"

E_NOT_CATALOGUE = "E110"
E_CORRUPT = "E111"
E_INDEX_VERSION = "E112"
W_NO_FTS = "W100"

_COLS = "f.sae, f.idx, f.label, f.aliases, f.description, f.tags, f.max_activation, f.density, f.top_contexts"
_WORD = re.compile(r"\w+")
_REBUILD = "rebuild it with `steerc catalogue build SOURCE -o OUT.sqlite`"


def cache_dir() -> Path:
    """Where indexes of large JSON catalogues are cached (see the module docstring)."""
    if os.environ.get("STEERC_CACHE_DIR"):
        return Path(os.environ["STEERC_CACHE_DIR"]) / "catalogue"
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "steerc" / "catalogue"


def _loads(text: str) -> tuple:
    return tuple(json.loads(text)) if text != "[]" else ()


def _info(r: tuple) -> FeatureInfo:
    try:
        ctx = tuple((t, float(a)) for t, a in json.loads(r[8])) if r[8] != "[]" else ()
        info = FeatureInfo(r[0], r[1], r[2], _loads(r[3]), r[4], _loads(r[5]), r[6], r[7], ctx)
        ok = (isinstance(info.sae, str) and type(info.index) is int and isinstance(info.label, str)
              and isinstance(info.description, str)
              and all(isinstance(x, str) for x in info.aliases + info.tags)
              and all(x is None or type(x) is float and math.isfinite(x)
                      for x in (info.max_activation, info.density))
              and all(isinstance(t, str) and math.isfinite(a) for t, a in ctx))
    except (ValueError, TypeError, RecursionError):
        ok = False
    if not ok:  # a crafted or damaged index: SQLite's column types are only affinities
        raise DiagnosticError([Diagnostic(E_CORRUPT, f"corrupt catalogue index: the row of feature "
                                          f"{str(r[0])[:40]}[{str(r[1])[:20]}] does not decode", hint=_REBUILD)])
    return info


def _like(word: str) -> str:
    return "%" + word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


class Catalogue:
    """A feature catalogue opened for lookups; use `Catalogue.open(path)`.

    `path` is the file given to `open`; `sha256` the content hash of the source catalogue
    (the JSON file's bytes, or for an index the hash recorded when it was built);
    `warnings` holds diagnostics such as W100 (no FTS5: LIKE search).
    """

    def __init__(self, con: sqlite3.Connection, path: Path, meta: dict[str, str]):
        self._con = con
        self.path = path
        self.sha256 = meta["sha256"]
        self.source = meta.get("source", str(path))
        self.warnings: list[Diagnostic] = []
        self._fts = meta.get("fts") == "1" and fts5_available()
        if not self._fts:
            self.warnings.append(Diagnostic(W_NO_FTS, f"{path}: no FTS5 search index; text search falls back to slow LIKE scans",
                                            hint="use a Python whose SQLite has FTS5 and rebuild the index"))
        self._saes = [CatalogueSae(*r[:5]) for r in self._q("SELECT id, hook, d_sae, sha256, model FROM saes ORDER BY ord")]
        self._counts = dict(self._q("SELECT id, n_features FROM saes"))
        self._fids = {r[0]: (r[1], r[2]) for r in self._q("SELECT id, fid_lo, fid_hi FROM saes")}

    # -- opening -------------------------------------------------------------------------

    @classmethod
    def open(cls, path: str | os.PathLike, *, cache: bool | None = None) -> "Catalogue":
        """Open a `.sqlite` index or a JSON catalogue (validated, then indexed).

        `cache=None` caches the index of JSON files larger than IN_MEMORY_MAX_BYTES;
        True/False force it on/off. Raises DiagnosticError on any problem.
        """
        path = Path(path)
        head = _head(path)  # E100 for a missing path or anything but a regular file
        if head == SQLITE_MAGIC:
            return cls._open_index(path)
        return cls._open_json(path, cache)

    @classmethod
    def _open_index(cls, path: Path, display: Path | None = None, *, sha256: str | None = None) -> "Catalogue":
        """Open an index defensively (safedb: read-only, steerc's schema only, time limit);
        `sha256`: the source hash a cache entry must record."""
        con = None
        try:
            con = open_index_db(path)
            with deadline(con, path):
                meta = dict(con.execute("SELECT key, value FROM meta"))
            problem = _index_problem(path, meta)
            if problem is None:
                check_schema(con, path)  # E130: views, triggers, anything steerc did not write
            if problem is None and sha256 is not None and meta.get("sha256") != sha256:
                problem = Diagnostic(E_CORRUPT, f"{path}: cache entry built from another catalogue "
                                     f"(records {str(meta.get('sha256'))[:12]}..., not {sha256[:12]}...)")
            if problem is None:
                return cls(con, display or path, meta)
        except sqlite3.DatabaseError as e:
            problem = (Diagnostic(E_NOT_CATALOGUE, f"{path}: an SQLite file but not a steerc catalogue index", hint=_REBUILD)
                       if "no such table" in str(e) else
                       Diagnostic(E_CORRUPT, f"{path}: corrupt catalogue index ({e})", hint=_REBUILD))
        except DiagnosticError:
            if con is not None:
                con.close()
            raise
        if con is not None:
            con.close()
        raise DiagnosticError([problem])

    @classmethod
    def _open_json(cls, path: Path, cache: bool | None) -> "Catalogue":
        raw = read.read_bytes(path, read.CATALOGUE)
        digest = hashlib.sha256(raw).hexdigest()
        use_cache = len(raw) > IN_MEMORY_MAX_BYTES if cache is None else cache
        cached = cache_dir() / f"{digest}-i{INDEX_VERSION}.sqlite"
        if use_cache and os.path.isfile(cached):
            try:
                if cache_entry_intact(cached):
                    return cls._open_index(cached, display=path, sha256=digest)
            except (OSError, DiagnosticError):
                pass  # a damaged or edited cache entry is rebuilt below
        doc = parse_catalogue_bytes(raw, str(path))
        del raw
        if use_cache:
            try:
                cached.parent.mkdir(parents=True, exist_ok=True)
                build_index(doc, cached, progress=False, sha256=digest, source_name=str(path), validate=False)
                seal_cache_entry(cached)
                return cls._open_index(cached, display=path, sha256=digest)
            except (OSError, DiagnosticError):
                pass  # unwritable cache: index in memory instead
        con = sqlite3.connect(":memory:")
        write_index(con, doc, sha256=digest, source=str(path), progress=False)
        meta = dict(con.execute("SELECT key, value FROM meta"))
        return cls(con, path, meta)

    # -- queries -------------------------------------------------------------------------

    def _q(self, sql: str, params: tuple = ()) -> list[tuple]:
        try:
            with deadline(self._con, self.path):
                return self._con.execute(sql, params).fetchall()
        except sqlite3.DatabaseError as e:
            raise DiagnosticError([Diagnostic(E_CORRUPT, f"{self.path}: corrupt catalogue index ({e})", hint=_REBUILD)]) from None

    def saes(self) -> list[CatalogueSae]:
        """The SAEs the catalogue declares, in declaration order."""
        return list(self._saes)

    def n_features(self, sae_id: str) -> int:
        """How many features of `sae_id` are catalogued (0 for an unknown SAE)."""
        return self._counts.get(sae_id, 0)

    def get(self, sae_id: str, index: int) -> FeatureInfo | None:
        """The feature `sae_id[index]`, or None when it is not catalogued."""
        rows = self._q(f"SELECT {_COLS} FROM features f WHERE f.sae = ? AND f.idx = ?", (sae_id, int(index)))
        return _info(rows[0]) if rows else None

    def by_label(self, sae_id: str, text: str) -> list[FeatureInfo]:
        """Features whose label or an alias equals `text` (case- and whitespace-insensitive).

        A label match comes first; several results mean the alias is shared.
        """
        rows = self._q(f"SELECT {_COLS} FROM names n JOIN features f ON f.fid = n.fid "
                       "WHERE n.sae = ? AND n.name = ? ORDER BY n.is_label DESC, f.idx",
                       (sae_id, normalize_name(text)))
        return [_info(r) for r in rows]

    def tagged(self, tag: str, sae_id: str | None = None, limit: int | None = None) -> list[FeatureInfo]:
        """Features carrying `tag` (case-insensitive), ordered by SAE id then index."""
        sql = f"SELECT {_COLS} FROM tags t JOIN features f ON f.fid = t.fid WHERE t.tag = ?"
        params: tuple = (normalize_name(tag),)
        if sae_id is not None:
            sql, params = sql + " AND t.sae = ?", params + (sae_id,)
        sql += " ORDER BY t.sae, t.idx"
        if limit is not None:
            sql, params = sql + " LIMIT ?", params + (int(limit),)
        return [_info(r) for r in self._q(sql, params)]

    def tags(self, sae_id: str | None = None) -> list[tuple[str, int]]:
        """Every tag (casefolded) with its number of features, sorted by tag."""
        if sae_id is None:
            return [tuple(r) for r in self._q("SELECT tag, count(*) FROM tags GROUP BY tag ORDER BY tag")]
        return [tuple(r) for r in self._q("SELECT tag, count(*) FROM tags WHERE sae = ? GROUP BY tag ORDER BY tag", (sae_id,))]

    def search(self, text: str, sae_id: str | None = None, limit: int = 10) -> list[FeatureInfo]:
        """Features matching the words of `text`, best first.

        Ranked by bm25 over label (weight 10), aliases (5), tags (2), description (1) and
        top-context text (0.5),
        with English stemming ("keys" finds "key"). Features matching every word are
        returned; only if there are none, features matching any word. Ties: catalogue order.
        """
        words = _WORD.findall(text)
        if not words or limit <= 0:
            return []
        for op in ("AND", "OR"):
            rows = self._search_fts(words, op, sae_id, limit) if self._fts else self._search_like(words, op, sae_id, limit)
            if rows or len(words) == 1:
                return [_info(r) for r in rows]
        return []

    def _search_fts(self, words: list[str], op: str, sae_id: str | None, limit: int) -> list[tuple]:
        # Rank inside FTS5 first and join only the winners: joining every match before the
        # sort reads one feature row per match. An SAE is a fid range (see index.py).
        lo, hi = self._fids.get(sae_id, (1, 0)) if sae_id is not None else (1, 1 << 62)
        top = ("SELECT rowid AS fid, bm25(features_fts, 0.0, 10.0, 5.0, 1.0, 2.0, 0.5) AS score FROM features_fts "
               "WHERE features_fts MATCH ? AND rowid BETWEEN ? AND ? ORDER BY score, rowid LIMIT ?")
        sql = f"SELECT {_COLS} FROM ({top}) AS t JOIN features f ON f.fid = t.fid ORDER BY t.score, t.fid"
        return self._q(sql, (f" {op} ".join(f'"{w}"' for w in words), lo, hi, limit))

    def _search_like(self, words: list[str], op: str, sae_id: str | None, limit: int) -> list[tuple]:
        cols = ("label", "aliases", "description", "tags", "top_contexts")
        weights = (10, 5, 1, 2, 0.5)
        one = "(" + " OR ".join(f"f.{c} LIKE ? ESCAPE '\\'" for c in cols) + ")"
        sql = f"SELECT {_COLS}, f.fid FROM features f WHERE (" + f" {op} ".join([one] * len(words)) + ")"
        params: tuple = tuple(_like(w) for w in words for _ in cols)
        if sae_id is not None:
            sql, params = sql + " AND f.sae = ?", params + (sae_id,)
        lowered = [w.casefold() for w in words]

        def score(r: tuple) -> float:
            fields = (r[2], r[3], r[4], r[5], r[8])
            return sum(wt for w in lowered for wt, v in zip(weights, fields) if w in v.casefold())

        rows = sorted(self._q(sql, params), key=lambda r: (-score(r), r[9]))
        return [r[:9] for r in rows[:limit]]

    def suggest(self, sae_id: str, text: str, n: int = 3) -> list[str]:
        """Up to `n` labels of `sae_id` close to `text`, closest first (for "did you mean").

        Candidates: labels holding two of the query's words (a typo usually spares the
        others); when that finds nothing close or too much, also the labels sharing the
        query's rarest trigrams (FTS5 trigram index). difflib picks the closest (cutoff 0.6).
        """
        q = normalize_name(text)
        if not q or n <= 0:
            return []
        if not self._fts:
            return self._closest(q, [r[0] for r in self._q("SELECT label FROM features WHERE sae = ?", (sae_id,))], n)
        words, complete = self._word_candidates(sae_id, q)
        close = self._closest(q, words, n)
        if close and complete:
            return close
        return self._closest(q, words + self._suggest_candidates(sae_id, q), n)

    @staticmethod
    def _closest(q: str, labels: list[str], n: int) -> list[str]:
        by_norm: dict[str, str] = {}
        for label in labels:
            by_norm.setdefault(normalize_name(label), label)
        return [by_norm[c] for c in difflib.get_close_matches(q, list(by_norm), n=n, cutoff=0.6)]

    def _word_candidates(self, sae_id: str, q: str, per_pair: int = 50) -> tuple[list[str], bool]:
        """Labels holding two of the query's words, and whether no pair hit `per_pair`."""
        words = list(dict.fromkeys(_WORD.findall(q)))[:6]
        out: list[str] = []
        complete = True
        for i, a in enumerate(words):
            for b in words[i + 1:]:
                rows = self._q("SELECT f.label FROM features_fts JOIN features f ON f.fid = features_fts.rowid "
                               "WHERE features_fts MATCH ? AND features_fts.rowid BETWEEN ? AND ? LIMIT ?",
                               (f'label : "{a}" AND label : "{b}"', *self._fids.get(sae_id, (1, 0)), per_pair))
                complete = complete and len(rows) < per_pair
                out += [r[0] for r in rows]
        return out, complete

    def _suggest_candidates(self, sae_id: str, q: str, n_grams: int = 6, per_gram: int = 20_000,
                            n_candidates: int = 100) -> list[str]:
        if len(q) < 3:
            return [r[0] for r in self._q("SELECT f.label FROM names n JOIN features f ON f.fid = n.fid "
                                          "WHERE n.sae = ? AND n.is_label = 1 AND n.name >= ? AND n.name < ? LIMIT 200",
                                          (sae_id, q, q + "\U0010ffff"))]
        grams = sorted({q[i:i + 3] for i in range(len(q) - 2)})
        marks = ",".join("?" * len(grams))
        freq = self._q(f"SELECT term, doc FROM labels_tri_vocab WHERE term IN ({marks})", tuple(grams))
        rare = [t for t, d in sorted(freq, key=lambda td: (td[1], td[0])) if d > 0][:n_grams]
        if not rare:
            return []
        # Count, in SQLite, how many of the rare trigrams each label holds; keep the best.
        one = "SELECT * FROM (SELECT rowid AS fid FROM labels_tri WHERE labels_tri MATCH ? LIMIT ?)"
        sql = (f"SELECT f.label FROM (SELECT fid, count(*) AS hits FROM ({' UNION ALL '.join([one] * len(rare))}) "
               "GROUP BY fid ORDER BY hits DESC, fid LIMIT ?) AS c JOIN features f ON f.fid = c.fid WHERE f.sae = ?")
        params: list = []
        for gram in rare:
            params += ['"' + gram.replace('"', '""') + '"', per_gram]
        return [r[0] for r in self._q(sql, (*params, n_candidates, sae_id))]

    def close(self) -> None:
        """Close the underlying database."""
        self._con.close()

    def __enter__(self) -> "Catalogue":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Catalogue({str(self.path)!r}, saes={[s.id for s in self._saes]})"


def _index_problem(path: Path, meta: dict[str, str]) -> Diagnostic | None:
    if meta.get("format") != FORMAT:
        return Diagnostic(E_NOT_CATALOGUE, f"{path}: an SQLite file but not a steerc catalogue index", hint=_REBUILD)
    if meta.get("index_version") != str(INDEX_VERSION) or meta.get("catalogue_version") != str(CATALOGUE_VERSION):
        return Diagnostic(E_INDEX_VERSION,
                          f"{path}: catalogue index version {meta.get('index_version')} (catalogue version "
                          f"{meta.get('catalogue_version')}); this steerc reads index version {INDEX_VERSION}",
                          hint=_REBUILD)
    return None


def _seal_path(entry: Path) -> Path:
    return entry.with_name(entry.name + ".sha256")


def seal_cache_entry(entry: Path) -> None:
    """Record the sha256 of a cache entry just built beside it (`<entry>.sha256`, replaced
    atomically), for `cache_entry_intact`."""
    from steerc.files.hashing import sha256_uncached

    seal = _seal_path(entry)
    tmp = seal.with_name(f".{seal.name}.{os.getpid()}.tmp")
    tmp.write_text(sha256_uncached(entry) + "\n", encoding="ascii")
    os.replace(tmp, seal)


def cache_entry_intact(entry: Path) -> bool:
    """Whether a cache entry's bytes still hash to the seal written when it was built: an
    entry edited since (a label changed with the sqlite3 shell) or without a seal is rebuilt.
    The hash is cached under the strict stat signature, so an untouched entry is not reread."""
    from steerc.files.hashing import sha256_checked

    try:
        want = read.read_bytes(_seal_path(entry), read.CACHE_SEAL).decode("ascii").strip()
    except (DiagnosticError, UnicodeDecodeError):
        return False
    return sha256_checked(entry) == want


def _head(path: Path) -> bytes:
    with read.open_regular(path, read.CATALOGUE) as fh:
        return fh.read(16)
