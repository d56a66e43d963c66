"""Replace one `## Heading` section of BENCHMARKS.md, leaving the other sections alone.

Each benchmark owns one section; `--write` rewrites only that one.
"""

from __future__ import annotations

import re
from pathlib import Path


def write_section(path: Path, section: str) -> None:
    """Replace (or append) the section of `path` whose heading is `section`'s first line."""
    heading = section.splitlines()[0]
    assert heading.startswith("## "), heading
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    pattern = re.compile(rf"^{re.escape(heading)}\n.*?(?=^## |\Z)", re.S | re.M)
    section = section.rstrip("\n") + "\n\n"
    if pattern.search(text):
        text = pattern.sub(lambda _: section, text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text.rstrip("\n") + "\n", encoding="utf-8")
