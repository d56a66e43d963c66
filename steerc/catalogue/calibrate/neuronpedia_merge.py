"""`--labels [SAE=]EXPORT`: merge Neuronpedia labels into a calibrated catalogue.

A feature with a Neuronpedia explanation takes it as its label; its automatic label and
aliases become aliases, the Neuronpedia aliases are added, and the description starts with
the Neuronpedia one. Statistics, contexts and tags stay the calibrated ones. Neuronpedia
labels win a clash: an automatic label equal to one gets ` #2`, ` #3`, ...; aliases equal to
another feature's label are dropped (the catalogue rule).
"""

from __future__ import annotations

from steerc.catalogue.neuronpedia import import_neuronpedia
from steerc.catalogue.types import normalize_name
from steerc.diagnostics import Diagnostic, DiagnosticError


def merge_labels(doc: dict, labels: tuple[tuple[str, str], ...]) -> dict:
    """`doc` with the labels of each (sae id or "" for the only SAE, export path) merged in."""
    saes = {s["id"]: s for s in doc["saes"]}
    by_sae: dict[str, list[str]] = {}
    for sid, path in labels:
        if not sid:
            if len(saes) != 1:
                raise DiagnosticError([Diagnostic("E143", f"--labels {path}: several SAEs; say which one",
                                                  hint=f"--labels SAE={path} with SAE one of {sorted(saes)}")])
            sid = next(iter(saes))
        if sid not in saes:
            raise DiagnosticError([Diagnostic("E143", f"--labels {sid}={path}: no SAE '{sid}' in this run",
                                              hint=f"SAE ids: {sorted(saes)}")])
        by_sae.setdefault(sid, []).append(path)
    for sid, paths in by_sae.items():
        s = saes[sid]
        imported = import_neuronpedia(paths, sid, s["hook"], s["d_sae"])
        human = {f["index"]: f for f in imported["features"]}
        taken = {normalize_name(f["label"]) for f in human.values()}
        for f in (g for g in doc["features"] if g["sae"] == sid):
            h = human.get(f["index"])
            if h is not None:
                auto = [f["label"], *f.get("aliases", [])]
                f["label"] = h["label"]
                f["aliases"] = list(dict.fromkeys([*h.get("aliases", []), *auto]))
                f["description"] = (h.get("description", "") + " " + f.get("description", "")).strip()
            else:
                base, n = f["label"], 1
                while normalize_name(f["label"]) in taken:
                    n += 1
                    f["label"] = f"{base} #{n}"
                taken.add(normalize_name(f["label"]))
        labels = {normalize_name(f["label"]): f["index"] for f in doc["features"] if f["sae"] == sid}
        for f in (g for g in doc["features"] if g["sae"] == sid):
            own = normalize_name(f["label"])
            f["aliases"] = [a for a in f.get("aliases", []) if normalize_name(a) not in labels
                            and normalize_name(a) != own]
    return doc
