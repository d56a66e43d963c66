"""Content hashes and their stat-keyed cache."""

import hashlib
import os
import sqlite3

from steerc.files import hashing


def test_file_hash_and_cache(tmp_path):
    f = tmp_path / "a.bin"
    f.write_bytes(b"hello")
    assert hashing.file_sha256(f) == hashlib.sha256(b"hello").hexdigest()
    rows = sqlite3.connect(hashing.cache_path()).execute(
        "SELECT sha256 FROM h WHERE path = ?", (str(f.resolve()),)).fetchall()
    assert rows == [(hashlib.sha256(b"hello").hexdigest(),)]
    # a cached value is returned while (size, mtime_ns) match; any change recomputes
    st = f.stat()
    f.write_bytes(b"jello")
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert hashing.file_sha256(f) == hashlib.sha256(b"hello").hexdigest()  # the documented blind spot
    f.write_bytes(b"jello!")
    assert hashing.file_sha256(f) == hashlib.sha256(b"jello!").hexdigest()


def test_cache_can_be_disabled(tmp_path, monkeypatch):
    monkeypatch.setenv("STEERC_HASH_CACHE", "0")
    f = tmp_path / "b.bin"
    f.write_bytes(b"x")
    st = f.stat()
    assert hashing.file_sha256(f) == hashlib.sha256(b"x").hexdigest()
    f.write_bytes(b"y")
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert hashing.file_sha256(f) == hashlib.sha256(b"y").hexdigest()


def test_model_fingerprint_covers_config_and_weights_only(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "model.safetensors").write_bytes(b"w1")
    (tmp_path / "tokenizer.json").write_text("{}")
    a = hashing.model_fingerprint(tmp_path)
    (tmp_path / "tokenizer.json").write_text('{"x": 1}')
    assert hashing.model_fingerprint(tmp_path) == a
    (tmp_path / "model.safetensors").write_bytes(b"w2")
    b = hashing.model_fingerprint(tmp_path)
    assert b != a
    (tmp_path / "model-2.safetensors").write_bytes(b"w3")
    assert hashing.model_fingerprint(tmp_path) not in (a, b)


def test_cached_by_files(tmp_path):
    f = tmp_path / "c"
    f.write_text("1")
    calls = []
    compute = lambda: calls.append(1) or f"v{len(calls)}"  # noqa: E731
    assert hashing.cached_by_files("k", [f], compute) == "v1"
    assert hashing.cached_by_files("k", [f], compute) == "v1"
    f.write_text("22")
    assert hashing.cached_by_files("k", [f], compute) == "v2"
    assert hashing.cached_by_files("other", [f], compute) == "v3"
