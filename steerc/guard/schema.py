"""Which JSON Schemas the guard can enforce: problems as E47x diagnostics, before any compile.

xgrammar turns a schema into a grammar without a tokenizer (`Grammar.from_json_schema`), so a
schema is checked before any compile. Three sources of problems:
  * the schema is not JSON, or not a valid JSON Schema (jsonschema's meta-schema check);
  * it uses a keyword xgrammar 0.2.8 accepts but silently does not enforce (probed: the grammar
    is identical with and without it; tests/guard re-probe this list), or an external `$ref`;
  * xgrammar rejects it, or warns that it can only approximate it (overlapping `oneOf`).
The first two are pure Python and run in `steerc check`. The third needs `import xgrammar`,
which loads torch and transformers (seconds), so `check` reports it only from a cache keyed
by the schema's content; `compile` always asks xgrammar (and fills the cache).
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any, Iterator

from steerc.files.hashing import bytes_sha256, cached_text, store_text
from steerc.diagnostics import Diagnostic, Span

E_BAD_JSON = "E470"       # schema text is not JSON / not a valid JSON Schema
E_UNENFORCED = "E471"     # a keyword the guard would silently not enforce
E_REJECTED = "E472"       # xgrammar could not compile it (message translated)

# Keywords xgrammar 0.2.8 parses but does not enforce (grammar unchanged when present).
UNENFORCED_KEYWORDS = ("uniqueItems", "contains", "minContains", "maxContains", "propertyNames",
                       "dependentRequired", "dependentSchemas", "dependencies",
                       "if", "then", "else")
_LENGTH_BOUNDED_STRING = ("minLength", "maxLength")
_SCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
_SCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")
_SCHEMA_ONE = ("items", "additionalProperties", "not", "contains", "if", "then", "else",
               "unevaluatedProperties", "unevaluatedItems", "propertyNames", "additionalItems")


def _subschemas(node: Any, path: str) -> Iterator[tuple[str, dict]]:
    """Every (json-pointer, subschema dict) in `node`, depth first."""
    if not isinstance(node, dict):
        return
    yield path, node
    for key in _SCHEMA_MAPS:
        for name, sub in (node.get(key) or {}).items() if isinstance(node.get(key), dict) else ():
            yield from _subschemas(sub, f"{path}/{key}/{name}")
    for key in _SCHEMA_LISTS:
        for i, sub in enumerate(node.get(key) or []) if isinstance(node.get(key), list) else ():
            yield from _subschemas(sub, f"{path}/{key}/{i}")
    for key in _SCHEMA_ONE:
        if isinstance(node.get(key), dict):
            yield from _subschemas(node[key], f"{path}/{key}")
        elif key == "items" and isinstance(node.get(key), list):  # draft-07 tuple items
            for i, sub in enumerate(node[key]):
                yield from _subschemas(sub, f"{path}/items/{i}")


def _compile_capturing_warnings(text: str) -> tuple[str | None, list[str]]:
    """xgrammar's schema->grammar conversion; (error or None, C++ warning lines).

    xgrammar logs warnings from C++ straight to fd 2, so fd 2 is redirected to a file.
    """
    import xgrammar as xgr

    error = None
    with tempfile.TemporaryFile(mode="w+b") as log:
        saved = os.dup(2)
        os.dup2(log.fileno(), 2)
        try:
            xgr.Grammar.from_json_schema(text)
        except Exception as exc:  # xgrammar raises RuntimeError/ValueError with a C++ prefix
            error = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        log.seek(0)
        lines = log.read().decode("utf-8", "replace").splitlines()
    warnings = [ln for ln in lines if "Warning" in ln]
    return error, warnings


def _clean(msg: str) -> str:
    """Drop xgrammar's `[time] /project/cpp/file.cc:123: ` prefix."""
    if "] " in msg and ".cc:" in msg:
        msg = msg.split(".cc:", 1)[1].split(": ", 1)[-1]
    return msg.replace("Warning: ", "").strip()


