"""Reading and validating a JSON catalogue: the JSON Schema, then the rules a schema can't say.

Every problem becomes a `Diagnostic` (E1xx) whose message starts with the file name and the
JSON path of the problem, e.g. `cat.json: $.features[12].max_activation: -1 is less than
the minimum of 0`. jsonschema decides validity; because it costs ~100 us per feature, each
feature first goes through `feature_is_plainly_valid`, a check that accepts only features
the schema accepts (a property test holds it to that) and hands everything else to
jsonschema for the verdict and the message.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema

from steerc.catalogue.types import normalize_name
from steerc.diagnostics import Diagnostic, DiagnosticError, Span, did_you_mean
from steerc.files import read

CATALOGUE_VERSION = 1
MAX_DIAGNOSTICS = 50  # past this many, one summary line: a broken 1M-line file must not print 1M errors

E_MISSING = "E100"  # file missing or unreadable (steerc/files/read.py CATALOGUE)
E_JSON = "E101"  # not valid JSON
E_SCHEMA = "E102"  # JSON Schema violation
E_VERSION = "E103"  # unsupported catalogue version
E_DUPLICATE = "E104"  # two entries for one (sae, index)
E_COLLISION = "E105"  # a label/alias equal to another feature's label in the same SAE
E_UNDECLARED = "E106"  # a feature names an SAE the catalogue does not declare
E_RANGE = "E107"  # index >= d_sae
E_DUP_SAE = "E108"  # an SAE id declared twice
E_TOO_MANY = "E109"  # diagnostics were cut off


@lru_cache(maxsize=1)
def catalogue_schema() -> dict:
    """The catalogue JSON Schema (draft 2020-12); also at specs/schemas/catalogue.schema.json."""
    text = resources.files("steerc.catalogue").joinpath("catalogue.schema.json").read_text("utf-8")
    return json.loads(text)


@lru_cache(maxsize=1)
def _validators() -> tuple[jsonschema.Draft202012Validator, jsonschema.Draft202012Validator]:
    schema = catalogue_schema()
    whole = jsonschema.Draft202012Validator(schema)
    feature = jsonschema.Draft202012Validator({"$ref": "#/$defs/feature", "$defs": schema["$defs"]})
    return whole, feature


def _pattern(defn: dict) -> re.Pattern:
    return re.compile(defn["pattern"])


_DEFS = catalogue_schema()["$defs"]
_IDENT = _pattern(_DEFS["identifier"])
_NAME = _pattern(_DEFS["name"])
_NAME_MAX = _DEFS["name"]["maxLength"]
_TAG = _pattern(_DEFS["feature"]["properties"]["tags"]["items"])
_FEATURE_KEYS = frozenset(_DEFS["feature"]["properties"])
_CONTEXT_KEYS = frozenset({"text", "activation"})


_NUMBERS = (int, float)  # exact types: bool is an int subclass, and jsonschema rejects it
_INF = math.inf
_OK_IDS: set[str] = set()  # memo: SAE ids and tags already known to match their patterns
_OK_TAGS: set[str] = set()


def _is_name(x: Any) -> bool:
    # `not x.isspace()` on a non-empty str is the schema's pattern "\\S" (re's \\s is str.isspace)
    return type(x) is str and 0 < len(x) <= _NAME_MAX and not x.isspace()


def _is_tag(t: Any) -> bool:
    if type(t) is not str:
        return False
    if t not in _OK_TAGS:
        if _TAG.search(t) is None:
            return False
        _OK_TAGS.add(t)
    return True


def _is_stat(x: Any, upper: float) -> bool:
    return x is None or (type(x) in _NUMBERS and 0 <= x <= upper and x != _INF)


def feature_is_plainly_valid(f: Any) -> bool:
    """True only for features the schema accepts (False means: ask jsonschema)."""
    if type(f) is not dict or not f.keys() <= _FEATURE_KEYS:
        return False
    sae, idx = f.get("sae"), f.get("index")
    if type(sae) is not str or type(idx) is not int or idx < 0 or not _is_name(f.get("label")):
        return False
    if sae not in _OK_IDS:
        if _IDENT.search(sae) is None:
            return False
        _OK_IDS.add(sae)
    if len(f) == 3:
        return True
    if "aliases" in f:
        aliases = f["aliases"]
        if type(aliases) is not list or not all(map(_is_name, aliases)):
            return False
    if "description" in f and type(f["description"]) is not str:
        return False
    if "tags" in f:
        tags = f["tags"]
        if type(tags) is not list or not all(map(_is_tag, tags)):
            return False
    if "max_activation" in f and not _is_stat(f["max_activation"], _INF):
        return False
    if "density" in f and not _is_stat(f["density"], 1.0):
        return False
    if "top_contexts" in f:
        ctx = f["top_contexts"]
        if type(ctx) is not list:
            return False
        for c in ctx:
            if type(c) is not dict or c.keys() != _CONTEXT_KEYS or type(c["text"]) is not str:
                return False
            a = c["activation"]
            if type(a) not in _NUMBERS or not -_INF < a < _INF:
                return False
    return True


class _Sink:
    """Collects diagnostics, keeping the first MAX_DIAGNOSTICS and counting the rest."""

    def __init__(self, fname: str):
        self.fname = fname
        self.diags: list[Diagnostic] = []
        self.dropped = 0

    def add(self, code: str, path: str, message: str, hint: str | None = None) -> None:
        if len(self.diags) >= MAX_DIAGNOSTICS:
            self.dropped += 1
            return
        self.diags.append(Diagnostic(code, f"{self.fname}: {path}: {message}", None, hint))

    def result(self) -> list[Diagnostic]:
        if self.dropped:
            msg = f"{self.fname}: {self.dropped} more problem(s) not shown"
            return self.diags + [Diagnostic(E_TOO_MANY, msg)]
        return self.diags


def _json_path(prefix: str, error: jsonschema.ValidationError) -> str:
    return prefix + error.json_path[1:]  # json_path starts with "$"


def _schema_errors(doc: Any, sink: _Sink) -> None:
    whole, feature = _validators()
    features = doc.get("features") if isinstance(doc, dict) else None
    if isinstance(features, list):
        # Validate the frame with an empty feature list, then each feature on its own.
        frame = dict(doc, features=[])
        for e in sorted(whole.iter_errors(frame), key=lambda e: e.json_path):
            sink.add(E_SCHEMA, _json_path("$", e), e.message)
        for i, f in enumerate(features):
            if feature_is_plainly_valid(f):
                continue
            for e in sorted(feature.iter_errors(f), key=lambda e: e.json_path):
                sink.add(E_SCHEMA, _json_path(f"$.features[{i}]", e), e.message)
    else:
        for e in sorted(whole.iter_errors(doc), key=lambda e: e.json_path):
            sink.add(E_SCHEMA, _json_path("$", e), e.message)


def _semantic_errors(doc: dict, sink: _Sink) -> None:
    d_sae: dict[str, int] = {}
    for i, s in enumerate(doc["saes"]):
        if s["id"] in d_sae:
            sink.add(E_DUP_SAE, f"$.saes[{i}].id", f"SAE '{s['id']}' is declared twice")
        d_sae.setdefault(s["id"], s["d_sae"])
    seen: dict[tuple[str, int], int] = {}
    labels: dict[tuple[str, str], int] = {}  # (sae, normalized label) -> position of its feature
    features = doc["features"]
    for i, f in enumerate(features):
        sae, idx = f["sae"], int(f["index"])
        if sae not in d_sae:
            sink.add(E_UNDECLARED, f"$.features[{i}].sae", f"SAE '{sae}' is not declared in $.saes",
                     did_you_mean(sae, d_sae) or "declare it in $.saes with its hook and d_sae")
        elif idx >= d_sae[sae]:
            sink.add(E_RANGE, f"$.features[{i}].index", f"{idx} is out of range for SAE '{sae}' (d_sae {d_sae[sae]})")
        first = seen.setdefault((sae, idx), i)
        if first != i:
            sink.add(E_DUPLICATE, f"$.features[{i}]", f"duplicate feature {sae}[{idx}] (first at $.features[{first}])")
            continue
        key = (sae, normalize_name(f["label"]))
        other = labels.setdefault(key, i)
        if other != i:
            sink.add(E_COLLISION, f"$.features[{i}].label",
                     f"label '{f['label']}' of {sae}[{idx}] is already the label of "
                     f"{sae}[{features[other]['index']}] ($.features[{other}])",
                     "labels must be unique within an SAE (case-insensitive); make one an alias or rename it")
    for i, f in enumerate(features):
        for j, a in enumerate(f.get("aliases", ())):
            other = labels.get((f["sae"], normalize_name(a)))
            if other is not None and other != i:
                sink.add(E_COLLISION, f"$.features[{i}].aliases[{j}]",
                         f"alias '{a}' of {f['sae']}[{f['index']}] is the label of "
                         f"{f['sae']}[{features[other]['index']}] ($.features[{other}])",
                         "an alias may not name another feature's label; remove or rename it")


def validate_catalogue(doc: Any, fname: str = "<catalogue>") -> list[Diagnostic]:
    """Every problem with a parsed catalogue document (empty when it is valid)."""
    sink = _Sink(fname)
    if isinstance(doc, dict) and "version" in doc and doc["version"] != CATALOGUE_VERSION:
        sink.add(E_VERSION, "$.version", f"unsupported catalogue version {doc['version']!r}",
                 f"this steerc reads catalogue version {CATALOGUE_VERSION}")
        return sink.result()
    _schema_errors(doc, sink)
    if not sink.diags:
        _semantic_errors(doc, sink)
    elif isinstance(doc, list) and doc and isinstance(doc[0], dict) and "modelId" in doc[0]:
        sink.diags[0] = Diagnostic(sink.diags[0].code, sink.diags[0].message, None,
                                   "this looks like a Neuronpedia export: build it with "
                                   "`steerc catalogue build SRC --from neuronpedia --sae ID --hook H --d-sae N -o OUT`")
    return sink.result()


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    """json's parse_float: 1e400 would silently become inf (and `5x max` with it)."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:30]} is out of range for a double")
    return value


