"""Write the JSON guard into a checkpoint: `custom_generate/{generate.py,requirements.txt,guard.json,schema.json}`.

transformers (>= 4.53) loads `custom_generate/generate.py` and replaces `model.generate` when
the checkpoint is loaded with `trust_remote_code=True`; `requirements.txt` is checked first.
"""

from __future__ import annotations

import json
from pathlib import Path

from steerc.compiler import ir
from steerc.compiler.codefiles import GUARD_DIR, GUARD_FILE, GUARD_TEMPLATE, REQUIREMENTS_FILE, SCHEMA_FILE
from steerc.diagnostics import DiagnosticError
from steerc.guard.schema import check_schema_supported

# guard.json is always written: {"schema_file": "schema.json" | null, "source": ...};
# schema.json holds the schema verbatim (also usable as llama.cpp --json-schema-file).
TEMPLATE = GUARD_TEMPLATE
# One constraint per line: transformers' check_python_requirements reads only the first
# `name<op>version` of a line, so "xgrammar>=0.2.8,<0.3" would skip the upper bound.
REQUIREMENTS = "xgrammar>=0.2.8\nxgrammar<0.3\n"


def write_guard(out_dir: str | Path, constraint: ir.JsonConstraint) -> list[Path]:
    """Write the guard files for `constraint` under `out_dir/custom_generate/`; returns them.

    Raises DiagnosticError (E47x) when the schema cannot be enforced. `generate.py` is the
    template byte for byte; `guard.json` always (generate.py refuses to run without it);
    `schema.json` only for `enforce json schema`.
    """
    if constraint.schema is not None:
        problems = check_schema_supported(constraint.schema, constraint.span)
        if problems:
            raise DiagnosticError(problems)
    d = Path(out_dir) / GUARD_DIR
    d.mkdir(parents=True, exist_ok=True)
    written = [d / "generate.py", d / REQUIREMENTS_FILE, d / GUARD_FILE]
    written[0].write_bytes(TEMPLATE.read_bytes())
    written[1].write_text(REQUIREMENTS, encoding="utf-8")
    schema_file = d / SCHEMA_FILE
    if constraint.schema is not None:
        schema_file.write_text(constraint.schema, encoding="utf-8")
        written.append(schema_file)
    elif schema_file.exists():
        schema_file.unlink()  # a stale schema would mislead vLLM/llama.cpp users
    cfg = {"schema_file": SCHEMA_FILE if constraint.schema is not None else None,
           "source": constraint.schema_path}
    written[2].write_text(json.dumps(cfg, indent=2) + "\n", encoding="utf-8")
    return written
