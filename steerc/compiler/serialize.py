"""Program <-> plain JSON-safe dict, losslessly (for the manifest and `steerc verify`).

`program_from_dict(program_to_dict(p)) == p` for every Program. Floats stay floats (JSON
round-trips IEEE doubles exactly via repr); non-finite values are written as the strings
"inf", "-inf", "nan" because JSON has no literal for them.
"""

from __future__ import annotations

import math
from typing import Any

from steerc.compiler.ir import (Calibrated, Condition, DirectionSource, ExpectCheck, FeatureId, HubSource,
                                Intervention, JsonConstraint, Op, Program, SaeBinding)
from steerc.diagnostics import Span

FORMAT_VERSION = 1


def _f(x: float) -> float | str:
    if math.isfinite(x):
        return float(x)
    return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")


def _span(s: Span | None) -> dict | None:
    return None if s is None else {"file": s.file, "line": s.line, "col": s.col, "length": s.length}


def _unspan(d: dict | None) -> Span | None:
    return None if d is None else Span(d["file"], d["line"], d["col"], d.get("length", 1))


def _feat(f: FeatureId) -> dict:
    out = {"sae": f.sae, "index": f.index, "label": f.label}
    if f.direction:  # only then: programs without directions serialize as they always did
        out["direction"] = True
    return out


def _unfeat(d: dict) -> FeatureId:
    return FeatureId(d["sae"], d["index"], d.get("label"), bool(d.get("direction", False)))


def _cond(c: Condition | None) -> dict | None:
    if c is None:
        return None
    return {"feature": _feat(c.feature), "hook": c.hook, "threshold": _f(c.threshold)}


def _uncond(d: dict | None) -> Condition | None:
    if d is None:
        return None
    return Condition(_unfeat(d["feature"]), d["hook"], float(d["threshold"]))


def intervention_to_dict(i: Intervention) -> dict:
    """One intervention as a JSON-safe dict."""
    return {"op": i.op.value, "feature": _feat(i.feature), "value": _f(i.value),
            "points": list(i.points), "everywhere": i.everywhere, "positions": i.positions,
            "condition": _cond(i.condition), "span": _span(i.span), "origin": i.origin}


def intervention_from_dict(d: dict) -> Intervention:
    """Inverse of `intervention_to_dict`."""
    return Intervention(Op(d["op"]), _unfeat(d["feature"]), float(d["value"]), tuple(d["points"]),
                        everywhere=d["everywhere"], positions=d["positions"],
                        condition=_uncond(d["condition"]), span=_unspan(d["span"]),
                        origin=d["origin"])


def _source(s: HubSource) -> dict:
    return {k: v for k, v in vars(s).items() if v is not None or k == "revision"}


def _sae(b: SaeBinding) -> dict:
    out = {"alias": b.alias, "path": b.path, "hook": b.hook, "d_in": b.d_in, "d_sae": b.d_sae,
           "sha256": b.sha256, "format": b.format, "span": _span(b.span)}
    if b.source is not None:  # only then: a local-only program serializes as it always did
        out["source"] = _source(b.source)
    if b.direction is not None:
        out["direction"] = {**vars(b.direction), "paths": list(b.direction.paths),
                            "sha256s": list(b.direction.sha256s)}
    return out


def _unsae(d: dict) -> SaeBinding:
    d = dict(d)
    src = d.pop("source", None)
    span = _unspan(d.pop("span", None))
    direc = d.pop("direction", None)
    if direc is not None:
        direc = DirectionSource(**{**direc, "paths": tuple(direc["paths"]),
                                   "sha256s": tuple(direc["sha256s"])})
    return SaeBinding(**d, source=None if src is None else HubSource(**src), span=span,
                      direction=direc)


_EXPECT_EXTRAS = ("texts", "texts_sha256", "percent", "bound", "baseline")


def _expect(e: ExpectCheck) -> dict:
    """An expect; the keys of rate / kl / feature expects and the baseline only when set, so
    a program with plain expects serializes as before (byte-identical manifests)."""
    out = {"prompt": e.prompt, "kind": e.kind, "arg": e.arg, "span": _span(e.span)}
    for k in _EXPECT_EXTRAS:
        v = getattr(e, k)
        if v is not None:
            out[k] = _f(v) if isinstance(v, float) else v
    if e.features:
        out["features"] = [_feat(f) for f in e.features]
    return out


def _unexpect(d: dict) -> ExpectCheck:
    extras = {k: d[k] for k in _EXPECT_EXTRAS if d.get(k) is not None}
    for k in ("percent", "bound"):
        if k in extras:
            extras[k] = float(extras[k])
    return ExpectCheck(d["prompt"], d["kind"], d["arg"], _unspan(d["span"]), **extras,
                       features=tuple(_unfeat(f) for f in d.get("features", ())))


def program_to_dict(p: Program) -> dict[str, Any]:
    """The Program as a JSON-safe dict (`json.dumps` works on it, sort_keys or not)."""
    out = {
        "format": FORMAT_VERSION,
        "spec_file": p.spec_file,
        "model": p.model,
        "saes": [_sae(b) for b in p.saes],
        "catalogue": p.catalogue,
        "interventions": [intervention_to_dict(i) for i in p.interventions],
        "json": None if p.json is None else {"schema_path": p.json.schema_path,
                                             "schema": p.json.schema, "span": _span(p.json.span)},
        "expects": [_expect(e) for e in p.expects],
        "files": list(p.files),
        "model_span": _span(p.model_span),
    }
    if p.model_source is not None:
        out["model_source"] = _source(p.model_source)
    if p.calibrated is not None:  # only then: a spec without `auto` serializes as before
        out["calibrated"] = {"t": _f(p.calibrated.t), "rules": list(p.calibrated.rules)}
    return out


def program_from_dict(d: dict[str, Any]) -> Program:
    """Inverse of `program_to_dict`; raises ValueError on an unknown format version."""
    if d.get("format") != FORMAT_VERSION:
        raise ValueError(f"program format {d.get('format')!r}; this steerc reads {FORMAT_VERSION}")
    j = d.get("json")
    return Program(
        spec_file=d["spec_file"], model=d["model"],
        saes=tuple(_unsae(b) for b in d["saes"]),
        catalogue=d["catalogue"],
        interventions=tuple(intervention_from_dict(i) for i in d["interventions"]),
        json=None if j is None else JsonConstraint(j["schema_path"], j["schema"], _unspan(j["span"])),
        expects=tuple(_unexpect(e) for e in d["expects"]),
        files=tuple(d["files"]),
        model_source=HubSource(**d["model_source"]) if d.get("model_source") else None,
        model_span=_unspan(d.get("model_span")),
        calibrated=Calibrated(float(d["calibrated"]["t"]), tuple(d["calibrated"]["rules"]))
        if d.get("calibrated") else None,
    )
