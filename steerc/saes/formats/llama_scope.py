"""placeholder: llama_scope loader (in progress)."""

from pathlib import Path

from .. import errors

NAME = "llama_scope"


def sniff(path: Path) -> bool:
    return False


def load(path: Path, **_: object):
    errors.fail(errors.UNSUPPORTED, path, "format 'llama_scope' is not implemented yet")
