"""placeholder: sparsify loader (in progress)."""

from pathlib import Path

from .. import errors

NAME = "sparsify"


def sniff(path: Path) -> bool:
    return False


def load(path: Path, **_: object):
    errors.fail(errors.UNSUPPORTED, path, "format 'sparsify' is not implemented yet")
