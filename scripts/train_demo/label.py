"""Build demo/catalogue.json: an automatic label, tags and statistics for every SAE feature.

    python -m scripts.train_demo.label          # reads demo/model, demo/saes, demo/heldout

Statistics come from the format-labelled held-out texts demo/heldout/{prose,code,json}.txt,
cut into `[BOS] + 127`-token windows (BOS positions excluded):

- max_activation, density (fraction of tokens where the feature is > 0);
- top_contexts: the 5 highest activations in distinct places, as a token window with the
  max token marked `«like this»`;
- tags: `format:X` when >= 60% of the feature's mean activation (per token of each format,
  summed over formats) is on format X; `inactive` for features that never fire;
- label: from the feature's 20 top tokens: the dominant token (>= 40% of them) named by
  `TOKEN_NAMES` or quoted, else the dominant previous token ("after ..."), else the two most
  common tokens; then the format in brackets when tagged. Duplicates get " #2", " #3", ... in
  feature order. Deterministic: no sampling, ties broken by token text.
- aliases: the most format-selective frequent feature per format gets `FORMAT_ALIASES`; a
  named label core (no quoted token, no "/") that is nobody's exact label ("json key",
  "def keyword") becomes an alias of the densest feature with that core.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

import torch
from tqdm import tqdm

from scripts.train_demo import activations, data

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "demo"
SAE_ID = "res2"
TOP_N, N_CONTEXTS, LEFT, RIGHT = 20, 5, 14, 4
FORMAT_SHARE = 0.6
FORMAT_ALIASES = {"json": "json", "code": "python code", "prose": "english prose"}
TOKEN_NAMES = {
    "def": "def keyword", "class": "class keyword", "return": "return keyword",
    "import": "import keyword", "from": "from", "if": "if keyword", "else": "else keyword",
    "for": "for keyword", "in": "in", "self": "self", "None": "None", "True": "True",
    "False": "False", "raise": "raise keyword", "lambda": "lambda keyword",
    "{": "opening brace", "}": "closing brace", "[": "opening bracket",
    "]": "closing bracket", "(": "opening paren", ")": "closing paren", ":": "colon",
    ",": "comma", ".": "period", '"': "double quote", "'": "single quote", '":': "json key end",
    '",': "string end comma", "=": "equals sign", "==": "equality", "#": "comment hash",
    "the": "the", "of": "of", "and": "and", "is": "is", "to": "to", "a": "a",
    "\n": "newline", "": "whitespace", "_": "underscore", "-": "hyphen",
}


def _norm(label: str) -> str:
    return " ".join(label.split()).casefold()


def load_sae_tensors(path: Path) -> tuple[dict, str | None]:
    """JumpReLU tensors (W_enc, b_enc, W_dec, b_dec, threshold) and steerc's sha256."""
    try:
        from steerc.saes.load import load_sae
        sae = load_sae(path)
        t = {"W_enc": sae.W_enc, "b_enc": sae.b_enc, "W_dec": sae.W_dec, "b_dec": sae.b_dec,
             "threshold": sae.threshold}
        return t, sae.sha256()
    except ImportError:  # pragma: no cover
        from safetensors.torch import load_file
        return load_file(str(path / "sae_weights.safetensors")), None


@torch.no_grad()
def heldout_activations(model, tok, layer: int, t: dict) -> dict:
    """Per format: ids [n, SEQ] (BOS-first windows) and feature activations [n, SEQ-1, d_sae]."""
    out = {}
    for fmt in data.FORMATS:
        ids = []
        for doc in data.read_heldout(DEMO / "heldout" / f"{fmt}.txt"):
            ids.extend(tok(doc, add_special_tokens=False).input_ids + [tok.eos_token_id])
        n = len(ids) // (activations.SEQ - 1)
        body = torch.tensor(ids[:n * (activations.SEQ - 1)]).view(n, activations.SEQ - 1)
        win = torch.cat([torch.full((n, 1), tok.bos_token_id), body], 1)
        acts = []
        for j in tqdm(range(0, n, 16), desc=f"label acts {fmt}", leave=False):
            x = activations.resid_post(model, win[j:j + 16], layer)[:, 1:]
            pre = x @ t["W_enc"] + t["b_enc"]
            acts.append(torch.relu(pre) * (pre > t["threshold"]))
        out[fmt] = {"ids": win, "acts": torch.cat(acts)}
    return out


