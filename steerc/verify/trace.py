"""`steerc trace`: which SAE features fire on each token of a text (to write specs); which
differ most between two prompt sets (`contrast`), and what a feature does to the output
(`inspect_features`; the measurements are `steerc.verify.effect`'s).

    sources = trace_sources(spec="specs/x.steer")                    # or model=, saes=, catalogue=
    rows = trace_text(model, tok, sources.saes, catalogue, "def f(x):", top=10)

Each SAE reads the stream at its own hook point (`capture`, same sites steerc edits); the
features ranked per token are all of the SAE's features, labelled from the catalogue where
it knows them.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

import torch

from steerc.diagnostics import Collector, Diagnostic, DiagnosticError
from steerc.verify.capture import capture
from steerc.verify.effect import Effect, EffectSettings, Neutral, effects


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
    _check_widths(model, saes)
    return model, tok, saes, catalogue


def _check_widths(model, saes: list[TracedSae]) -> None:
    """E309 for every SAE on a residual-space hook whose d_in is not the model's hidden size
    (it would fail inside the encoder, or steer and lens at the wrong width)."""
    from steerc.arch.hookpoint import HookPoint
    from steerc.arch.registry import adapter_for
    from steerc.saes import check_d_model

    diags = []
    for s in saes:
        point = HookPoint.read(s.sae.hook_name)
        if point is not None and point.residual_space:
            try:
                check_d_model(s.sae, adapter_for(model.config).d_model(model.config))
            except DiagnosticError as e:
                diags += e.diagnostics
    if diags:
        raise DiagnosticError(diags)


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

RANKS = ("activation", "output", "both")
POOL = 4  # --rank output re-ranks the POOL x top features of each SAE with the largest |A - B|


@dataclass(frozen=True)
class ContrastRow:
    """One feature's mean activation over the content tokens of prompt sets A and B, and
    what it does to the output (`effect.Effect`)."""

    sae: str
    index: int
    label: str | None
    mean_a: float
    mean_b: float
    effect: Effect = Effect(None, None)

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
           batch: int = 8, last: bool = False) -> tuple[dict[str, torch.Tensor], int]:
    """Per SAE alias: the mean activation of every feature (d_sae,) over the content tokens of
    `prompts` cut into windows (as verify's KL windows), or with `last` at each prompt's last
    token (each prompt on its own, as `direction ... = mean last`); and the token count."""
    from steerc.verify.capture import content_mask
    from steerc.verify.texts import windows as cut

    if last:
        from steerc.directions.meandiff import token_sums

        sums, n = token_sums(model, tok, prompts, sorted({s.sae.hook_name for s in saes}),
                             lambda xs: {s.alias: s.sae.encode(xs[s.sae.hook_name].float()).sum(0)
                                         for s in saes}, last=True)
        return {s.alias: sums[s.alias] / max(n, 1) for s in saes}, n

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
             window: int = 128, max_windows: int = 32, rank: str = "activation",
             neutral: Neutral | None = None, settings: EffectSettings = EffectSettings(),
             progress: bool | None = None, last: bool = False) -> tuple[list[ContrastRow], int, int]:
    """The `top` features of each SAE whose mean activation differs most between prompt sets
    A and B, labelled from the catalogue, each with its promoted / suppressed tokens; and the
    token counts of A and B.

    `rank`: `activation` = largest |mean_A - mean_B| first; `both` = the same features, each
    also given its output score measured on `neutral`; `output` = the POOL x top features with
    the largest |A - B| re-ranked by output score (highest first; ties and unscored features
    keep the activation order). `last`: the means are taken at each prompt's last token (prompts
    cut right before a behaviour vs elsewhere give the features that are about to write it)."""
    if rank not in RANKS:
        raise ValueError(f"rank must be one of {RANKS}")
    if rank != "activation" and neutral is None:
        raise ValueError("rank by output needs the neutral windows")
    ma, na = _means(model, tok, saes, a_prompts, window, max_windows, last=last)
    mb, nb = _means(model, tok, saes, b_prompts, window, max_windows, last=last)
    pool = top * (POOL if rank == "output" else 1)
    keys = []
    for s in saes:
        d = ma[s.alias] - mb[s.alias]
        keys += [(s.alias, i) for i in d.abs().topk(min(pool, d.numel())).indices.tolist()]
    eff = effects(model, tok, {s.alias: s.sae for s in saes}, keys,
                  None if rank == "activation" else neutral, settings, progress=progress)
    by_alias = {s.alias: s for s in saes}
    rows = [ContrastRow(a, i, _label(catalogue, by_alias[a], i), float(ma[a][i]), float(mb[a][i]), eff[(a, i)])
            for a, i in keys]
    if rank == "output":
        ordered = []
        for s in saes:   # stable: ties and unscored features keep the activation order
            mine = [r for r in rows if r.sae == s.alias]
            mine.sort(key=lambda r: -r.effect.score.output_score if r.effect.score else float("inf"))
            ordered += mine[:top]
        rows = ordered
    return rows, na, nb


def _label(catalogue, s: TracedSae, i: int) -> str | None:
    info = catalogue.get(s.cat_id, i) if catalogue is not None and s.cat_id else None
    return info.label if info else None


def _tokens(words: tuple[str, ...] | None) -> str:
    return "-" if words is None else " ".join(repr(w) for w in words)


def _effect_line(e: Effect) -> str:
    return f"promotes {_tokens(e.promotes)}  |  suppresses {_tokens(e.suppresses)}"


def _score_cells(e: Effect) -> str:
    if e.score is None:
        return f"{'-':>8}{'-':>7}"
    return f"{e.score.output_score:+8.3f}{e.score.kl:7.3f}"


def _steering_line(neutral: Neutral, settings: EffectSettings) -> str:
    return (f"output score and KL (nats/token): steering each feature by {settings.strength:g} x the mean "
            f"residual norm on {neutral.tokens} tokens of {neutral.source}")


def contrast_table(rows: list[ContrastRow], a: str, b: str, rank: str = "activation",
                   neutral: Neutral | None = None, settings: EffectSettings = EffectSettings(),
                   last: bool = False) -> str:
    """Plain-text table, two lines per feature (figures and label; promoted / suppressed
    tokens), in the order `contrast` ranked them (per SAE)."""
    order = {"activation": "largest |A - B| first", "both": "largest |A - B| first",
             "output": "highest output score first"}[rank]
    at = "at each prompt's last token" if last else "per token"
    out = [f"features most different between A = {a} and B = {b} (mean activation {at}; {order})"]
    if rank != "activation" and neutral is not None:
        out.append(_steering_line(neutral, settings))
    out.append(f"  {'feature':<14}{'mean A':>9}{'mean B':>9}{'A - B':>9}{'output':>8}{'KL':>7}  label")
    for r in rows:
        out.append(f"  {f'{r.sae}[{r.index}]':<14}{r.mean_a:9.3f}{r.mean_b:9.3f}{r.diff:+9.3f}"
                   f"{_score_cells(r.effect)}  " + (r.label if r.label is not None else "-"))
        out.append("      " + _effect_line(r.effect))
    return "\n".join(out)


def contrast_json(rows: list[ContrastRow], a: str, b: str, na: int, nb: int, rank: str = "activation",
                  neutral: Neutral | None = None, settings: EffectSettings = EffectSettings(),
                  last: bool = False) -> dict:
    """The `--format json` document of `trace --contrast`."""
    return {"a": {"source": a, "tokens": na}, "b": {"source": b, "tokens": nb}, "rank": rank, "last": last,
            "output": None if rank == "activation" or neutral is None else _settings_json(neutral, settings),
            "features": [{"sae": r.sae, "index": r.index, "label": r.label, "mean_a": r.mean_a,
                          "mean_b": r.mean_b, "diff": r.diff, **r.effect.to_json()} for r in rows]}


def _settings_json(neutral: Neutral, settings: EffectSettings) -> dict:
    return {"neutral": neutral.source, "tokens": neutral.tokens, "strength": settings.strength,
            "n_tokens": settings.n_tokens}


# ---- trace --feature SAE[i]: one feature's promoted / suppressed tokens and output score ----

_REF = re.compile(r"\s*([A-Za-z_][\w.-]*)\s*\[\s*([0-9]{1,12})\s*\]\s*")


@dataclass(frozen=True)
class FeatureRow:
    """One inspected feature: its reference, catalogue label and `effect.Effect`."""

    sae: str
    index: int
    label: str | None
    effect: Effect


def parse_features(refs: list[str], saes: list[TracedSae]) -> list[tuple[str, int]]:
    """`ALIAS[INDEX]` references -> (alias, index), in order, duplicates dropped; E575 (all
    problems at once) for a malformed reference, an unknown alias or an index past d_sae."""
    import difflib

    by_alias = {s.alias: s for s in saes}
    out, diags = [], []
    for ref in refs:
        m = _REF.fullmatch(ref)
        if m is None:
            diags.append(Diagnostic("E575", f"--feature '{ref[:80]}' is not ALIAS[INDEX]", None,
                                    f"e.g. --feature {saes[0].alias}[0] (the SAE's alias, a feature index)"))
            continue
        alias, index = m.group(1), int(m.group(2))
        if alias not in by_alias:
            near = difflib.get_close_matches(alias, list(by_alias), n=1)
            diags.append(Diagnostic("E575", f"--feature {ref.strip()}: no SAE '{alias}'", None,
                                    (f"did you mean '{near[0]}'? " if near else "")
                                    + "SAEs: " + ", ".join(by_alias)))
        elif index >= by_alias[alias].sae.d_sae:
            diags.append(Diagnostic("E575", f"--feature {ref.strip()}: index {index} out of range "
                                    f"({alias} has {by_alias[alias].sae.d_sae} features, 0-"
                                    f"{by_alias[alias].sae.d_sae - 1})", None, "a feature index of that SAE"))
        elif (alias, index) not in out:
            out.append((alias, index))
    if diags:
        raise DiagnosticError(diags)
    return out


def inspect_features(model, tok, saes: list[TracedSae], catalogue, keys: list[tuple[str, int]],
                     neutral: Neutral, settings: EffectSettings = EffectSettings(),
                     progress: bool | None = None) -> list[FeatureRow]:
    """Promoted / suppressed tokens, output score and KL of each (alias, index); E576 when a
    feature's SAE does not write the unembedding's width (no logit lens, nothing to score)."""
    from steerc.verify.effect import has_lens

    by_alias = {s.alias: s for s in saes}
    blind = [a for a in dict.fromkeys(a for a, _ in keys) if not has_lens(model, by_alias[a].sae)]
    if blind:
        s = by_alias[blind[0]].sae
        raise DiagnosticError([Diagnostic(
            "E576", f"SAE '{blind[0]}' ({s.hook_name}, d_in {s.d_in}) does not write the width the "
            "unembedding reads: its features have no promoted tokens and no output score", None,
            "inspect features of an SAE on a residual-stream hook point (hook_resid_*, "
            "hook_mlp_out, hook_attn_out)")])
    eff = effects(model, tok, {s.alias: s.sae for s in saes}, keys, neutral, settings, progress=progress)
    return [FeatureRow(a, i, _label(catalogue, by_alias[a], i), eff[(a, i)]) for a, i in keys]


def features_table(rows: list[FeatureRow], neutral: Neutral, settings: EffectSettings) -> str:
    """Plain text: per feature its label, promoted and suppressed tokens, output score, KL."""
    out = [_steering_line(neutral, settings)]
    for r in rows:
        e = r.effect
        out += [f"{r.sae}[{r.index}]  " + (r.label if r.label is not None else "-"),
                f"  promotes      {_tokens(e.promotes)}",
                f"  suppresses    {_tokens(e.suppresses)}",
                f"  output score  {e.score.output_score:+.3f}   KL {e.score.kl:.3f}"]
    return "\n".join(out)


def features_json(rows: list[FeatureRow], neutral: Neutral, settings: EffectSettings) -> dict:
    """The `--format json` document of `trace --feature`."""
    return {"output": _settings_json(neutral, settings),
            "features": [{"sae": r.sae, "index": r.index, "label": r.label, **r.effect.to_json()}
                         for r in rows]}
