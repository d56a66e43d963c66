"""Size of a compiled output on disk, for the target benchmarks."""

from __future__ import annotations

from pathlib import Path


def sizes(out: Path) -> tuple[int, int]:
    """(bytes of every file under `out`, bytes of the files that are not hard links): what a
    copy or an upload moves, and what the compile wrote anew (the weights target hard-links
    untouched base shards)."""
    total = new = 0
    for p in out.rglob("*"):
        if p.is_file():
            st = p.stat()
            total += st.st_size
            new += st.st_size if st.st_nlink == 1 else 0
    return total, new
