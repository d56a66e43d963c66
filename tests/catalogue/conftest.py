"""Small hand-written catalogues for the catalogue tests; the index cache goes to tmp."""

import copy
import json

import pytest

BASE = {
    "version": 1,
    "saes": [
        {"id": "res2", "hook": "blocks.2.hook_resid_post", "d_sae": 2048, "model": "demo"},
        {"id": "res3", "hook": "blocks.3.hook_resid_post", "d_sae": 512},
    ],
    "features": [
        {"sae": "res2", "index": 12, "label": "json key", "aliases": ["json keys", "object key"],
         "description": "Keys inside JSON objects", "tags": ["format:json"], "max_activation": 3.2,
         "density": 0.013, "top_contexts": [{"text": '{"name": 1}', "activation": 3.1}]},
        {"sae": "res2", "index": 3, "label": "email address", "aliases": ["e-mail"],
         "description": "Email addresses in text", "tags": ["entity:contact", "format:prose"]},
        {"sae": "res2", "index": 40, "label": "contact details",
         "description": "Signatures listing an email and a phone number", "tags": ["entity:contact"]},
        {"sae": "res2", "index": 7, "label": "Python code", "description": "def and import lines",
         "tags": ["format:code"], "max_activation": 5.0},
        {"sae": "res2", "index": 8, "label": "python keyword", "aliases": ["object key"],
         "tags": ["format:code"]},
        {"sae": "res3", "index": 1, "label": "json key", "description": "Keys, later layer",
         "tags": ["format:json"]},
    ],
}


@pytest.fixture
def doc():
    """A fresh copy of the base catalogue document."""
    return copy.deepcopy(BASE)


@pytest.fixture
def write_json(tmp_path):
    """Write a document (or raw text) to tmp_path/name and return the path."""

    def write(content, name="cat.json"):
        p = tmp_path / name
        p.write_text(content if isinstance(content, str) else json.dumps(content), encoding="utf-8")
        return p

    return write


@pytest.fixture(autouse=True)
def _cache_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("STEERC_CACHE_DIR", str(tmp_path / "cache"))
