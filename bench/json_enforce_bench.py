"""`enforce json`: latent steering vs the decode-time guard vs both, on the demo model.

    .venv/bin/python bench/json_enforce_bench.py [--max-new-tokens 80] [--strengths 1,2,4,8]

Prompts: bench/prompts/json_prompts.jsonl (104 lines: 36 prose, 32 code, 36 JSON-context
starts). Sampling: temperature 1, no top-k/top-p, batches of 26 left-padded prompts, seed
`seed * 1000 + batch` before every generate call (every condition sees the same RNG stream).

Conditions (one run, batches interleaved so machine load hits them alike):
  base             base weights, GenerationMixin.generate
  latent s=S       compiled `enforce json format strength S` checkpoint, guard bypassed
                   (GenerationMixin.generate on the loaded model: hooks run, guard does not);
                   (format:prose/code/markdown features set to 0, format:json features
                   scaled by S); S=1 is suppress-only
  steer-only s=S   `steer features tagged "format:json" by S` (adds S decoder rows per
                   feature, no suppress: the pre-2026-11-25 latent half), for comparison
  guard            base weights + steerc.guard.GuardFactory processor (any JSON object/array)
  latent+guard     the compiled checkpoint's own model.generate (custom_generate/generate.py)
  schema guard     base weights + guard for specs/examples/schemas/ticket.json
  schema latent+guard  compiled `enforce json schema` checkpoint, model.generate

Metrics, on the continuation `c` = decode(new tokens, skip_special_tokens=True):
  valid   json.loads(c.strip()) succeeds and gives an object or array (what `enforce json
          format` promises: the whole output is one JSON document);
  prefix  c.lstrip() *starts with* a complete JSON object/array (json raw_decode), trailing
          text allowed: a looser signal of whether steering moved the model towards JSON;
  schema  valid and jsonschema-valid for the ticket schema;
  tok/s   decode throughput: batch rows x decode steps / wall seconds (a row that finished
          early still rides along its batch, so this is the per-step cost, not the early stop);
  ms/step wall / decode steps (batch of 26); emitted = new tokens up to and including EOS.
Latent sweep: valid/prefix per strength, and on demo/heldout windows (128 tokens) the mean
per-token KL(base || steered) on neutral.txt and the next-token loss on neutral.txt and json.txt.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PROMPTS = ROOT / "bench" / "prompts" / "json_prompts.jsonl"
SCHEMA = ROOT / "specs" / "examples" / "schemas" / "ticket.json"
DEMO = ROOT / "demo"
SPEC_HEAD = (f'model "{DEMO / "model"}"\nsae res2 = "{DEMO / "saes" / "blocks.2.hook_resid_post"}"\n'
             f'catalogue "{DEMO / "catalogue.json"}"\n')


def load_prompts(path: Path = PROMPTS) -> list[dict]:
    """[{"kind": "prose"|"code"|"json", "prompt": str}] in file order."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def json_doc(text: str):
    """The JSON object/array that is the whole of `text` (whitespace aside), else None."""
    try:
        doc = json.loads(text.strip())
    except ValueError:
        return None
    return doc if isinstance(doc, (dict, list)) else None


def starts_with_json(text: str) -> bool:
    """`text` begins (after whitespace) with a complete JSON object or array."""
    try:
        doc, _ = json.JSONDecoder().raw_decode(text.lstrip())
    except ValueError:
        return False
    return isinstance(doc, (dict, list))


def compile_spec(body: str, workdir: Path, name: str) -> Path:
    """Compile SPEC_HEAD + body with steerc's library API; returns the checkpoint dir."""
    from steerc.compiler.build_checkpoint import compile_program
    from steerc.compiler.load import load_program

    spec = workdir / f"{name}.steer"
    spec.write_text(SPEC_HEAD + body + "\n", encoding="utf-8")
    out = workdir / name
    compile_program(load_program(spec), out, force=True)
    return out


# --- generation ---------------------------------------------------------------------------


class Condition:
    """One way of generating; accumulates texts, tokens, wall time and truncated rows."""

    def __init__(self, name: str, gen):
        self.name, self.gen = name, gen
        self.texts: list[str] = []
        self.tokens = self.steps = self.row_steps = self.truncated = 0
        self.wall = 0.0


def sample_kwargs(args, tok) -> dict:
    return dict(do_sample=True, temperature=args.temperature, top_k=0, top_p=1.0,
                max_new_tokens=args.max_new_tokens, pad_token_id=tok.pad_token_id,
                eos_token_id=tok.eos_token_id)


