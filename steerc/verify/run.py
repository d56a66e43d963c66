"""`verify_checkpoint`: everything `steerc verify` measures, as one `Report`.

    report = verify_checkpoint("build/no_code", prompts=None, neutral=None)
    print(render_text(report)); sys.exit(0 if report.ok else 1)
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from steerc.diagnostics import render
from steerc.verify import checks, expectations, measure, texts
from steerc.verify.blame import MAX_RULES, check_options
from steerc.verify.capture import content_mask
from steerc.verify.checkpoint import load_models, open_steered, resolve_path
from steerc.verify.report import Report


@dataclass(frozen=True)
class Options:
    """Budgets: windows of `window` tokens; at most `max_windows` per text set."""

    prompts: str | None = None
    neutral: str | None = None
    base_model: str | None = None
    window: int = 128
    max_windows: int = 32
    max_new_tokens: int = 48
    allow_pickle: bool = False  # torch-pickled SAEs (E307 without it)
    blame: str = "failing"      # per-rule blame of expectations: off | failing | all
    blame_rules: int = MAX_RULES  # rules blamed at most (the rest are counted, not measured)


def _window(model, want: int) -> int:
    cfg = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    limit = getattr(cfg, "max_position_embeddings", None) or getattr(cfg, "n_positions", None)
    return min(want, limit) if limit else want


def _local_spans(program, ckpt: Path):
    """The program with rule and expect spans naming the spec as seen from the working
    directory: the manifest records it relative to the checkpoint, which is not a path a
    user can open from where they run verify (a spec no longer found keeps its recorded name)."""
    def fix(span):
        if span is None:
            return None
        p = resolve_path(span.file, ckpt)
        return span if p is None else replace(span, file=os.path.relpath(p))

    return replace(program,
                   interventions=tuple(replace(i, span=fix(i.span)) for i in program.interventions),
                   expects=tuple(replace(e, span=fix(e.span)) for e in program.expects),
                   json=program.json and replace(program.json, span=fix(program.json.span)))


def verify_checkpoint(ckpt: str | os.PathLike, opts: Options = Options()) -> Report:
    """Load base and steered models of a compiled checkpoint and measure them (E5xx on a
    checkpoint that is missing, not steerc's, tampered with, or whose base is gone)."""
    from steerc.directions.build import direction_saes
    from steerc.saes import load_sae

    check_options(opts.blame, opts.blame_rules)  # E570 before anything loads

    torch.manual_seed(0)
    ck = open_steered(ckpt, base_model=opts.base_model)
    # the text files first: a bad --prompts/--neutral or prompt file is reported before any
    # model loads
    pset = texts.prompt_set(opts.prompts, ck.base_model)
    nset = texts.neutral_set(opts.neutral, ck.base_model)
    program = _local_spans(ck.program, Path(ck.path))
    files = expectations.load_prompt_files(program, Path(ck.path))
    base, steered, tok = load_models(ck)
    saes = direction_saes(program.saes, str(ck.base_model), allow_pickle=opts.allow_pickle,
                          locate=lambda p: str(resolve_path(p, Path(ck.path)) or p))
    saes.update({alias: load_sae(p, allow_pickle=opts.allow_pickle)
                 for alias, p in ck.sae_paths.items() if alias not in saes})
    warnings = [render(w) for w in ck.warnings]
    for b in program.saes:
        got = saes[b.alias].sha256()
        if b.sha256 and got != b.sha256:
            warnings.append(f"SAE '{b.alias}' at {ck.sae_paths[b.alias]} differs from the one "
                            "compiled against (content hash); activations use the file on disk")
    tw = text_windows(program, pset, nset, base, tok, opts)
    targets = with_max_activation(measure.targeted_features(program), program, Path(ck.path), saes)
    feats = measure.feature_activations(base, steered, saes, targets, tw.prompt_windows, tw.mask)
    base_cache: dict = {}  # the base model's continuations; blame reuses them
    kl, expects = measure_expects(program, base, steered, tok, saes, files, tw, Path(ck.path),
                                  guard=ck.guard, opts=opts, base_cache=base_cache)
    blame = _blame(opts, expects, program, base, tok, saes, files, _defaults(tw, kl), Path(ck.path),
                   ck.guard, tw.window, base_cache)
    samples = ()
    if not expects:  # still show what the steering does to text
        starts = [d[:60] for d in pset.docs[:3]]
        samples = tuple(checks.samples(starts, base, steered, tok, guard=ck.guard,
                                       max_new_tokens=opts.max_new_tokens))
    return Report(str(ck.path), program.spec_file, str(ck.base_model), ck.target, ck.guard,
                  pset.source, int(tw.mask.sum()), nset.source, tuple(feats), kl, tuple(expects),
                  samples, tuple(warnings), _baseline(program), blame)


@dataclass(frozen=True)
class TextWindows:
    """Verify's own text sets as token windows: the prompt set (feature activations, and
    down/up expectations without a file) with its content mask, and the neutral text (KL)."""

    prompts: texts.TextSet
    neutral: texts.TextSet
    window: int                   # tokens per window
    prompt_windows: torch.Tensor  # (N, T)
    mask: torch.Tensor            # (N, T) content tokens
    neutral_windows: torch.Tensor  # (M, T)


def _baseline(program) -> str | None:
    return next((e.baseline for e in program.expects if e.baseline is not None), None)


def text_windows(program, pset: texts.TextSet, nset: texts.TextSet, base, tok, opts: Options) -> TextWindows:
    """Cut the text sets into windows that leave room for the spec's baseline prompt (the
    prompted base reads both)."""
    baseline = _baseline(program)
    room = 0 if baseline is None else len(tok(baseline, add_special_tokens=False)["input_ids"])
    win = max(2, _window(base, opts.window + room) - room)
    pwin = texts.windows(pset.docs, tok, win, opts.max_windows, per_doc=True)
    nwin = texts.windows(nset.docs, tok, win, opts.max_windows)
    return TextWindows(pset, nset, win, pwin, content_mask(pwin, tok), nwin)


def _defaults(tw: TextWindows, kl: measure.KL) -> expectations.Defaults:
    """What an expectation without its own prompt file is measured on."""
    return expectations.Defaults(tw.prompts.source, tw.prompt_windows, tw.mask, tw.neutral.source,
                                 tw.neutral_windows, kl)


def measure_expects(program, base, steered, tok, saes: dict, files: dict, tw: TextWindows,
                    ck_dir: Path, *, guard: bool, opts: Options,
                    base_cache: dict | None = None) -> tuple[measure.KL, list]:
    """KL on the neutral windows and every `expect` of `program`, base vs steered, in spec
    order (what `verify` reports and `calibrate` searches on). `base_cache`: the base
    model's generations, kept across calls on the same base (calibrate's grid)."""
    kl = measure.next_token_kl(base, steered, tw.neutral_windows)
    singles = checks.run_expects(program, base, steered, tok, ck_dir, guard=guard,
                                 max_new_tokens=opts.max_new_tokens, base_cache=base_cache)
    measured = expectations.run_measured(program, base, steered, tok, saes, files, _defaults(tw, kl), ck_dir,
                                         guard=guard, max_new_tokens=opts.max_new_tokens,
                                         window=tw.window, max_windows=opts.max_windows,
                                         base_cache=base_cache)
    order = {id(e): i for i, e in enumerate(program.expects)}
    return kl, sorted([*singles, *measured], key=lambda x: order[id(x.expect)])


def _blame(opts: Options, expects, program, base, tok, saes, files, defaults, ck_dir: Path, guard: bool,
           window: int, base_cache: dict) -> tuple:
    """Per-rule blame of the expectations `opts.blame` selects (steerc/verify/blame.py)."""
    from steerc.verify.blame import Setup, blame_expects

    if opts.blame == "off" or not expects:
        return ()
    setup = Setup(program, base, tok, saes, files, defaults, ck_dir, guard, opts.max_new_tokens,
                  window, opts.max_windows, base_cache)
    return blame_expects(setup, expects, mode=opts.blame, max_rules=opts.blame_rules)


def with_max_activation(targets: list, program, ckpt: Path, saes: dict) -> list:
    """`targets` with the catalogue's max activation of each feature (the scale of a move
    that matters, steerc/verify/verdicts.py); unchanged when the catalogue cannot be read."""
    from steerc.catalogue import Catalogue
    from steerc.diagnostics import DiagnosticError
    from steerc.verify.checkpoint import resolve_path
    from steerc.verify.trace import match_catalogue

    path = resolve_path(program.catalogue, ckpt) if program.catalogue else None
    if path is None or not targets:
        return targets
    try:
        cat = Catalogue.open(path)
    except DiagnosticError:  # the figures stand without it; the floor falls back to absolute
        return targets
    with cat:
        ids = {alias: match_catalogue(cat, alias, sae) for alias, sae in saes.items()}
        out = []
        for t in targets:
            cid = ids.get(t.feature.sae)
            info = cat.get(cid, t.feature.index) if cid else None
            mx = getattr(info, "max_activation", None)
            out.append(replace(t, max_activation=float(mx)) if mx is not None else t)
    return out
