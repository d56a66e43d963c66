"""Guarded writes: every file steerc writes is checked first, then written whole or not at all.

    write_atomic("steer.lock", text, inputs=[("the spec", "x.steer")])   # lock, reports
    with atomic_file(out, inputs=...) as tmp: sqlite3.connect(tmp) ...   # writers that need a path
    write_new(tmp_dir / "README.md", text)                               # inside a dir steerc made

An output path is refused (a diagnostic, nothing written) when it is empty or a name is
longer than the file system allows (E420), when it is an input of the command, inside one or
above one (E421: the spec, the files it uses, the base model, SAEs, catalogue, schemas),
when it is the working directory, the home directory or above either (E422), or when it
exists and is anything but a regular file (E424: a symlink, a device, a FIFO, a directory;
never followed, never replaced). Paths are compared after resolving symlinks on both sides.

A file is written to a temp file beside it (`.<name>.steerc-tmp-<pid>-*`), fsynced and
renamed over the destination, so a reader sees the old file or the new one, never half of
one. It keeps the replaced file's permission bits, else gets `0666 & ~umask` like any new
file. JSON goes through `dumps_json` (strict: a NaN or an infinity is E426, not `NaN` text).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import stat
import tempfile
from pathlib import Path
from typing import Iterable, Iterator

from steerc.diagnostics import Diagnostic, DiagnosticError

E_PATH = "E420"       # empty, NUL, or a name the file system cannot hold
E_INPUT = "E421"      # an input of the command, inside one, or above one
E_PLACE = "E422"      # the working directory, $HOME, `/`, or above them
E_SPECIAL = "E424"    # exists and is not a regular file
E_WRITE = "E425"      # the write itself failed (permissions, disk full, ...)
E_JSON = "E426"       # a non-finite number in a JSON document

# (what, path) pairs: "the spec's base model", "demo/model"
Inputs = Iterable[tuple[str, "str | os.PathLike"]]


def _fail(code: str, message: str, hint: str | None = None):
    raise DiagnosticError([Diagnostic(code, message, None, hint)])


def umask() -> int:
    """The process umask, read without changing it where /proc allows (os.umask can only be
    read by setting it, which would race with threads creating files)."""
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    old = os.umask(0o022)
    os.umask(old)
    return old


def new_dir_mode() -> int:
    """Permission bits of a directory created like `mkdir` creates one: 0777 & ~umask."""
    return 0o777 & ~umask()


def new_file_mode() -> int:
    """Permission bits of a file created like `open(..., "w")` creates one: 0666 & ~umask."""
    return 0o666 & ~umask()


def real(path: str | os.PathLike) -> Path:
    """`path` absolute with every symlink resolved (as far as it exists)."""
    return Path(os.path.realpath(os.path.abspath(os.fspath(path))))


def _name_max(parent: Path) -> int:
    while True:
        try:
            return os.pathconf(parent, "PC_NAME_MAX")
        except (OSError, ValueError):
            if parent == parent.parent:
                return 255
            parent = parent.parent


def _encloses(outer: Path, inner: Path) -> bool:
    return outer == inner or outer in inner.parents


def check_output_path(path: str | os.PathLike, inputs: Inputs = (), what: str = "output") -> Path:
    """The absolute path to write `path` at, after the checks every output takes (E420 empty
    or a name too long, E421 an input or inside or above one, E422 the working directory,
    $HOME, `/` or above them); symlinks resolved on both sides. Raises DiagnosticError."""
    text = os.fspath(path)
    if not str(text).strip():
        _fail(E_PATH, f"the {what} path is empty",
              "an unset shell variable? give a path, e.g. -o build/steered")
    if "\0" in str(text):
        _fail(E_PATH, f"the {what} path contains a NUL character")
    p = Path(os.path.abspath(text))
    limit = _name_max(p.parent)
    for part in p.parts[1:]:
        if len(os.fsencode(part)) > limit:
            _fail(E_PATH, f"the {what} path has a name of {len(os.fsencode(part))} bytes "
                          f"('{part[:40]}...'); the file system allows {limit}",
                  "choose a shorter name")
    r = real(p)
    for label, inp in inputs:
        if inp is None or not os.fspath(inp):
            continue
        ri = real(inp)
        if _encloses(r, ri):
            where = "is" if r == ri else "contains"
            _fail(E_INPUT, f"the {what} {p} {where} {label} ({inp}); steerc never writes over "
                           "its inputs", "choose another path")
        if _encloses(ri, r):
            _fail(E_INPUT, f"the {what} {p} is inside {label} ({inp}); steerc never writes "
                           "into its inputs", "choose a path outside it")
    places = [("the working directory", os.getcwd())]
    home = os.environ.get("HOME")
    if home:
        places.append(("the home directory", home))
    for label, place in places:
        if _encloses(r, real(place)):
            what_it_is = "is" if r == real(place) else "contains"
            _fail(E_PLACE, f"the {what} {p} {what_it_is} {label}; steerc never replaces it",
                  "choose a new path below it, e.g. -o build/steered")
    return p


def replaceable_mode(path: Path, what: str = "output") -> int | None:
    """Permission bits of the regular file at `path`, None when nothing is there; E424 for
    anything else (never followed: a symlink is refused, not its target written)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise write_error(path, e, what) from None
    if stat.S_ISREG(st.st_mode):
        return stat.S_IMODE(st.st_mode)
    kind = ("a symbolic link" if stat.S_ISLNK(st.st_mode) else "a directory" if stat.S_ISDIR(st.st_mode)
            else "a FIFO" if stat.S_ISFIFO(st.st_mode) else "a socket" if stat.S_ISSOCK(st.st_mode)
            else "a device")
    _fail(E_SPECIAL, f"the {what} {path} exists and is {kind}; steerc only replaces a regular file",
          "choose another path")


