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


# ---- trace --contrast A B: features most different between two prompt sets -----------------

@dataclass(frozen=True)
class ContrastRow:
    """One feature's mean activation over the content tokens of prompt sets A and B."""

    sae: str
    index: int
    label: str | None
    mean_a: float
    mean_b: float

    @property
    def diff(self) -> float:
        return self.mean_a - self.mean_b


def read_contrast_file(path: str):
    """The prompts of a `--contrast` file (one per line, or `*.jsonl`); E553 when unusable."""
    from steerc.files import prompts, read

    kind = read.Kind("--contrast prompt file", 64 * read.MiB, "E553", "E553",
                     "one prompt per line, or JSON lines with a \"text\" field (*.jsonl)")
    return prompts.read_prompts(path, kind).prompts


@torch.no_grad()
def _means(model, tok, saes: list[TracedSae], prompts, window: int, max_windows: int,
           batch: int = 8) -> tuple[dict[str, torch.Tensor], int]:
    """Per SAE alias: the mean activation of every feature (d_sae,) over the content tokens of
    `prompts` cut into windows (as verify's KL windows); and the token count."""
    from steerc.verify.capture import content_mask
    from steerc.verify.texts import windows as cut

    w = cut(prompts, tok, window, max_windows)
    mask = content_mask(w, tok)
    sums: dict[str, torch.Tensor] = {}
    with capture(model, [s.sae.hook_name for s in saes]) as got:
        for i in range(0, len(w), batch):
            ids, m = w[i:i + batch], mask[i:i + batch]
            model(input_ids=ids, use_cache=False)
            for s in saes:
                total = s.sae.encode(got[s.sae.hook_name].float())[m].sum(0)   # (d_sae,)
                sums[s.alias] = total if s.alias not in sums else sums[s.alias] + total
    n = int(mask.sum())
    return {a: v / max(n, 1) for a, v in sums.items()}, n


def contrast(model, tok, saes: list[TracedSae], catalogue, a_prompts, b_prompts, *, top: int = 10,
             window: int = 128, max_windows: int = 32) -> tuple[list[ContrastRow], int, int]:
    """The `top` features of each SAE whose mean activation differs most between prompt sets
    A and B (largest |mean_A - mean_B| first), labelled from the catalogue; and the token
    counts of A and B."""
    ma, na = _means(model, tok, saes, a_prompts, window, max_windows)
    mb, nb = _means(model, tok, saes, b_prompts, window, max_windows)
    rows = []
    for s in saes:
        d = ma[s.alias] - mb[s.alias]
        for i in d.abs().topk(min(top, d.numel())).indices.tolist():
            info = catalogue.get(s.cat_id, i) if catalogue is not None and s.cat_id else None
            rows.append(ContrastRow(s.alias, i, info.label if info else None,
                                    float(ma[s.alias][i]), float(mb[s.alias][i])))
    return rows, na, nb


def contrast_table(rows: list[ContrastRow], a: str, b: str) -> str:
    """Plain-text table, one line per feature, largest difference first (per SAE)."""
    out = [f"features most different between A = {a} and B = {b} (mean activation per token)",
           f"  {'feature':<14}{'mean A':>9}{'mean B':>9}{'A - B':>9}  label"]
    for r in rows:
        out.append(f"  {f'{r.sae}[{r.index}]':<14}{r.mean_a:9.3f}{r.mean_b:9.3f}{r.diff:+9.3f}  "
                   + (r.label if r.label is not None else "-"))
    return "\n".join(out)


def contrast_json(rows: list[ContrastRow], a: str, b: str, na: int, nb: int) -> dict:
    """The `--format json` document of `trace --contrast`."""
    return {"a": {"source": a, "tokens": na}, "b": {"source": b, "tokens": nb},
            "features": [{"sae": r.sae, "index": r.index, "label": r.label, "mean_a": r.mean_a,
                          "mean_b": r.mean_b, "diff": r.diff} for r in rows]}
