"""Output directories (a compiled checkpoint): checked, built beside their place, moved in whole.

    with atomic_dir("build/bot", force=True, inputs=program_inputs(program)) as tmp:
        ...write every file into tmp...

`check_output_dir` applies `write.check_output_path`'s rules (never empty, never an input or
inside or above one, never the working or home directory or above them), then: an existing
path is refused without `force` (E401); with `force` only a directory steerc wrote is
replaced, one that holds a `steerc-manifest.json` of a compile (or an empty directory:
nothing to lose); anything else, a symlink, a file, a device, a directory of the user's,
is E423. The checks run again just before the final rename.

The temp dir is `.{name}.steerc-tmp-{pid}-*` beside the output; ones left by a killed compile
(dead pid) are removed by the next compile to the same output. Its permission bits are
`0777 & ~umask`, like `mkdir`'s. An OSError (disk full...) is E610.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import json
import os
import shutil
import stat
import tempfile
from pathlib import Path
from typing import Iterator

from steerc.diagnostics import Diagnostic, DiagnosticError
from steerc.files.write import Inputs, check_output_path, new_dir_mode, tmp_prefix

E_NOT_OURS = "E423"
MANIFEST = "steerc-manifest.json"  # steerc.compiler.manifest.MANIFEST (a test keeps them equal)
_MANIFEST_MAX = 256 << 20  # bytes: a manifest lists tensors and rules, not weights


def write_failed(out: Path, e: OSError) -> DiagnosticError:
    """E610 for an OSError while writing the output (disk full, permissions, ...)."""
    why = e.strerror or str(e)
    return DiagnosticError([Diagnostic("E610", f"cannot write {out}: {why}", None,
                                       "nothing was written there; free space or fix permissions "
                                       "and compile again")])


def is_compiled_checkpoint(d: Path) -> bool:
    """Whether directory `d` holds a compile's manifest: a regular `steerc-manifest.json`
    (not a symlink) that is a JSON object naming steerc as its compiler."""
    p = d / MANIFEST
    try:
        st = os.lstat(p)
        if not stat.S_ISREG(st.st_mode) or st.st_size > _MANIFEST_MAX:
            return False
        with open(p, "rb") as f:
            doc = json.loads(f.read(_MANIFEST_MAX))
    except (OSError, ValueError):
        return False
    return isinstance(doc, dict) and isinstance(doc.get("compiler"), dict) \
        and doc["compiler"].get("name") == "steerc" and "schema_version" in doc


def _exists_refused(out: Path, why: str = "already exists") -> DiagnosticError:
    return DiagnosticError([Diagnostic("E401", f"output directory {out} {why}", None,
                                       "pass --force to replace it")])


def check_replace(out: Path, force: bool) -> None:
    """Refuse to replace what stands at `out` (nothing there passes): E401 without `force`;
    E423 with it unless `out` is a directory steerc wrote, or an empty one."""
    try:
        st = os.lstat(out)
    except FileNotFoundError:
        return
    except OSError as e:
        raise write_failed(out, e) from None
    if not force:
        raise _exists_refused(out)
    if stat.S_ISLNK(st.st_mode):
        kind = "a symbolic link"
    elif not stat.S_ISDIR(st.st_mode):
        kind = "not a directory"
    else:
        try:
            empty = not any(os.scandir(out))
        except OSError as e:
            raise write_failed(out, e) from None
        if empty or is_compiled_checkpoint(out):
            return
        kind = f"a directory without a {MANIFEST} (not a checkpoint steerc wrote)"
    raise DiagnosticError([Diagnostic(
        E_NOT_OURS, f"--force will not replace {out}: it is {kind}", None,
        "--force only replaces a checkpoint written by `steerc compile`; choose another -o, "
        "or remove it yourself if it should go")])


def check_output_dir(out: str | os.PathLike, force: bool = False, inputs: Inputs = ()) -> Path:
    """The absolute output directory path after every check (module docstring); raises
    DiagnosticError (E420-E423, E401, E610)."""
    p = check_output_path(out, inputs, "output directory")
    check_replace(p, force)
    return p


@contextlib.contextmanager
def atomic_dir(out: str | os.PathLike, force: bool = False, inputs: Inputs = ()) -> Iterator[Path]:
    """Yield an empty temp dir beside `out`; on success move it to `out` (replacing an
    existing `out` only with `force`, and only as `check_replace` allows), on any failure
    remove it so nothing is left behind."""
    out = check_output_dir(out, force, inputs)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale(out)
        tmp = Path(tempfile.mkdtemp(prefix=tmp_prefix(out.name), dir=out.parent))
        os.chmod(tmp, new_dir_mode())  # mkdtemp makes it 0700
    except OSError as e:
        raise write_failed(out, e) from None
    try:
        yield tmp
        _move_into_place(tmp, out, force)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise write_failed(out, e) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _move_into_place(tmp: Path, out: Path, force: bool) -> None:
    """rename(tmp, out), moving an existing `out` aside first; retried when a concurrent
    compile puts its own `out` in place between the two renames (last one wins, whole)."""
    for _ in range(20):
        old = None
        if os.path.lexists(out):
            if not force:
                raise _exists_refused(out, "appeared while compiling (another compile?)")
            check_replace(out, force)
            old = out.parent / f".{out.name[:100]}.steerc-old-{os.getpid()}-{os.urandom(4).hex()}"
            with contextlib.suppress(FileNotFoundError):
                os.replace(out, old)
        try:
            os.replace(tmp, out)
        except OSError as e:
            if e.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
            continue
        finally:
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        return
    raise OSError(errno.EBUSY, "output directory kept changing under concurrent compiles")


def _remove_stale(out: Path) -> None:
    """Remove temp/old dirs beside `out` whose compile process is gone (SIGKILL, power loss)."""
    stem = "." + out.name[:100]
    for p in out.parent.glob(f"{glob.escape(stem)}.steerc-*-*"):
        pid = p.name[len(f"{stem}.steerc-"):].split("-")[1]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
        except OSError:
            pass  # alive, owned by someone else
