"""Guarded reads: the one way steerc reads a text or JSON input named by a user or a spec.

    raw = read_bytes(path, CATALOGUE)             # bytes, or DiagnosticError E100
    text = read_text(path, LOCK)                  # + UTF-8 decoding errors as diagnostics
    doc = read_json(path, MODEL_CONFIG, dict)     # + JSON errors, and the top-level type

Every read opens the path once and checks what it opened with `fstat` on that descriptor
(checking the path first and opening it after would let it be swapped in between): only
regular files are read, never a FIFO, a device (`/dev/zero` never ends), a socket or a
directory. The open is non-blocking, so a FIFO with no writer cannot hang the open itself.
Each kind of input has a size limit far above any real file of that kind, so a huge or
growing file is refused with a diagnostic instead of filling memory. Failures are
`DiagnosticError`s carrying the kind's own code, so each caller keeps its documented codes.
"""

from __future__ import annotations

import errno
import json
import os
import stat
from dataclasses import dataclass
from typing import Any, BinaryIO

from steerc.diagnostics import Diagnostic, DiagnosticError, Span

KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30
_CHUNK = 16 * MiB


@dataclass(frozen=True)
class Kind:
    """One kind of input: how messages name it, its size limit and its diagnostic codes
    (`code` when it cannot be read, `decode_code` when it is not UTF-8 / JSON / the right shape)."""

    what: str
    max_bytes: int
    code: str
    decode_code: str | None = None
    hint: str | None = None

    @property
    def bad_content_code(self) -> str:
        return self.decode_code or self.code


# The limits: each far above the largest real file of its kind (a 10k-rule spec is ~0.5 MB;
# a 1M-feature catalogue ~300 MB; a 405B model's shard index ~100 KB).
SPEC = Kind("spec", 64 * MiB, "E019", "E018", "check the path")
CATALOGUE = Kind("catalogue", 4 * GiB, "E100", "E101")
NEURONPEDIA = Kind("Neuronpedia export", 4 * GiB, "E100", "E101")
JSON_SCHEMA = Kind("schema file", 64 * MiB, "E207", "E219")
EXPECT_SCHEMA = Kind("schema file", 64 * MiB, "E509", "E509", "fix the schema and recompile")
LOCK = Kind("lock file", 256 * MiB, "E223", "E223", "regenerate it with `steerc check SPEC --write-lock`")
TEXTS = Kind("text file", 1 * GiB, "E508", "E508", "pass a UTF-8 text file")
MANIFEST = Kind("manifest", 256 * MiB, "E503", "E503", "recompile the checkpoint")
MODEL_CONFIG = Kind("model config", 64 * MiB, "E607", "E607", "check the JSON syntax of config.json")
SAE_CONFIG = Kind("SAE config", 64 * MiB, "E303", "E303")
SHARD_INDEX = Kind("shard index", 256 * MiB, "E603", "E603", "re-save the model with save_pretrained")
CODE = Kind("checkpoint code file", 64 * MiB, "E504", "E504", "recompile the checkpoint")
CACHE_SEAL = Kind("cache seal", 1 * MiB, "E100", "E100")
CORPUS = Kind("corpus file", 1 << 50, "E140", "E140", "pass text (.txt) or JSON-lines (.jsonl) files")  # streamed, never held whole

_TYPES = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISSOCK, "a socket"))


def file_type(mode: int) -> str:
    """What a stat mode names, in words ("a FIFO (named pipe)"), for messages."""
    return next((name for test, name in _TYPES if test(mode)), "not a regular file")


def _fail(kind: Kind, path: Any, reason: str, span: Span | None, hint: str | None = None) -> DiagnosticError:
    return DiagnosticError([Diagnostic(kind.code, f"cannot read {kind.what} '{path}': {reason}", span,
                                       hint or kind.hint)])