def check_output_file(path: str | os.PathLike, inputs: Inputs = (), what: str = "output") -> Path:
    """Every check `atomic_file` makes before writing, and whether the nearest existing
    directory above `path` is writable: for commands that run long before they write
    (`verify --json`), so a bad path fails first, not after the work. Returns the path."""
    p = check_output_path(path, inputs, what)
    replaceable_mode(p, what)
    d = p.parent
    while not os.path.lexists(d) and d != d.parent:
        d = d.parent
    if not os.path.isdir(d) or not os.access(d, os.W_OK | os.X_OK):
        raise write_error(p, PermissionError(13, f"{d} is not a writable directory"), what)
    return p


def write_error(path: str | os.PathLike, e: OSError, what: str = "output") -> DiagnosticError:
    """E425 for an OSError while writing `path` (permissions, disk full, a name too long)."""
    return DiagnosticError([Diagnostic(E_WRITE, f"cannot write the {what} {path}: "
                                       f"{e.strerror or e}", None,
                                       "nothing was written there; fix the path or permissions")])


def tmp_prefix(name: str) -> str:
    """Prefix of a temp entry beside `name`; the name is cut so the temp name stays legal."""
    return f".{name[:100]}.steerc-tmp-{os.getpid()}-"


def _fsync_dir(d: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(d, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike, inputs: Inputs = (), what: str = "output") -> Iterator[Path]:
    """Yield a temp path beside `path` (an empty file) for the caller to fill; on success
    fsync it and rename it over `path` (checked as `check_output_path` and
    `replaceable_mode` say, before and again just before the rename); on failure remove it.
    A writer that removes the temp file writes nothing. The temp name keeps `path`'s
    suffix (writers that pick a format by it). Missing parent directories are created.
    OSError becomes E425."""
    p = check_output_path(path, inputs, what)
    mode = replaceable_mode(p, what)  # before creating any missing parent: a refusal leaves nothing
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=tmp_prefix(p.name), suffix=p.suffix[:16], dir=p.parent)
        os.close(fd)
    except OSError as e:
        raise write_error(p, e, what) from None
    try:
        yield Path(tmp)
        if not os.path.lexists(tmp):
            return
        fd = os.open(tmp, os.O_RDONLY | os.O_NOFOLLOW)
        try:
            os.fsync(fd)
            os.fchmod(fd, new_file_mode() if mode is None else mode)
        finally:
            os.close(fd)
        replaceable_mode(p, what)  # whatever appeared there meanwhile is refused too
        os.replace(tmp, p)
        _fsync_dir(p.parent)
    except OSError as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise write_error(p, e, what) from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_atomic(path: str | os.PathLike, data: str | bytes, inputs: Inputs = (),
                 what: str = "output") -> Path:
    """Write `data` (str: UTF-8) to `path` through `atomic_file`; returns the path written."""
    blob = data.encode("utf-8") if isinstance(data, str) else data
    with atomic_file(path, inputs, what) as tmp:
        with open(tmp, "wb") as f:
            f.write(blob)
    return Path(os.path.abspath(path))


