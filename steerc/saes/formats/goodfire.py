"""placeholder: goodfire loader (in progress)."""

from pathlib import Path

from .. import errors

NAME = "goodfire"


def sniff(path: Path) -> bool:
    return False


def load(path: Path, **_: object):
    errors.fail(errors.UNSUPPORTED, path, "format 'goodfire' is not implemented yet")
