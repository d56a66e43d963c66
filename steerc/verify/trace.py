"""`steerc trace`: which SAE features fire on each token of a text (to write specs).

    sources = trace_sources(spec="specs/x.steer")                    # or model=, saes=, catalogue=
    rows = trace_text(model, tok, sources.saes, catalogue, "def f(x):", top=10)

Each SAE reads the stream at its own hook point (`capture`, same sites steerc edits); the
features ranked per token are all of the SAE's features, labelled from the catalogue where
it knows them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from steerc.diagnostics import Collector, Diagnostic, DiagnosticError
from steerc.verify.capture import capture


@dataclass(frozen=True)
class TracedSae:
    """An SAE to trace: the name shown (`alias`), the loaded SAE, its catalogue id (or None)."""

    alias: str
    sae: object
    cat_id: str | None


@dataclass(frozen=True)
class Hit:
    sae: str
    index: int
    label: str | None
    activation: float


@dataclass(frozen=True)
class TokenRow:
    position: int
    token_id: int
    token: str
    hits: tuple[Hit, ...]   # per SAE, highest activation first


@dataclass(frozen=True)
class Sources:
    model: str
    saes: tuple[tuple[str, str], ...]  # (alias, path)
    catalogue: str | None


def sources_from_spec(spec: str) -> Sources:
    """The model / SAE / catalogue declarations of a spec and its `use`s (paths relative to
    the spec file); rules are not resolved, so a spec in progress still traces."""
    from steerc.compiler import ast
    from steerc.compiler.load import gather
    from steerc.compiler.locate import locate_model, locate_sae, spec_relative

    col = Collector()
    _, statements = gather(spec, col)
    col.check()
    model = catalogue = None
    saes: dict[str, str] = {}
    for st in statements:
        if isinstance(st, ast.ModelDecl):
            model = locate_model(st, weights=True).path
        elif isinstance(st, ast.CatalogueDecl):
            catalogue = spec_relative(st.path.span, st.path.value)
        elif isinstance(st, ast.SaeDecl) and st.alias.value not in saes:
            saes[st.alias.value] = locate_sae(st).path
    if model is None or not saes:
        raise DiagnosticError([Diagnostic(
            "E510", f"{spec} declares no {'model' if model is None else 'SAE'}", None,
            'trace needs `model "..."` and at least one `sae ALIAS = "..."`')])
    return Sources(model, tuple(saes.items()), catalogue)


def match_catalogue(catalogue, alias: str, sae) -> str | None:
    """The catalogue's id for a loaded SAE: same content hash, else same id as the alias,
    else the only catalogue SAE at the same hook point."""
    if catalogue is None:
        return None
    cands = catalogue.saes()
    sha = None
    if any(c.sha256 for c in cands):
        sha = sae.sha256()
    for c in cands:
        if sha and c.sha256 == sha:
            return c.id
    for c in cands:
        if c.id == alias and c.hook == sae.hook_name:
            return c.id
    same_hook = [c for c in cands if c.hook == sae.hook_name]
    return same_hook[0].id if len(same_hook) == 1 else None


def load_sources(src: Sources, allow_pickle: bool = False):
    """(model, tokenizer, [TracedSae], catalogue or None); E510-E511 for missing files,
    E307 for a pickled SAE without `allow_pickle`."""
    from steerc.catalogue import Catalogue
    from steerc.hfload import load_model, load_tokenizer
    from steerc.saes import load_sae

    if not os.path.isfile(os.path.join(src.model, "config.json")):
        raise DiagnosticError([Diagnostic("E511", f"model '{src.model}' not found (no config.json)",
                                          None, "pass a local transformers checkpoint directory")])
    catalogue = Catalogue.open(src.catalogue) if src.catalogue else None
    saes = []
    for alias, path in src.saes:
        sae = load_sae(path, allow_pickle=allow_pickle)
        saes.append(TracedSae(alias, sae, match_catalogue(catalogue, alias, sae)))
    model = load_model(src.model, error_code="E511")  # never runs the checkpoint's code
    tok = load_tokenizer(src.model, error_code="E511")
    return model, tok, saes, catalogue


@torch.no_grad()
def trace_text(model, tok, saes: list[TracedSae], catalogue, text: str, top: int = 10) -> list[TokenRow]:
    """Per token of `text` (BOS included when the tokenizer adds one): the `top` features
    with activation > 0 of every SAE, highest first, with catalogue labels."""
    enc = tok(text, return_tensors="pt")
    ids = enc["input_ids"]
    with capture(model, [s.sae.hook_name for s in saes]) as got:
        model(input_ids=ids, use_cache=False)
    per_sae = []
    for s in saes:
        acts = s.sae.encode(got[s.sae.hook_name].float())[0]   # (T, d_sae)
        vals, idx = acts.topk(min(top, acts.shape[-1]), dim=-1)
        per_sae.append((s, vals, idx))
    labels: dict[tuple[str, int], str | None] = {}

    def label(s: TracedSae, i: int) -> str | None:
        if (s.alias, i) not in labels:
            info = catalogue.get(s.cat_id, i) if catalogue is not None and s.cat_id else None
            labels[(s.alias, i)] = info.label if info else None
        return labels[(s.alias, i)]

    rows = []
    for t, tid in enumerate(ids[0].tolist()):
        hits = []
        for s, vals, idx in per_sae:
            hits += [Hit(s.alias, int(i), label(s, int(i)), float(v))
                     for v, i in zip(vals[t].tolist(), idx[t].tolist()) if v > 0]
        rows.append(TokenRow(t, tid, tok.decode([tid]), tuple(hits)))
    return rows


def trace_json(text: str, saes: list[TracedSae], rows: list[TokenRow]) -> dict:
    """The `--format json` document."""
    return {"text": text,
            "saes": [{"alias": s.alias, "hook": s.sae.hook_name, "path": str(s.sae.path),
                      "catalogue_id": s.cat_id} for s in saes],
            "tokens": [{"position": r.position, "token_id": r.token_id, "token": r.token,
                        "features": [{"sae": h.sae, "index": h.index, "label": h.label,
                                      "activation": h.activation} for h in r.hits]}
                       for r in rows]}


def trace_table(rows: list[TokenRow], top: int) -> str:
    """Plain-text table: one block per token, one line per feature."""
    out = []
    for r in rows:
        out.append(f"{r.position:>4}  {r.token!r}")
        if not r.hits:
            out.append("        (no feature fires)")
        for h in r.hits[:top * 4]:
            out.append(f"        {h.sae}[{h.index}]".ljust(22) + f"{h.activation:8.3f}  "
                       + (h.label if h.label is not None else "-"))
    return "\n".join(out)
