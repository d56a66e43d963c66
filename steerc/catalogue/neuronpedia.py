"""Neuronpedia exports -> a catalogue document (docs/catalogue.md, "Neuronpedia import").

Reads explanation rows from bulk-export batches (`explanations/batch-N.jsonl.gz`, or plain
`.jsonl`) and from the legacy per-SAE JSON array; optional feature rows give
`maxActApprox -> max_activation` and `frac_nonzero -> density`, optional activation rows give
`top_contexts`. In every table `index` is a string and `layer` holds the source id.

Choosing among several explanations of one feature (deterministic): the first by
typeName preference (TYPE_PREFERENCE order, then unknown types by name), then by row id;
the others' distinct texts become aliases. Labels must be unique within an SAE, so a
label already taken by a lower index gets the suffix ` #<index>`; an alias equal to another
feature's label is dropped. Features with no explanation are left out (a catalogue feature
needs a label).
"""

from __future__ import annotations

import gzip
import json
import math
import os
from collections import defaultdict
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from tqdm import tqdm

from steerc.catalogue.types import normalize_name
from steerc.catalogue.validate import CATALOGUE_VERSION
from steerc.files import read
from steerc.diagnostics import Collector, Diagnostic, DiagnosticError, Span

TYPE_PREFERENCE = ("np_max-act-logits", "oai_token-act-pair", "np_acts-logits-general", "oai_attention-head")
N_CONTEXTS = 5
MAX_NAME = 1000

E_ROW_JSON = "E120"  # a row file that is not JSON / JSONL
E_ROW = "E121"  # a row without the fields we need
E_SOURCES = "E122"  # rows from several (modelId, layer) sources and no --source to choose
E_INDEX = "E123"  # index not a number in [0, d_sae)
E_EMPTY = "E124"  # no explanation rows at all

_SUFFIXES = (".jsonl.gz", ".json.gz", ".jsonl", ".json")


def _files(paths: Iterable[str | os.PathLike]) -> list[Path]:
    out: list[Path] = []
    for p in map(Path, paths):
        if os.path.isdir(p):
            out.extend(sorted(f for f in p.iterdir() if os.path.isfile(f) and f.name.endswith(_SUFFIXES)))
        else:
            out.append(p)
    return out


def expand_export_dir(path: str | os.PathLike) -> dict[str, list[Path]]:
    """The S3 layout `{dir}/{explanations,features,activations}/batch-N.jsonl.gz` as lists of files."""
    root = Path(path)
    return {kind: _files([root / kind]) if os.path.isdir(root / kind) else [] for kind in ("explanations", "features", "activations")}


def read_rows(path: Path) -> Iterator[tuple[int, dict]]:
    """(line, row) for each row of a JSONL, JSONL.gz, JSON-array or JSON-array.gz file."""
    raw = read.read_bytes(path, read.NEURONPEDIA)
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as e:
            raise DiagnosticError([Diagnostic(E_ROW_JSON, f"{path}: not a valid gzip file ({e})")]) from None
    text = raw.decode("utf-8", errors="replace")
    if text.lstrip()[:1] == "[":
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as e:
            raise DiagnosticError([Diagnostic(E_ROW_JSON, f"invalid JSON: {e.msg}", Span(str(path), e.lineno, e.colno))]) from None
        for r in rows:
            yield 0, r
        return
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield line_no, json.loads(line)
        except json.JSONDecodeError as e:
            raise DiagnosticError([Diagnostic(E_ROW_JSON, f"invalid JSON line: {e.msg}",
                                              Span(str(path), line_no, e.colno))]) from None


def _clean(text: str) -> str:
    return " ".join(text.split())[:MAX_NAME].strip()


def _finite(x, lo: float, hi: float) -> float | None:
    if isinstance(x, str):
        try:
            x = float(x)
        except ValueError:
            return None
    if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and lo <= x <= hi:
        return float(x)
    return None


class _Rows:
    """Reads rows of one kind, keeping those of the chosen source and a parsed index."""

    def __init__(self, d_sae: int, source: str | None, diags: Collector, progress: bool):
        self.d_sae, self.source, self.diags, self.progress = d_sae, source, diags, progress
        self.sources: set[tuple[str, str]] = set()

    def read(self, files: Sequence[Path], what: str) -> Iterator[tuple[int, dict]]:
        for path in tqdm(files, desc=f"neuronpedia: {what}", disable=not self.progress or len(files) < 2, leave=False):
            for line, row in read_rows(path):
                where = f"{path}:{line}" if line else str(path)
                if not isinstance(row, dict) or "index" not in row:
                    self.diags.error(E_ROW, f"{where}: a {what} row must be an object with an 'index'")
                    continue
                src = (str(row.get("modelId", "")), str(row.get("layer", "")))
                if self.source is not None and self.source not in (src[1], f"{src[0]}/{src[1]}"):
                    continue
                self.sources.add(src)
                try:
                    idx = int(str(row["index"]).strip())
                except ValueError:
                    idx = -1
                if not 0 <= idx < self.d_sae:
                    self.diags.error(E_INDEX, f"{where}: index {row['index']!r} is not a feature index in [0, {self.d_sae})")
                    continue
                yield idx, row