def unguarded(model, kw):
    from transformers import GenerationMixin

    return lambda enc: (GenerationMixin.generate(model, **enc, **kw), 0)


def guarded_factory(model, factory, kw):
    """Base weights + a fresh steerc guard per call (what a steerc user would wire by hand)."""
    from transformers import GenerationMixin, LogitsProcessorList

    def gen(enc):
        g = factory.processor(kw["max_new_tokens"])
        out = GenerationMixin.generate(model, **enc, **kw, logits_processor=LogitsProcessorList([g]))
        return out, len(g.finish(out))
    return gen


def guarded_checkpoint(model, tok, kw):
    """The compiled checkpoint's own generate (custom_generate/generate.py); `tokenizer=` spares
    it loading the checkpoint's tokenizer (AutoTokenizer would ask about the custom config)."""
    def gen(enc):
        out = model.generate(**enc, **kw, tokenizer=tok)
        return out, len(model.json_guard_truncated)
    return gen


def run_conditions(conds: list[Condition], prompts: list[str], tok, args) -> None:
    """Every batch through every condition (interleaved), same seed per batch; one untimed
    warm-up call each first (grammar compiles, lazy imports)."""
    warm = tok(prompts[:2], return_tensors="pt", padding=True)
    for c in conds:
        c.gen(warm)
    for b in range(0, len(prompts), args.batch):
        enc = tok(prompts[b:b + args.batch], return_tensors="pt", padding=True)
        width = enc["input_ids"].shape[1]
        for c in conds:
            torch.manual_seed(args.seed * 1000 + b)
            t0 = time.perf_counter()
            out, trunc = c.gen(enc)
            c.wall += time.perf_counter() - t0
            new = out[:, width:]
            c.steps += new.shape[1]
            c.row_steps += new.numel()  # rows that finished early still cost their steps
            c.truncated += trunc
            # count tokens up to and including the first EOS; pad after it is not generated
            for row in new.tolist():
                n = row.index(tok.eos_token_id) + 1 if tok.eos_token_id in row else len(row)
                c.tokens += n
                c.texts.append(tok.decode(row[:n], skip_special_tokens=True))


def time_pairs(pairs: list[tuple[str, Condition, Condition]], prompts: list[str], tok, args) -> dict:
    """Per pair (unguarded, guarded): every batch `args.reps` times, the two alternating; the
    median ms/step of each (a shared machine's load comes and goes; medians resist it)."""
    import statistics

    ms = {label: ([], []) for label, _, _ in pairs}
    for b in range(0, len(prompts), args.batch):
        enc = tok(prompts[b:b + args.batch], return_tensors="pt", padding=True)
        for _ in range(args.reps):
            for label, cu, cg in pairs:
                for side, c in enumerate((cu, cg)):
                    torch.manual_seed(args.seed * 1000 + b)
                    t0 = time.perf_counter()
                    out, _ = c.gen(enc)
                    steps = out.shape[1] - enc["input_ids"].shape[1]
                    ms[label][side].append(1000 * (time.perf_counter() - t0) / steps)
    return {label: (statistics.median(u), statistics.median(g)) for label, (u, g) in ms.items()}


# --- held-out text ------------------------------------------------------------------------


