"""Every JSON schema steerc ships parses without duplicate keys (json.loads keeps the last
one silently, so a duplicated property would quietly drop the first definition)."""

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = sorted({p.resolve() for p in [*ROOT.glob("steerc/**/*.schema.json"), *ROOT.glob("specs/schemas/*.json")]})


def _no_dupes(pairs):
    keys = [k for k, _ in pairs]
    dupes = sorted({k for k in keys if keys.count(k) > 1})
    assert not dupes, f"duplicate keys {dupes}"
    return dict(pairs)


@pytest.mark.parametrize("path", SCHEMAS, ids=lambda p: p.name)
def test_schema_has_no_duplicate_keys(path):
    json.loads(path.read_text(encoding="utf-8"), object_pairs_hook=_no_dupes)
