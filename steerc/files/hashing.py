"""Content hashes for the lock file and the manifest: spec files, schemas, SAEs, models.

Whole files are hashed (sha256 over the raw bytes), never sampled: a lock must notice any
change. Hashing a multi-GB checkpoint takes seconds, so results are cached in a small SQLite
table keyed by (absolute path, size, mtime_ns): a rewrite that keeps both the size and the nanosecond mtime is the one
change it misses, the same trade-off git's stat cache makes.

The cache lives in `$STEERC_CACHE_DIR/hashes.sqlite` (default `~/.cache/steerc/`). Set
`STEERC_HASH_CACHE=0` to bypass it. A cache that cannot be opened (read-only home) is skipped
silently: it only saves time, it never changes a result.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from pathlib import Path

_CHUNK = 1 << 20
_conn: sqlite3.Connection | None = None
_conn_path: str | None = None


def cache_path() -> Path:
    """Where the hash cache lives (`$STEERC_CACHE_DIR/hashes.sqlite`)."""
    base = os.environ.get("STEERC_CACHE_DIR") or os.path.join(Path.home(), ".cache", "steerc")
    return Path(base) / "hashes.sqlite"


def _cache() -> sqlite3.Connection | None:
    global _conn, _conn_path
    if os.environ.get("STEERC_HASH_CACHE", "1") == "0":
        return None
    path = str(cache_path())
    if _conn is not None and _conn_path == path:
        return _conn
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        conn = sqlite3.connect(path, timeout=5)
        conn.execute("CREATE TABLE IF NOT EXISTS h (path TEXT PRIMARY KEY, size INTEGER, "
                     "mtime_ns INTEGER, sha256 TEXT)")
    except (OSError, sqlite3.Error):
        return None
    _conn, _conn_path = conn, path
    return conn


def bytes_sha256(data: bytes) -> str:
    """sha256 hex digest of `data`."""
    return hashlib.sha256(data).hexdigest()


def sha256_uncached(path: str | os.PathLike) -> str:
    """sha256 of a file's bytes, read now (no cache): for checks that must see the bytes on
    disk (verify's tamper checks) and for files just written."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def file_sha256(path: str | os.PathLike) -> str:
    """sha256 of a file's bytes, cached by (absolute path, size, mtime_ns)."""
    p = os.path.abspath(path)
    st = os.stat(p)
    conn = _cache()
    if conn is not None:
        try:
            row = conn.execute("SELECT size, mtime_ns, sha256 FROM h WHERE path = ?", (p,)).fetchone()
        except sqlite3.Error:
            row = None
        if row and row[0] == st.st_size and row[1] == st.st_mtime_ns:
            return row[2]
    digest = sha256_uncached(p)
    if conn is not None:
        try:
            with conn:
                conn.execute("INSERT OR REPLACE INTO h VALUES (?, ?, ?, ?)",
                             (p, st.st_size, st.st_mtime_ns, digest))
        except sqlite3.Error:
            pass
    return digest


def sha256_checked(path: str | os.PathLike) -> str:
    """sha256 of a file's bytes for a tamper check: cached under the strict stat signature
    (see `cached_by_files`), so a second `steerc verify` of an untouched checkpoint reads
    nothing again, while any write to the file since (even one restoring its mtime) rereads
    it. `STEERC_HASH_CACHE=0` always rereads."""
    return cached_by_files("sha256-strict-v1", [path], lambda: sha256_uncached(path), strict=True)


def files_fingerprint(root: str | os.PathLike, names: list[str]) -> str:
    """One sha256 over several files of a folder: sha256 of the sorted lines
    `<relative name>\\t<file sha256>\\n`, so renaming or editing any file changes it."""
    root = Path(root)
    lines = [f"{n}\t{file_sha256(root / n)}\n" for n in sorted(names)]
    return bytes_sha256("".join(lines).encode())


def model_fingerprint(model_dir: str | os.PathLike) -> str:
    """Fingerprint of a local HF model folder: `config.json` and every `*.safetensors` file
    (tokenizer files are left out: they do not change what steerc edits)."""
    root = Path(model_dir)
    names = [p.name for p in root.iterdir()
             if os.path.isfile(p) and (p.name == "config.json" or p.name.endswith(".safetensors"))]
    return files_fingerprint(root, names)


def cached_by_files(kind: str, paths: list[str | os.PathLike], compute, *, strict: bool = False) -> str:
    """`compute()` (a string, e.g. an SAE's content hash), cached under the stat signature
    (absolute path, size, mtime_ns) of `paths`: any of them changing recomputes it.

    `strict=True` (for tamper checks) adds the device, inode and ctime_ns: an edit that
    puts the old size and mtime back (`touch -d`, `tar` or `cp -p` over the file) still
    changes the ctime, which no unprivileged process can set."""
    sig = [kind]
    for p in sorted(os.path.abspath(p) for p in paths):
        st = os.stat(p)
        sig.append(f"{p}\t{st.st_size}\t{st.st_mtime_ns}")
        if strict:
            sig.append(f"{st.st_dev}\t{st.st_ino}\t{st.st_ctime_ns}")
    key = "value:" + bytes_sha256("\n".join(sig).encode())
    conn = _cache()
    if conn is not None:
        try:
            row = conn.execute("SELECT sha256 FROM h WHERE path = ?", (key,)).fetchone()
            if row:
                return row[0]
        except sqlite3.Error:
            pass
    value = compute()
    if conn is not None:
        try:
            with conn:
                conn.execute("INSERT OR REPLACE INTO h VALUES (?, ?, ?, ?)", (key, 0, 0, value))
        except sqlite3.Error:
            pass
    return value


def cached_text(key: str) -> str | None:
    """A value stored under `key` by `store_text` (None when absent or no cache)."""
    conn = _cache()
    if conn is None:
        return None
    try:
        row = conn.execute("SELECT sha256 FROM h WHERE path = ?", ("text:" + key,)).fetchone()
    except sqlite3.Error:
        return None
    return row[0] if row else None


def store_text(key: str, value: str) -> None:
    """Remember `value` under `key` (a content hash: the value must follow from it alone)."""
    conn = _cache()
    if conn is None:
        return
    try:
        with conn:
            conn.execute("INSERT OR REPLACE INTO h VALUES (?, ?, ?, ?)", ("text:" + key, 0, 0, value))
    except sqlite3.Error:
        pass