def _tok_text(tok, i: int) -> str:
    return tok.decode([i])


def context_text(tok, ids: torch.Tensor, pos: int) -> str:
    """Window around `pos` (an index into ids, never the BOS) with that token in «»."""
    lo, hi = max(1, pos - LEFT), min(len(ids), pos + RIGHT + 1)
    return (tok.decode(ids[lo:pos]) + "«" + tok.decode(ids[pos:pos + 1]) + "»"
            + tok.decode(ids[pos + 1:hi]))


def top_places(acts: dict, feat: int, n: int) -> list[tuple[float, str, int, int]]:
    """Up to n (activation, fmt, window, position) of the highest activations of `feat`,
    at most one per window so contexts are distinct."""
    cands = []
    for fmt in data.FORMATS:
        a = acts[fmt]["acts"][:, :, feat]  # [n_win, SEQ-1]
        best, where = a.max(1)
        k = min(n, int((best > 0).sum()))
        if k:
            vals, wins = best.topk(k)
            cands += [(float(v), fmt, int(w), int(where[w]) + 1) for v, w in zip(vals, wins)]
    cands.sort(key=lambda c: (-c[0], c[1], c[2], c[3]))
    return cands[:n]


def name(tok_text: str) -> str:
    """Human name of a token: TOKEN_NAMES entry or the quoted stripped text."""
    s = tok_text.strip(" ")
    if s in TOKEN_NAMES:
        return TOKEN_NAMES[s]
    if s.strip() == "":
        return "indentation" if "\n" not in s and len(tok_text) > 1 else TOKEN_NAMES.get(
            "\n" if "\n" in s else "", "whitespace")
    return f'"{s.strip()}"'


def core_label(tok, acts, places) -> str:
    """Label from the tokens at (and before) the top places, see module docstring."""
    cur = Counter(_tok_text(tok, int(acts[f]["ids"][w, p])) for _, f, w, p in places)
    prev = Counter(_tok_text(tok, int(acts[f]["ids"][w, p - 1])) for _, f, w, p in places if p > 1)
    n = len(places)
    (t1, c1), *rest = sorted(cur.items(), key=lambda kv: (-kv[1], kv[0]))
    nxt = Counter(_tok_text(tok, int(acts[f]["ids"][w, p + 1])).strip()
                  for _, f, w, p in places if p + 1 < acts[f]["ids"].shape[1])
    if nxt and nxt.most_common(1)[0][0] in ('":', '":{', '":"', '":[') and \
            nxt.most_common(1)[0][1] >= 0.5 * n:
        return "json key" + (f' {name(t1)}' if c1 >= 0.4 * n else "")
    if c1 >= 0.4 * n:
        return name(t1)
    if prev:
        (p1, pc1) = sorted(prev.items(), key=lambda kv: (-kv[1], kv[0]))[0]
        if pc1 >= 0.4 * n:
            return f"after {name(p1)}"
    others = [name(t) for t, _ in rest if name(t) != name(t1)]
    return f"{name(t1)} / {others[0]}" if others else name(t1)