def _bounded_int(text: str) -> int:
    """json's parse_int: the index stores 64-bit integers (and Python caps digit strings)."""
    if len(text.lstrip("-")) > 19 or not -(1 << 63) <= (value := int(text)) < (1 << 63):
        raise ValueError(f"integer {text[:30]}{'...' if len(text) > 30 else ''} is out of the 64-bit range")
    return value


def parse_catalogue_bytes(raw: bytes, fname: str) -> dict:
    """Parse and validate a JSON catalogue's bytes; raises DiagnosticError (E101-E109)."""
    text = read.decode(raw, fname, read.CATALOGUE, encoding="utf-8-sig")
    try:
        doc = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float,
                         parse_int=_bounded_int)
    except json.JSONDecodeError as e:
        raise DiagnosticError([Diagnostic(E_JSON, f"invalid JSON: {e.msg}", Span(fname, e.lineno, e.colno))]) from None
    except ValueError as e:
        raise DiagnosticError([Diagnostic(E_JSON, f"{fname}: {e}")]) from None
    except RecursionError:  # json's C decoder recurses per nesting level
        raise DiagnosticError([Diagnostic(E_JSON, f"{fname}: JSON nested too deeply",
                                          hint="a catalogue nests a few levels deep")]) from None
    diags = validate_catalogue(doc, fname)
    if diags:
        raise DiagnosticError(diags)
    return doc


def read_catalogue_json(path: Path) -> tuple[dict, str]:
    """Parse and validate a JSON catalogue file; returns (document, sha256 of its bytes)."""
    raw = read.read_bytes(path, read.CATALOGUE)
    return parse_catalogue_bytes(raw, str(path)), hashlib.sha256(raw).hexdigest()


def canonical_sha256(doc: dict) -> str:
    """Content hash of an in-memory catalogue: sha256 of its canonical JSON (sorted keys, compact)."""
    data = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return hashlib.sha256(data).hexdigest()