def check_schema_supported(schema: str | dict, span: Span | None = None, *,
                           compile_grammar: bool = True) -> list[Diagnostic]:
    """Problems that stop the JSON guard from enforcing `schema` exactly (empty: supported).

    `schema` is JSON text or an already-parsed dict; `span` points at the spec's
    `enforce json schema` line. Every problem is an error diagnostic with a hint.
    The keyword checks are pure Python; xgrammar's own verdict (E472, approximations) needs
    `import xgrammar`, which loads torch and transformers (seconds): it is cached by the
    schema's content, and `compile_grammar=False` (`steerc check`) reports it only when
    cached, so `check` stays light and `compile` always asks xgrammar.
    """
    import jsonschema

    if isinstance(schema, str):
        try:
            doc = json.loads(schema)
        except json.JSONDecodeError as exc:
            return [Diagnostic(E_BAD_JSON, f"JSON schema is not valid JSON: {exc}", span,
                               "check the schema file with `python -m json.tool`")]
    else:
        doc = schema
    if not isinstance(doc, (dict, bool)):
        return [Diagnostic(E_BAD_JSON, "a JSON schema must be an object", span, None)]
    try:
        jsonschema.validators.validator_for(doc).check_schema(doc)
    except jsonschema.SchemaError as exc:
        return [Diagnostic(E_BAD_JSON, f"invalid JSON Schema: {exc.message}", span,
                           "see https://json-schema.org/understanding-json-schema")]
    problems = []
    for path, node in _subschemas(doc, "#") if isinstance(doc, dict) else ():
        for key in UNENFORCED_KEYWORDS:
            if key in node:
                problems.append(Diagnostic(
                    E_UNENFORCED, f"schema keyword '{key}' at {path} cannot be enforced while decoding",
                    span, f"remove '{key}' (validate it after generation instead)"))
        if any(k in node for k in _LENGTH_BOUNDED_STRING) and node.get("type", "string") == "string":
            # xgrammar 0.2.8's rule for a length-bounded string admits raw control characters,
            # which strict JSON parsers reject (tests/json/test_guard_strings.py).
            problems.append(Diagnostic(
                E_UNENFORCED, f"string length bounds at {path} cannot be enforced as valid JSON while decoding",
                span, "remove minLength/maxLength (validate them after generation instead)"))
        ref = node.get("$ref")
        if isinstance(ref, str) and not ref.startswith("#"):
            problems.append(Diagnostic(
                E_UNENFORCED, f"external $ref '{ref}' at {path} cannot be resolved by the guard",
                span, "inline the referenced schema under $defs and use '#/$defs/...'"))
    if problems:
        return problems
    text = json.dumps(doc)
    key = _verdict_key(text)
    known = cached_text(key)
    if known is None and not compile_grammar:
        return []
    if known is None:
        known = json.dumps(_xgrammar_verdict(text))
        store_text(key, known)
    return [Diagnostic(code, message, span, hint) for code, message, hint in json.loads(known)]


def _xgrammar_verdict(text: str) -> list[tuple[str, str, str]]:
    """(code, message, hint) of what xgrammar says about the schema `text` (empty: exact)."""
    error, warnings = _compile_capturing_warnings(text)
    if error:
        return [(E_REJECTED, f"the JSON guard cannot compile this schema: {_clean(error)}",
                 "simplify the schema; xgrammar 0.2.8 supports the common subset")]
    return [(E_UNENFORCED, f"the JSON guard can only approximate this schema: {_clean(w)}",
             "make the branches disjoint (e.g. a 'const' discriminator) or use anyOf")
            for w in warnings]


def _verdict_key(text: str) -> str:
    """Cache key of xgrammar's verdict: the schema, the xgrammar version and this file."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        xgr_version = version("xgrammar")
    except PackageNotFoundError:
        xgr_version = "none"
    with open(__file__, "rb") as f:
        here = bytes_sha256(f.read())
    return "xgrammar-verdict:" + bytes_sha256(f"{xgr_version}\n{here}\n{text}".encode())