def build(model_dir: Path, sae_dir: Path) -> dict:
    """The catalogue document (dict) for the SAE at sae_dir on the model at model_dir."""
    model, tok = activations.load_demo(model_dir)
    t, sha = load_sae_tensors(sae_dir)
    hook = json.loads((sae_dir / "cfg.json").read_text())["metadata"]["hook_name"]
    layer = int(hook.split(".")[1])
    acts = heldout_activations(model, tok, layer, t)
    d_sae = t["W_enc"].shape[1]
    n_tok = {f: acts[f]["acts"].shape[0] * acts[f]["acts"].shape[1] for f in data.FORMATS}
    flat = {f: acts[f]["acts"].reshape(-1, d_sae) for f in data.FORMATS}
    mean = torch.stack([flat[f].sum(0) / n_tok[f] for f in data.FORMATS])  # [3, d_sae]
    share = mean / mean.sum(0).clamp_min(1e-12)
    allacts = torch.cat([flat[f] for f in data.FORMATS])
    density = (allacts > 0).float().mean(0)
    maxact = allacts.max(0).values
    features, used, groups = [], set(), {}
    for i in tqdm(range(d_sae), desc="label", mininterval=5):
        tags, fired = [], bool(maxact[i] > 0)
        for j, fmt in enumerate(data.FORMATS):
            if fired and share[j, i] >= FORMAT_SHARE:
                tags.append(f"format:{fmt}")
        if not fired:
            tags.append("inactive")
            core, ctx, places = f"inactive {i}", [], []
        else:
            places = top_places(acts, i, TOP_N)
            core = core_label(tok, acts, places)
            ctx = [{"text": context_text(tok, acts[f]["ids"][w], p), "activation": round(v, 4)}
                   for v, f, w, p in places[:N_CONTEXTS]]
        if fired:
            groups.setdefault(core, []).append(i)
        fmt_tag = [x.split(":")[1] for x in tags if x.startswith("format:")]
        label = f"{core} ({fmt_tag[0]})" if fmt_tag else core
        base, n = label, 1
        while _norm(label) in used:
            n += 1
            label = f"{base} #{n}"
        used.add(_norm(label))
        shares = ", ".join(f"{f} {share[j, i]:.2f}" for j, f in enumerate(data.FORMATS))
        desc = ("Never fires on the held-out texts." if not fired else
                f"Auto-labelled by scripts/train_demo/label.py from its top {len(places)} "
                f"held-out activations. Mean-activation share: {shares}.")
        features.append({"sae": SAE_ID, "index": i, "label": label, "aliases": [],
                         "description": desc, "tags": tags,
                         "max_activation": round(float(maxact[i]), 5),
                         "density": round(float(density[i]), 6), "top_contexts": ctx})
    aliases = set()
    for j, fmt in enumerate(data.FORMATS):
        alias = FORMAT_ALIASES[fmt]
        if _norm(alias) in used:
            continue
        cands = [i for i in range(d_sae) if density[i] >= 0.02 and share[j, i] >= FORMAT_SHARE]
        if cands:
            best = max(cands, key=lambda i: (round(float(share[j, i]), 3), float(density[i]), -i))
            features[best]["aliases"].append(alias)
            aliases.add(_norm(alias))
    # A label's core ("json key") names its densest feature when no label is exactly that.
    for core in sorted(groups):
        n = _norm(core)
        if '"' in core or "/" in core:  # only named cores ("json key", "def keyword")
            continue
        if n not in used and n not in aliases:
            best = max(groups[core], key=lambda i: (float(density[i]), -i))
            features[best]["aliases"].append(core)
            aliases.add(n)
    return {"version": 1,
            "saes": [{"id": SAE_ID, "hook": hook, "d_sae": d_sae, "sha256": sha,
                      "model": "steerc-demo"}],
            "features": features}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=DEMO / "model")
    ap.add_argument("--sae", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=DEMO / "catalogue.json")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    sae_dir = args.sae or next((DEMO / "saes").iterdir())
    doc = build(args.model, sae_dir)
    args.out.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
    live = [f for f in doc["features"] if "inactive" not in f["tags"]]
    print(f"{len(doc['features'])} features, {len(live)} active; tags: "
          + ", ".join(f"{t}={sum(t in f['tags'] for f in live)}"
                      for t in ("format:prose", "format:code", "format:json")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
