"""placeholder: openai loader (in progress)."""

from pathlib import Path

from .. import errors

NAME = "openai"


def sniff(path: Path) -> bool:
    return False


def load(path: Path, **_: object):
    errors.fail(errors.UNSUPPORTED, path, "format 'openai' is not implemented yet")
