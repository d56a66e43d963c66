"""Where a SARIF report's `%SRCROOT%` lies, and each file's URI relative to it.

Code scanning resolves a result's `artifactLocation.uri` against the checkout, so every
URI is relative to one root per report: the working directory when the spec named on the
command line lies inside it (run steerc from the repository root and the URIs are the
repository's paths); otherwise the repository holding the spec (the nearest directory
above it with a `.git` entry), else the spec's own directory. A file outside that root
(a `use`d spec elsewhere) gets a `../` path relative to it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path, PurePath
from urllib.parse import quote

# RFC 3986 pchar minus ":" (so a first segment never reads as a scheme) plus "/".
_SAFE = "/-._~!$&'()*+,;=@"


@dataclass(frozen=True)
class SrcRoot:
    """The directory `%SRCROOT%` stands for, and why it was chosen ("cwd", "git", "spec")."""

    path: str
    kind: str

    def uri(self) -> str:
        """The root as an absolute `file:` URI ending in `/` (SARIF's originalUriBaseIds)."""
        u = Path(self.path).as_uri()
        return u if u.endswith("/") else u + "/"


def _real(path: str, cwd: str) -> str:
    try:  # realpath, not resolve(): a symlink loop or a NUL in a reported path is no error
        return os.path.realpath(os.path.join(cwd, path))
    except (ValueError, OSError):
        return os.path.normpath(os.path.join(cwd, path))


def _inside(path: str, root: str) -> bool:
    try:
        return os.path.commonpath([path, root]) == root
    except ValueError:  # different drives
        return False


def find_root(spec: str | None, cwd: str | None = None) -> SrcRoot:
    """The root for a report about `spec` (a path as given on the command line)."""
    base = os.path.realpath(cwd or os.getcwd())
    if spec is None:
        return SrcRoot(base, "cwd")
    real = _real(spec, base)
    if _inside(real, base):
        return SrcRoot(base, "cwd")
    start = os.path.dirname(real)
    d = start
    while True:
        try:
            if os.path.lexists(os.path.join(d, ".git")):
                return SrcRoot(d, "git")
        except (ValueError, OSError):
            break
        parent = os.path.dirname(d)
        if parent == d:
            break
        d = parent
    return SrcRoot(start, "spec")


def relative_uri(file: str, root: SrcRoot, cwd: str | None = None) -> str:
    """`file` (relative to `cwd`, or absolute) as a percent-encoded URI relative to `root`."""
    base = os.path.realpath(cwd or os.getcwd())
    real = _real(file, base)
    try:
        rel = os.path.relpath(real, root.path)
    except ValueError:  # another drive: no relative path exists, keep the name at least
        rel = os.path.basename(real)
    return quote(PurePath(rel).as_posix(), safe=_SAFE)