def open_new(path: str | os.PathLike):
    """A new file at `path` for binary writing (unbuffered), created like `open(..., "x")`
    but never through a symlink; for files inside a directory steerc created itself."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    return os.fdopen(os.open(path, flags, 0o666), "wb", buffering=0)


def write_new(path: str | os.PathLike, data: str | bytes) -> None:
    """Write `data` (str: UTF-8) as a new file (`open_new`)."""
    with open_new(path) as f:
        f.write(data.encode("utf-8") if isinstance(data, str) else data)


def copy_new(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    """Copy the content of regular file `src` (symlinks followed) into a new file `dst`,
    kernel side where the platform can. A non-regular `src` (a FIFO, a device) is OSError
    EINVAL, never read."""
    from steerc.files.filecopy import copy_range_at

    sfd = os.open(src, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0))
    try:
        st = os.fstat(sfd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(22, f"{src} is not a regular file")
        with open_new(dst) as out:
            copy_range_at(sfd, 0, out.fileno(), 0, st.st_size)
    finally:
        os.close(sfd)


def link_or_copy(src: str | os.PathLike, dst: str | os.PathLike) -> str:
    """Put `src`'s content at new path `dst`: a hard link to the real file behind `src`
    (symlinks resolved first, so the output holds the file, never a link to elsewhere),
    else a copy where linking fails. Only a regular file is linked or copied: anything
    else (a FIFO, a device, a directory, behind a symlink or not) is E620. Returns "link"
    or "copy"."""
    target = real(src)
    if not stat.S_ISREG(os.stat(target).st_mode):
        _fail("E620", f"{src} is not a regular file" + (f" (it resolves to {target})" if
                                                        target != Path(os.path.abspath(src)) else ""),
              "an input file must be a regular file (or a symlink to one)")
    try:
        os.link(target, dst, follow_symlinks=False)
        return "link"
    except OSError:
        copy_new(target, dst)
        return "copy"


def _non_finite_at(obj, path: str = "$") -> str | None:
    if isinstance(obj, float) and not math.isfinite(obj):
        return path
    if isinstance(obj, dict):
        items = obj.items()
    elif isinstance(obj, (list, tuple)):
        items = enumerate(obj)
    else:
        return None
    for k, v in items:
        found = _non_finite_at(v, f"{path}[{k}]" if isinstance(k, int) else f"{path}.{k}")
        if found:
            return found
    return None


def dumps_json(obj, what: str, **kwargs) -> str:
    """`json.dumps(obj, **kwargs)` as strict JSON: a NaN or an infinity anywhere is E426
    naming its JSON path (Python would write `NaN`/`Infinity`, which is not JSON)."""
    try:
        return json.dumps(obj, allow_nan=False, **kwargs)
    except ValueError:
        where = _non_finite_at(obj) or "$"
        _fail(E_JSON, f"{what} would hold a non-finite number at {where}; JSON has no NaN or "
                      "infinity", "a computed value overflowed: see the rule or input behind it")

