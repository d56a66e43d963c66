"""Every module of steerc ships: `[tool.setuptools.packages.find]` only finds folders with an
`__init__.py`, so a package folder without one would be left out of a wheel silently (an
editable install, and so every other test, would not notice)."""

from __future__ import annotations

from pathlib import Path

from setuptools import find_packages

ROOT = Path(__file__).resolve().parents[1]


def test_every_python_folder_is_a_found_package():
    found = {p.replace(".", "/") for p in find_packages(str(ROOT), include=["steerc*"])}
    folders = {str(f.parent.relative_to(ROOT)) for f in (ROOT / "steerc").rglob("*.py")}
    assert folders <= found, sorted(folders - found)
