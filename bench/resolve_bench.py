"""Resolve benchmark: parse + resolve a generated R-rule spec against an N-feature catalogue.

    .venv/bin/python bench/resolve_bench.py --features 1000000 --rules 10000 --write BENCHMARKS.md

Setup (not timed as part of resolve): a catalogue of N features of one SAE, indexed once
with `steerc.catalogue.build_index`; an SAELens SAE with d_sae = N (d_in 4, so the files
stay small); a model folder holding a 4-layer config.json. The spec mixes the rule kinds a
real one has: label and alias refs, index refs, search refs (each matching exactly one
feature), `clamp ... to 3x max`, `steer ... at layers`, `when` blocks and tag sets.

Timed: `parse_file` alone, then `steerc.compiler.load.load` (parse + `use` + resolve) with a
cold and a warm hash cache (the SAE content hash is the only thing the cache holds), and
`build_lock`. The obvious alternative, in the same run: `json.load` the catalogue JSON and
build Python dicts for label/alias/index lookups, then answer the same label and index refs.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from safetensors.numpy import save_file  # noqa: E402

from bench.mdsection import write_section  # noqa: E402
from steerc.catalogue import build_index  # noqa: E402

WORDS = ("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike "
         "november oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee zulu").split()
N_TAGS = 1000          # tag:K on features i < tagged_below(n) with i % N_TAGS == K


def tagged_below(n: int) -> int:
    return min(100 * N_TAGS, n // 10)


def label(i: int) -> str:
    return f"{WORDS[i % 26]} {WORDS[(i // 26) % 26]} n{i}"


def catalogue_doc(n: int) -> dict:
    feats = []
    for i in range(n):
        f = {"sae": "res", "index": i, "label": label(i), "max_activation": 1.0 + (i % 7)}
        if i % 5 == 0:
            f["aliases"] = [f"a{i}"]
        if i < tagged_below(n):
            f["tags"] = [f"tag:{i % N_TAGS}"]
        feats.append(f)
    return {"version": 1, "saes": [{"id": "res", "hook": "blocks.1.hook_resid_post", "d_sae": n}],
            "features": feats}


def write_sae(path: Path, n: int, d_in: int = 4) -> None:
    path.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    t = {"W_enc": rng.standard_normal((d_in, n), dtype=np.float32),
         "W_dec": rng.standard_normal((n, d_in), dtype=np.float32),
         "b_enc": np.zeros(n, np.float32), "b_dec": np.zeros(d_in, np.float32)}
    save_file(t, str(path / "sae_weights.safetensors"), metadata={"format": "pt"})
    cfg = {"d_in": d_in, "d_sae": n, "dtype": "float32", "device": "cpu", "apply_b_dec_to_input": False,
           "normalize_activations": "none", "reshape_activations": "none", "architecture": "standard",
           "metadata": {"sae_lens_version": "6.0.0", "hook_name": "blocks.1.hook_resid_post",
                        "model_name": "bench", "hook_head_index": None}}
    (path / "cfg.json").write_text(json.dumps(cfg))


def spec_text(n: int, rules: int) -> tuple[str, list[tuple[str, int]]]:
    """The spec and the (kind, index) of every single-feature ref (for the alternative)."""
    lines = ['model "model"', 'sae res = "sae"', 'catalogue "catalogue.sqlite"']
    refs = []
    lo = tagged_below(n)
    stride = (n - lo) // (rules + 1)
    assert stride >= 2, "too many rules for this many features"
    for r in range(rules):
        i = lo + r * stride          # distinct features (i and i + 1), none in a tag set
        kind = r % 10
        if kind < 4:
            lines.append(f'suppress res["{label(i)}"]')
            refs.append(("label", i))
        elif kind == 4:
            j = i - i % 5
            lines.append(f'suppress res["a{j}"]')
            refs.append(("label", j))
        elif kind == 5:
            lines.append(f"scale res[{i}] by 0.5 on generated")
            refs.append(("index", i))
        elif kind == 6:
            lines.append(f'clamp res[search "n{i}"] to 3x max')
        elif kind == 7:
            lines.append(f'steer res["{label(i)}"] by 2 at layers 1..3')
            refs.append(("label", i))
        elif kind == 8:
            lines.append(f'when res[{i + 1}] > 0.5 {{ clamp res["{label(i)}"] to 2 }}')
            refs.append(("label", i))
        else:
            lines.append(f'suppress features tagged "tag:{(r // 10) % N_TAGS}" limit 3 on prompt')
    return "\n".join(lines) + "\n", refs


def timed(fn) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) of one call: on a shared machine the CPU
    time is the steadier figure."""
    w, c = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w, time.process_time() - c