def open_regular(path: str | os.PathLike, kind: Kind, span: Span | None = None) -> BinaryIO:
    """`path` opened for binary reading (unbuffered), checked to be a regular file of at
    most `kind.max_bytes` on the opened descriptor. For readers that take only a header.

    Raises DiagnosticError (`kind.code`, at `span` when given) when the path cannot be
    opened (missing, no permission, a NUL or an over-long name), is not a regular file, or
    is larger than the limit."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise _fail(kind, path, "no such file", span,
                    hint=kind.hint or "check the path (relative paths are from the current directory)") from None
    except OSError as e:
        reason = "the name is too long" if e.errno == errno.ENAMETOOLONG else (e.strerror or str(e))
        raise _fail(kind, path, reason, span) from None
    except ValueError:  # a NUL in the path, or a lone surrogate that is no file-system byte
        raise _fail(kind, path, "the path contains a NUL or an unencodable character", span) from None
    st = os.fstat(fd)  # of what was opened: the path may have been swapped since
    if not stat.S_ISREG(st.st_mode) or st.st_size > kind.max_bytes:
        os.close(fd)
        if not stat.S_ISREG(st.st_mode):
            raise _fail(kind, path, f"not a regular file ({file_type(st.st_mode)})", span)
        raise _too_large(kind, path, span)
    return os.fdopen(fd, "rb", buffering=0)


def read_bytes(path: str | os.PathLike, kind: Kind, span: Span | None = None) -> bytes:
    """The bytes of the regular file `path`, at most `kind.max_bytes` of them (see
    `open_regular` for what is refused)."""
    with open_regular(path, kind, span) as f:
        return read_stream(f, kind, path, span)


def read_stream(f: BinaryIO, kind: Kind, name: Any = "<stdin>", span: Span | None = None) -> bytes:
    """All of binary stream `f` (stdin, or a file `open_regular` checked), refused past
    `kind.max_bytes`: a pipe fed from /dev/zero stops at the limit instead of filling memory."""
    chunks, total = [], 0
    try:
        while total <= kind.max_bytes:  # a file can grow while we read: the loop is the bound
            chunk = f.read(min(_CHUNK, kind.max_bytes + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
    except OSError as e:
        raise _fail(kind, name, e.strerror or str(e), span) from None
    if total > kind.max_bytes:
        raise _too_large(kind, name, span)
    return b"".join(chunks)


def _too_large(kind: Kind, path: Any, span: Span | None) -> DiagnosticError:
    return _fail(kind, path, f"larger than the {_size(kind.max_bytes)} limit for a {kind.what}", span,
                 hint=f"a real {kind.what} is far smaller: is this the right file?")


def _size(n: int) -> str:
    for unit, scale in (("GiB", GiB), ("MiB", MiB), ("KiB", KiB)):
        if n >= scale:
            return f"{n / scale:g} {unit}"
    return f"{n} bytes"


def decode(raw: bytes, path: Any, kind: Kind, span: Span | None = None, encoding: str = "utf-8") -> str:
    """`raw` decoded as UTF-8 (`utf-8-sig` drops a BOM); DiagnosticError (`kind.decode_code`)
    naming the first bad byte otherwise."""
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as e:
        raise DiagnosticError([Diagnostic(
            kind.bad_content_code, f"{kind.what} '{path}' is not UTF-8 text ({e.reason} at byte {e.start})",
            span, kind.hint or f"save the {kind.what} as UTF-8")]) from None


def read_text(path: str | os.PathLike, kind: Kind, span: Span | None = None, encoding: str = "utf-8") -> str:
    """`read_bytes` then `decode`."""
    return decode(read_bytes(path, kind, span), path, kind, span, encoding)


_JSON_NAMES = {dict: "an object", list: "an array", str: "a string", bool: "a boolean",
               int: "a number", float: "a number", type(None): "null"}


def json_type(value: Any) -> str:
    """A JSON value's type in words ("an array"), for messages."""
    return _JSON_NAMES.get(type(value), type(value).__name__)


def parse_json(text: str, path: Any, kind: Kind, want: type | None = dict, span: Span | None = None) -> Any:
    """JSON text -> value; DiagnosticError (`kind.decode_code`) when it is not JSON, nests
    deeper than the parser can go, or its top level is not of type `want`."""
    code = kind.bad_content_code
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise DiagnosticError([Diagnostic(code, f"{kind.what} '{path}' is not JSON: {e.msg} at line "
                                          f"{e.lineno} column {e.colno}", span, kind.hint)]) from None
    except (ValueError, RecursionError) as e:  # 5000-digit integers; 100k nested arrays
        reason = "nested too deeply" if isinstance(e, RecursionError) else str(e).splitlines()[0][:200]
        raise DiagnosticError([Diagnostic(code, f"{kind.what} '{path}' is not usable JSON: {reason}",
                                          span, kind.hint)]) from None
    if want is not None and not isinstance(doc, want):
        raise DiagnosticError([Diagnostic(
            code, f"{kind.what} '{path}' holds {json_type(doc)} at the top level; expected "
            f"{_JSON_NAMES.get(want, want.__name__)}", span, kind.hint)])
    return doc


def read_json(path: str | os.PathLike, kind: Kind, want: type | None = dict, span: Span | None = None) -> Any:
    """`read_text` then `parse_json` (a BOM is allowed)."""
    return parse_json(read_text(path, kind, span, "utf-8-sig"), path, kind, want, span)

