"""`build_index`: a JSON catalogue (file or document) -> a `.sqlite` index file."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from steerc.catalogue.index import write_index
from steerc.catalogue.validate import canonical_sha256, read_catalogue_json, validate_catalogue
from steerc.diagnostics import Diagnostic, DiagnosticError
from steerc.files.write import Inputs, atomic_file

E_WRITE = "E113"


def build_index(source: str | os.PathLike | dict, out_path: str | os.PathLike, *, progress: bool = True,
                sha256: str | None = None, source_name: str | None = None, fts: bool | None = None,
                validate: bool = True, inputs: Inputs = ()) -> Path:
    """Validate a catalogue and write its SQLite index to `out_path` (replaced atomically,
    through `files.write.atomic_file`: never over the source or another of `inputs`, a
    symlink or a special file).

    `source` is a JSON catalogue file or an in-memory document (e.g. from
    `import_neuronpedia`). The index records the source's sha256: the file's bytes, or the
    canonical JSON of a document (`canonical_sha256`) unless `sha256` is given.
    `fts=False` builds without FTS5 (the LIKE fallback); `validate=False` skips validating a
    document the caller has just validated. Raises DiagnosticError.
    """
    out = Path(out_path)
    if isinstance(source, dict):
        name = source_name or "<catalogue>"
        diags = validate_catalogue(source, name) if validate else []
        if diags:
            raise DiagnosticError(diags)
        doc, digest = source, sha256 or canonical_sha256(source)
    else:
        doc, digest = read_catalogue_json(Path(source))
        name = source_name or str(source)
    if not isinstance(source, dict):
        inputs = [("the source catalogue", source), *inputs]
    try:
        with atomic_file(out, inputs, "catalogue index") as tmp:
            con = sqlite3.connect(tmp)
            try:
                write_index(con, doc, sha256=sha256 or digest, source=name, progress=progress, fts=fts)
            finally:
                con.close()
    except sqlite3.Error as e:  # the temp file is removed by atomic_file
        raise DiagnosticError([Diagnostic(E_WRITE, f"cannot write catalogue index {out}: {e}")]) from None
    return out
