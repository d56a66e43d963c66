"""Shared helpers for resolve tests: a spec writer over the committed fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

from steerc.compiler.load import load
from steerc.diagnostics import DiagnosticError

FIX = Path(__file__).resolve().parents[1] / "fixtures"
HEADER = f'''model "{FIX / 'model'}"
sae res2 = "{FIX / 'sae_res'}"
catalogue "{FIX / 'catalogue.json'}"
'''
HEADER2 = HEADER + f'sae mlp = "{FIX / "sae_mlp"}"\n'


@pytest.fixture(autouse=True)
def _cache_dir(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("STEERC_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture
def spec(tmp_path):
    """spec(body, header=HEADER, name="s.steer") -> path of a written spec."""

    def write(body: str, header: str = HEADER, name: str = "s.steer") -> Path:
        p = tmp_path / name
        p.write_text(header + body, encoding="utf-8")
        return p

    return write


def codes(path, **kw) -> list[str]:
    """Diagnostic codes of loading `path` (errors and warnings), in order."""
    try:
        return [d.code for d in load(path, **kw).diagnostics]
    except DiagnosticError as e:
        return [d.code for d in e.diagnostics]


def errors(path, **kw) -> list:
    """The diagnostics of a spec that must fail."""
    with pytest.raises(DiagnosticError) as ei:
        load(path, **kw)
    return ei.value.diagnostics
