"""A Hugging Face Hub cache laid out on disk, for tests that never touch the network.

    commit = put_repo(tmp / "hub", "org/tiny", {"config.json": path_or_bytes, ...})

The layout is huggingface_hub's own (`models--org--name/blobs/<sha256>`,
`snapshots/<commit>/<file>` symlinks into blobs, `refs/<ref>` holding the commit), so
`snapshot_download` with HF_HUB_OFFLINE=1 finds the files exactly as after a real download.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def repo_folder(cache: Path, repo: str) -> Path:
    """`<cache>/models--org--name`."""
    return Path(cache) / ("models--" + repo.replace("/", "--"))


def put_repo(cache: Path, repo: str, files: dict[str, Path | bytes], *, ref: str | None = "main",
             commit: str | None = None) -> str:
    """Store `files` (path in repo -> source file or bytes) as one commit of `repo`; point
    `refs/<ref>` at it (None: no ref, reachable by commit only). Returns the commit sha."""
    data = {name: src if isinstance(src, bytes) else Path(src).read_bytes() for name, src in files.items()}
    if commit is None:
        h = hashlib.sha1(repo.encode())
        for name in sorted(data):
            h.update(name.encode() + b"\0" + hashlib.sha256(data[name]).digest())
        commit = h.hexdigest()
    root = repo_folder(cache, repo)
    (root / "blobs").mkdir(parents=True, exist_ok=True)
    for name, content in data.items():
        blob = root / "blobs" / hashlib.sha256(content).hexdigest()
        if not blob.exists():
            blob.write_bytes(content)
        link = root / "snapshots" / commit / name
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(os.path.relpath(blob, link.parent))
    if ref is not None:
        (root / "refs").mkdir(exist_ok=True)
        (root / "refs" / ref).write_text(commit)
    return commit


def folder_files(folder: Path, prefix: str = "") -> dict[str, Path]:
    """Every file under `folder` as {prefix + relative path: file}."""
    folder = Path(folder)
    return {prefix + p.relative_to(folder).as_posix(): p for p in sorted(folder.rglob("*")) if p.is_file()}
