"""What a resolved program reads: the paths no output of steerc may replace, enter or contain.

    atomic_dir(out, force, inputs=program_inputs(program))
    write_lock(lock, path, inputs=program_inputs(program))

Each input is `(what, path)`, `what` saying in a diagnostic which input it is.
"""

from __future__ import annotations

import os

from steerc.compiler.ir import Program


def program_inputs(program: Program, extra: tuple[tuple[str, str], ...] = ()) -> list[tuple[str, str]]:
    """The spec, every spec it uses, the base model folder (when local), each SAE, the
    catalogue, every JSON schema and prompt file, plus `extra` (e.g. a lock file that is read)."""
    out = [("the spec", program.spec_file)]
    out += [("a spec it uses", f) for f in program.files if f != program.spec_file]
    if program.model and os.path.exists(program.model):
        out.append(("the spec's base model", program.model))
    out += [(f"SAE '{b.alias}'", b.path) for b in program.saes if b.direction is None]
    out += [(f"a file of direction '{b.direction.name}'", p) for b in program.saes if b.direction
            for p in b.direction.paths]
    if program.catalogue:
        out.append(("the catalogue", program.catalogue))
    if program.json is not None and program.json.schema_path:
        out.append(("a JSON schema", program.json.schema_path))
    out += [("a JSON schema", e.arg) for e in program.expects if e.kind == "matches_schema" and e.arg]
    out += [("a prompt file", e.texts) for e in program.expects if e.texts]
    return out + list(extra)