def _rank(row: dict, prefs: Sequence[str]) -> tuple:
    t = str(row.get("typeName") or "")
    return (prefs.index(t) if t in prefs else len(prefs), t, str(row.get("id") or ""))


def import_neuronpedia(paths: Iterable[str | os.PathLike], sae_id: str, hook: str, d_sae: int, *,
                       model: str | None = None, feature_paths: Iterable[str | os.PathLike] = (),
                       activation_paths: Iterable[str | os.PathLike] = (), source: str | None = None,
                       type_preference: Sequence[str] = TYPE_PREFERENCE, progress: bool = False) -> dict:
    """Read Neuronpedia exports into a catalogue document for one SAE.

    `paths`: explanation files (JSONL, .jsonl.gz, legacy JSON array) or directories of them;
    a directory in the S3 layout (`explanations/`, `features/`, `activations/`) also supplies
    feature and activation rows. `source` picks one Neuronpedia source id (`6-res-jb` or
    `gpt2-small/6-res-jb`) when the rows hold several. Raises DiagnosticError.
    """
    expl_files, feat_files, act_files = [], _files(feature_paths), _files(activation_paths)
    for p in map(Path, paths):
        parts = expand_export_dir(p) if os.path.isdir(p) else None
        if parts and parts["explanations"]:
            expl_files += parts["explanations"]
            feat_files += [] if feature_paths else parts["features"]
            act_files += [] if activation_paths else parts["activations"]
        else:
            expl_files += _files([p])
    diags = Collector()
    rows = _Rows(d_sae, source, diags, progress)
    explanations: dict[int, list[dict]] = defaultdict(list)
    for idx, row in rows.read(expl_files, "explanation"):
        if isinstance(row.get("description"), str) and _clean(row["description"]):
            explanations[idx].append(row)
    if len(rows.sources) > 1:
        listed = ", ".join(f"{m}/{layer}" for m, layer in sorted(rows.sources))
        diags.error(E_SOURCES, f"the export holds several Neuronpedia sources: {listed}",
                    hint="choose one with source= (CLI: --source)")
    if not explanations and not diags.has_errors:
        diags.error(E_EMPTY, f"no explanations found in {', '.join(map(str, expl_files)) or 'the given paths'}")
    diags.check()
    stats: dict[int, dict] = {}
    for idx, row in rows.read(feat_files, "feature"):
        stats[idx] = {"max_activation": _finite(row.get("maxActApprox"), 0.0, math.inf),
                      "density": _finite(row.get("frac_nonzero"), 0.0, 1.0)}
    contexts: dict[int, list[tuple[float, str]]] = defaultdict(list)
    for idx, row in rows.read(act_files, "activation"):
        value = _finite(row.get("maxValue"), -math.inf, math.inf)
        if value is not None and isinstance(row.get("tokens"), list):
            contexts[idx].append((value, "".join(map(str, row["tokens"]))))
    diags.check()
    model_id = model or next(iter(sorted(rows.sources)), ("", ""))[0] or None
    features = _features(sae_id, explanations, stats, contexts, type_preference)
    return {"version": CATALOGUE_VERSION,
            "saes": [{"id": sae_id, "hook": hook, "d_sae": int(d_sae), "model": model_id}],
            "features": features}


def _features(sae_id: str, explanations: dict[int, list[dict]], stats: dict[int, dict],
              contexts: dict[int, list[tuple[float, str]]], prefs: Sequence[str]) -> list[dict]:
    features: list[dict] = []
    taken: set[str] = set()
    for idx in sorted(explanations):
        ranked = sorted(explanations[idx], key=lambda r: _rank(r, prefs))
        best = ranked[0]
        label = _clean(best["description"])
        if normalize_name(label) in taken:
            label = f"{label[:MAX_NAME - 12]} #{idx}"
        taken.add(normalize_name(label))
        aliases: list[str] = []
        seen = {normalize_name(label), normalize_name(_clean(best["description"]))}
        for r in ranked[1:]:
            a = _clean(r["description"])
            if normalize_name(a) not in seen:
                seen.add(normalize_name(a))
                aliases.append(a)
        how = ", ".join(str(best[k]) for k in ("typeName", "explanationModelName") if best.get(k))
        f = {"sae": sae_id, "index": idx, "label": label, "aliases": aliases,
             "description": f"Neuronpedia {best.get('modelId', '')}/{best.get('layer', '')}/{idx}"
                            + (f" ({how}): {_clean(best['description'])}" if how else f": {_clean(best['description'])}")}
        f.update({k: v for k, v in stats.get(idx, {}).items() if v is not None})
        if idx in contexts:
            top = sorted(contexts[idx], key=lambda c: (-c[0], c[1]))[:N_CONTEXTS]
            f["top_contexts"] = [{"text": t, "activation": v} for v, t in top]
        features.append(f)
    for f in features:  # drop aliases that are another feature's label (a catalogue error)
        own = normalize_name(f["label"])
        f["aliases"] = [a for a in f["aliases"] if normalize_name(a) not in taken or normalize_name(a) == own]
    return features