def windows(tok, path: Path, length: int, limit: int) -> torch.Tensor:
    ids = tok(path.read_text(encoding="utf-8"))["input_ids"]
    n = min(limit, len(ids) // length)
    return torch.tensor(ids[: n * length]).view(n, length)  # (n, length)


@torch.no_grad()
def logprobs(model, ids: torch.Tensor) -> torch.Tensor:
    return torch.cat([torch.log_softmax(model(input_ids=ids[i:i + 16]).logits.float(), -1)
                      for i in range(0, len(ids), 16)])  # (n, length, vocab)


def nll(lp: torch.Tensor, ids: torch.Tensor) -> float:
    return -lp[:, :-1].gather(-1, ids[:, 1:, None]).mean().item()


def kl(lp_p: torch.Tensor, lp_q: torch.Tensor) -> float:
    """Mean per-token KL(p || q) in nats."""
    return (lp_p.exp() * (lp_p - lp_q)).sum(-1).mean().item()


# --- report -------------------------------------------------------------------------------


def rates(c: Condition, kinds: list[str], schema_validator=None) -> dict:
    docs = [json_doc(t) for t in c.texts]
    r = {"valid": sum(d is not None for d in docs), "prefix": sum(map(starts_with_json, c.texts)),
         "n": len(docs)}
    for k in ("prose", "code", "json"):
        idx = [i for i, kk in enumerate(kinds) if kk == k]
        r[k] = (sum(docs[i] is not None for i in idx), len(idx))
    if schema_validator is not None:
        r["schema"] = sum(d is not None and schema_validator.is_valid(d) for d in docs)
    return r


def pct(a: int, n: int) -> str:
    return f"{a}/{n} ({100 * a / n:.0f}%)" if n else "-"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--max-new-tokens", type=int, default=80)
    ap.add_argument("--temperature", type=float, default=1.0)
    ap.add_argument("--strengths", default="1,2,4,8")
    ap.add_argument("--steer-only", default="2", help="strengths of a steer-only spec "
                    "(`steer features tagged \"format:json\" by S`, no suppress), for comparison")
    ap.add_argument("--batch", type=int, default=26)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--kl-windows", type=int, default=32)
    ap.add_argument("--reps", type=int, default=3, help="timing repetitions per batch and pair")
    ap.add_argument("--limit", type=int, default=None, help="first N prompts only (smoke runs)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)

    import jsonschema
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from steerc.compiler.resolve import DEFAULT_JSON_STRENGTH
    from steerc.guard import GuardFactory

    t_start = time.perf_counter()
    rows = load_prompts()[: args.limit]
    prompts, kinds = [r["prompt"] for r in rows], [r["kind"] for r in rows]
    tok = AutoTokenizer.from_pretrained(DEMO / "model")
    tok.padding_side = "left"
    kw = sample_kwargs(args, tok)
    strengths = [float(s) for s in args.strengths.split(",")]
    if DEFAULT_JSON_STRENGTH not in strengths:
        strengths.append(DEFAULT_JSON_STRENGTH)
    schema_text = SCHEMA.read_text(encoding="utf-8")

    base = AutoModelForCausalLM.from_pretrained(DEMO / "model").eval()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        ckpts = {s: compile_spec(f"enforce json format strength {s:g}", tmp, f"fmt{s:g}")
                 for s in strengths}
        steer_only = [float(x) for x in args.steer_only.split(",") if x]
        ckpts_so = {s: compile_spec(f'steer features tagged "format:json" by {s:g}', tmp, f"so{s:g}")
                    for s in steer_only}
        ckpt_schema = compile_spec(f'enforce json schema "{SCHEMA}"', tmp, "schema")
        t_compile = time.perf_counter() - t0
        load = lambda p: AutoModelForCausalLM.from_pretrained(p, trust_remote_code=True).eval()
        latent = {s: load(p) for s, p in ckpts.items()}
        latent.update({f"so{s:g}": load(p) for s, p in ckpts_so.items()})
        schema_model = load(ckpt_schema)

        f_any = GuardFactory(tok, None)
        f_schema = GuardFactory(tok, schema_text)
        main_s = DEFAULT_JSON_STRENGTH
        conds = [Condition("base", unguarded(base, kw)),
                 Condition("guard (base weights)", guarded_factory(base, f_any, kw))]
        conds += [Condition(f"latent s={s:g}", unguarded(latent[s], kw)) for s in strengths]
        conds += [Condition(f"steer-only s={s:g}", unguarded(latent[f"so{s:g}"], kw)) for s in steer_only]
        conds += [Condition(f"latent s={main_s:g} + guard (checkpoint generate)",
                            guarded_checkpoint(latent[main_s], tok, kw)),
                  Condition("schema guard (base weights)", guarded_factory(base, f_schema, kw)),
                  Condition(f"schema latent s={main_s:g} + guard (checkpoint generate)",
                            guarded_checkpoint(schema_model, tok, kw))]
        t0 = time.perf_counter()
        run_conditions(conds, prompts, tok, args)
        t_gen = time.perf_counter() - t0
        by = {c.name: c for c in conds}
        pairs = [("base, any JSON", by["base"], by["guard (base weights)"]),
                 ("base, ticket schema", by["base"], by["schema guard (base weights)"]),
                 (f"latent s={main_s:g}, any JSON (checkpoint generate)", by[f"latent s={main_s:g}"],
                  by[f"latent s={main_s:g} + guard (checkpoint generate)"])]
        t0, load_before = time.perf_counter(), os.getloadavg()
        timing = time_pairs(pairs, prompts, tok, args)
        t_time, load_after = time.perf_counter() - t0, os.getloadavg()

        neutral = windows(tok, DEMO / "heldout" / "neutral.txt", 128, args.kl_windows)
        jsontxt = windows(tok, DEMO / "heldout" / "json.txt", 128, args.kl_windows)
        lp_base, lp_base_j = logprobs(base, neutral), logprobs(base, jsontxt)
        held = {"base": (0.0, nll(lp_base, neutral), nll(lp_base_j, jsontxt))}
        for s, m in latent.items():
            lp = logprobs(m, neutral)
            held[s] = (kl(lp_base, lp), nll(lp, neutral), nll(logprobs(m, jsontxt), jsontxt))

    validator = jsonschema.Draft202012Validator(json.loads(schema_text))
    n = len(prompts)
    print(f"# enforce json bench: {n} prompts ({kinds.count('prose')} prose, {kinds.count('code')} "
          f"code, {kinds.count('json')} JSON-context), temperature {args.temperature:g}, "
          f"max_new_tokens {args.max_new_tokens}, batch {args.batch}, seed {args.seed}, 1 thread")
    print(f"# compile {len(ckpts) + len(ckpts_so) + 1} checkpoints {t_compile:.0f}s, generation {t_gen:.0f}s, "
          f"timing {t_time:.0f}s ({args.reps} reps), "
          f"total {time.perf_counter() - t_start:.0f}s\n")
    print("| condition | valid JSON | prose | code | JSON-ctx | starts with JSON | schema-valid "
          "| truncated | emitted tokens | tok/s | ms/step |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for c in conds:
        r = rates(c, kinds, validator)
        print(f"| {c.name} | {pct(r['valid'], n)} | {pct(*r['prose'])} | {pct(*r['code'])} | "
              f"{pct(*r['json'])} | {pct(r['prefix'], n)} | {pct(r['schema'], n)} | {c.truncated} | "
              f"{c.tokens} | {c.row_steps / c.wall:.0f} | {1000 * c.wall / c.steps:.1f} |")
    print(f"\nGuarded vs unguarded decode speed, same weights, prompts and seeds: median ms/step "
          f"over {args.reps} alternating reps of each batch; tok/s = {args.batch} rows / ms/step. "
          f"Load average (1/5/15 min) before timing {'/'.join(f'{x:.2f}' for x in load_before)}, "
          f"after {'/'.join(f'{x:.2f}' for x in load_after)}:\n")
    print("| weights, guard | unguarded ms/step | guarded ms/step | unguarded tok/s | guarded tok/s "
          "| guarded / unguarded |")
    print("|---|---|---|---|---|---|")
    for label, (mu, mg) in timing.items():
        print(f"| {label} | {mu:.1f} | {mg:.1f} | {1000 * args.batch / mu:.0f} | "
              f"{1000 * args.batch / mg:.0f} | {mu / mg:.2f}x |")
    print("\nLatent strength sweep (guard off):\n")
    print("| strength | valid JSON | starts with JSON | KL(base‖steered) neutral, nats/token "
          "| loss neutral | loss json.txt |")
    print("|---|---|---|---|---|---|")
    rb = rates(by["base"], kinds)
    k0, ln, lj = held["base"]
    print(f"| base (no rule) | {pct(rb['valid'], n)} | {pct(rb['prefix'], n)} | {k0:.3f} | {ln:.3f} | {lj:.3f} |")
    for s in strengths:
        r = rates(by[f"latent s={s:g}"], kinds)
        k, ln, lj = held[s]
        print(f"| {s:g} | {pct(r['valid'], n)} | {pct(r['prefix'], n)} | {k:.3f} | {ln:.3f} | {lj:.3f} |")
    for s in steer_only:
        r = rates(by[f"steer-only s={s:g}"], kinds)
        k, ln, lj = held[f"so{s:g}"]
        print(f"| steer only {s:g} (no suppress) | {pct(r['valid'], n)} | {pct(r['prefix'], n)} | "
              f"{k:.3f} | {ln:.3f} | {lj:.3f} |")
    print("\nSamples (first prompt of each kind), and every guarded output that is not valid:")
    for k in ("prose", "code", "json"):
        if k in kinds:
            i = kinds.index(k)
            print(f"  [{k}] {prompts[i]!r}")
            for c in conds:
                print(f"    {c.name}: {c.texts[i][:90]!r}")
    for c in conds:
        if "guard" in c.name:
            for i, t in enumerate(c.texts):
                if json_doc(t) is None:
                    print(f"  INVALID {c.name} #{i}: {t!r}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
