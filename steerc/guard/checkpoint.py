"""Write the JSON guard into a checkpoint: `custom_generate/{generate.py,requirements.txt,guard.json,schema.json}`.

transformers (>= 4.53) loads `custom_generate/generate.py` and replaces `model.generate` when
the checkpoint is loaded with `trust_remote_code=True`; `requirements.txt` is checked first.
"""

from __future__ import annotations

import os
from pathlib import Path

from steerc.compiler import ir
from steerc.compiler.codefiles import GUARD_DIR, GUARD_FILE, SHIPPED_GENERATE, REQUIREMENTS_FILE, SCHEMA_FILE
from steerc.diagnostics import DiagnosticError
from steerc.files.write import dumps_json, write_atomic
from steerc.guard.schema import check_schema_supported

# guard.json is always written: {"schema_file": "schema.json" | null, "source": ...};
# schema.json holds the schema verbatim (also usable as llama.cpp --json-schema-file).
# One constraint per line: transformers' check_python_requirements reads only the first
# `name<op>version` of a line, so "xgrammar>=0.2.8,<0.3" would skip the upper bound.
REQUIREMENTS = "xgrammar>=0.2.8\nxgrammar<0.3\n"
# config.json key naming the guard: the shipped model class (steerc/runtime/steered_model.py,
# same constant) carries custom_generate/ through save_pretrained and refuses to generate
# without it.
CONFIG_KEY = "steerc_json_guard"


def guarded_config(config: dict) -> dict:
    """`config` (a checkpoint's config.json) marked as needing the JSON guard to generate."""
    return {**config, CONFIG_KEY: True}


def write_guard(out_dir: str | Path, constraint: ir.JsonConstraint) -> list[Path]:
    """Write the guard files for `constraint` under `out_dir/custom_generate/`; returns them.

    Raises DiagnosticError (E47x) when the schema cannot be enforced. `generate.py` is the
    shipped_generate.py byte for byte; `guard.json` always (generate.py refuses to run without it);
    `schema.json` only for `enforce json schema`.
    """
    if constraint.schema is not None:
        problems = check_schema_supported(constraint.schema, constraint.span)
        if problems:
            raise DiagnosticError(problems)
    d = Path(out_dir) / GUARD_DIR
    d.mkdir(parents=True, exist_ok=True)
    written = [d / "generate.py", d / REQUIREMENTS_FILE, d / GUARD_FILE]
    write_atomic(written[0], SHIPPED_GENERATE.read_bytes())
    write_atomic(written[1], REQUIREMENTS)
    schema_file = d / SCHEMA_FILE
    if constraint.schema is not None:
        write_atomic(schema_file, constraint.schema)
        written.append(schema_file)
    elif os.path.exists(schema_file):
        schema_file.unlink()  # a stale schema would mislead vLLM/llama.cpp users
    cfg = {"schema_file": SCHEMA_FILE if constraint.schema is not None else None,
           "source": constraint.schema_path}
    write_atomic(written[2], dumps_json(cfg, GUARD_FILE, indent=2) + "\n")
    return written
