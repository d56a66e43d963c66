"""Files a spec names beyond specs and SAEs: E207 when one is missing, JSON schemas (E219)."""

from __future__ import annotations

import os

from steerc.compiler import ast
from steerc.compiler.locate import spec_relative
from steerc.diagnostics import Collector, DiagnosticError
from steerc.files import read


def missing_file(col: Collector, s: ast.Str, what: str, resolved: str) -> None:
    """E207 at the string that names a missing file."""
    col.error("E207", f"{what} not found: '{resolved}'", s.span,
              f"paths in a spec are relative to the spec file's directory "
              f"('{os.path.dirname(s.span.file) or '.'}')")


def load_schema(s: ast.Str, col: Collector) -> tuple[str, str] | None:
    """(resolved path, text) of a JSON schema file, checked with jsonschema; None after
    reporting why not to `col`."""
    path = spec_relative(s.span, s.value)
    if "\0" not in path and not os.path.lexists(path):
        missing_file(col, s, "schema file", path)
        return None
    try:
        text = read.read_text(path, read.JSON_SCHEMA, s.span)
        schema = read.parse_json(text, path, read.JSON_SCHEMA, want=None, span=s.span)
    except DiagnosticError as e:  # not a regular file, too large, not UTF-8, not JSON
        col.diagnostics.extend(e.diagnostics)
        return None
    import jsonschema  # ~0.1 s to import: only specs that name a schema pay for it

    try:
        cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
        cls.check_schema(schema)
    except jsonschema.SchemaError as e:
        col.error("E219", f"invalid JSON schema '{path}' at {e.json_path}: {e.message}", s.span,
                  f"checked against the {cls.__name__.replace('Validator', '')} metaschema")
        return None
    return path, text