def alternative(json_path: Path, refs: list[tuple[str, int]]) -> None:
    """json.load + dicts, then the same label/index lookups."""
    doc = json.loads(json_path.read_bytes())
    by_name, by_index = {}, {}
    for f in doc["features"]:
        by_index[(f["sae"], f["index"])] = f
        by_name[(f["sae"], " ".join(f["label"].split()).casefold())] = f
        for a in f.get("aliases", ()):
            by_name.setdefault((f["sae"], a.casefold()), f)
    for kind, i in refs:
        key = ("res", label(i).casefold()) if kind == "label" else None
        f = by_name.get(key) or by_name.get(("res", f"a{i}")) if kind == "label" else by_index[("res", i)]
        assert f is not None


def run(n: int, rules: int, work: Path) -> dict:
    r: dict = {"features": n, "rules": rules}
    os.environ["STEERC_CACHE_DIR"] = str(work / "cache")
    cat_json, cat_idx = work / "catalogue.json", work / "catalogue.sqlite"
    if not cat_idx.exists():
        cat_json.write_text(json.dumps(catalogue_doc(n)))
        r["index_build_s"] = timed(lambda: build_index(cat_json, cat_idx, progress=False))
        (work / "setup.json").write_text(json.dumps({"index_build_s": r["index_build_s"]}))
    elif (work / "setup.json").exists():  # measured when this workdir was set up
        r.update(json.loads((work / "setup.json").read_text()))
    if not (work / "sae").exists():
        write_sae(work / "sae", n)
    (work / "model").mkdir(exist_ok=True)
    (work / "model" / "config.json").write_text(json.dumps({"num_hidden_layers": 4}))
    text, refs = spec_text(n, rules)
    spec = work / "big.steer"
    spec.write_text(text)

    from steerc.files.hashing import cache_path
    from steerc.compiler.load import load
    from steerc.compiler.lock import build_lock
    from steerc.grammar.parser import parse_file

    cache_path().unlink(missing_ok=True)
    import steerc.files.hashing as hashing
    hashing._conn = None
    gc.collect()
    r["parse_s"] = timed(lambda: parse_file(spec))
    r["load_cold_s"] = timed(lambda: load(spec))
    warm = [timed(lambda: load(spec)) for _ in range(5)]
    r["load_warm_s"] = (min(w for w, _ in warm), min(c for _, c in warm))
    parses = [timed(lambda: parse_file(spec)) for _ in range(4)] + [r["parse_s"]]
    r["parse_s"] = (min(w for w, _ in parses), min(c for _, c in parses))
    loaded = load(spec)
    r["interventions"] = len(loaded.program.interventions)
    r["warnings"] = len(loaded.diagnostics)
    r["lock_s"] = timed(lambda: build_lock(loaded.program, work))
    if cat_json.exists():
        gc.collect()
        r["alt_json_dict_s"] = timed(lambda: alternative(cat_json, refs))
    return r


def report(r: dict, command: str) -> str:
    rows = [("parse only (`parse_file`, best of 5)", r["parse_s"]),
            ("parse + resolve, cold hash cache (`load`)", r["load_cold_s"]),
            ("parse + resolve, warm hash cache (`load`, best of 5)", r["load_warm_s"]),
            ("`build_lock` on the result", r["lock_s"])]
    if "alt_json_dict_s" in r:
        rows.append(("alternative: `json.load` + dicts, label/index refs only", r["alt_json_dict_s"]))
    if "index_build_s" in r:
        rows.append(("(setup) `build_index` of the catalogue, once", r["index_build_s"]))
    out = [f"{r['rules']:,} rules -> {r['interventions']:,} interventions against a "
           f"{r['features']:,}-feature catalogue (SQLite index) and a d_sae {r['features']:,} SAE.",
           "", "| step | wall s | CPU s |", "|---|---|---|"]
    out += [f"| {name} | {w:.2f} | {c:.2f} |" for name, (w, c) in rows]
    out += ["", "Goal: parse + resolve <= 2 s. The cold run also pays the first import of torch "
            "(steerc.saes) and hashes the SAE's tensors; the warm run reads that hash from the cache."]
    load = os.getloadavg()[0]
    out += ["", f"Command: `{command}` (2-core machine shared with other jobs, load average "
            f"{load:.1f} at the end of the run: wall times are inflated, CPU times are the steadier "
            "figure)."]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--features", type=int, default=1_000_000)
    ap.add_argument("--rules", type=int, default=10_000)
    ap.add_argument("--workdir", type=Path, help="reuse generated files here (default: a temp dir)")
    ap.add_argument("--write", type=Path, help="write the `## Resolve` section of this markdown file")
    args = ap.parse_args(argv)
    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)
        r = run(args.features, args.rules, args.workdir)
    else:
        with tempfile.TemporaryDirectory() as d:
            r = run(args.features, args.rules, Path(d))
    cmd = f".venv/bin/python bench/resolve_bench.py --features {args.features} --rules {args.rules}"
    text = report(r, cmd)
    print(text)
    if args.write:
        write_section(args.write, "## Resolve\n\n" + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
