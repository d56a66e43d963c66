"""JSON guard: xgrammar vs llguidance on a 4096-token byte-level BPE, in one run.

    .venv/bin/python bench/json_guard_bench.py [--tokenizer demo/model] [--steps 300]

Measures, per library:
  * tokenizer-info build time and grammar compile time (builtin "any JSON" and a small schema);
  * per-token mask overhead while replaying a ~300-token valid JSON document:
    fill (grammar state -> bitmask) + apply (bitmask -> logits) + accept, in microseconds;
  * real decoding with sampling: tokens/s unguarded vs guarded, and how many outputs are
    valid for the schema.
Uses the demo model and tokenizer when `demo/model` exists, else trains a 4096-token
byte-level BPE on local text (Python sources of the installed packages) and decodes with a
random tiny Llama. Prints Markdown tables.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SCHEMA = {
    "type": "object",
    "properties": {
        "title": {"type": "string"},
        "priority": {"enum": ["low", "medium", "high"]},
        "tags": {"type": "array", "items": {"type": "string"}},
        "count": {"type": "integer"},
        "open": {"type": "boolean"},
    },
    "required": ["title", "priority", "tags"],
}


def train_bpe(vocab_size: int = 4096):
    """A byte-level BPE trained on local Python sources (no download)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    import transformers

    files = sorted(str(p) for p in Path(transformers.__file__).parent.glob("generation/*.py"))
    files += sorted(str(p) for p in Path(json.__file__).parent.glob("*.py"))
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<s>", "</s>", "<pad>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train(files, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>",
                                   pad_token="<pad>")


def load_tokenizer(path: str | None):
    from transformers import AutoTokenizer

    if path and Path(path).exists():
        return AutoTokenizer.from_pretrained(path), f"{path} (demo)"
    t0 = time.perf_counter()
    tok = train_bpe()
    return tok, f"byte-level BPE trained here in {time.perf_counter() - t0:.1f}s"


def sample_document(n_items: int) -> str:
    """A valid instance of SCHEMA, long enough to replay a few hundred tokens."""
    tags = [f"tag-{i} about item {i * 7}" for i in range(n_items)]
    return json.dumps({"title": "Refund request for order 12345 placed last week",
                       "priority": "high", "tags": tags, "count": 42, "open": True})


# --- xgrammar ---------------------------------------------------------------------------

class Xgr:
    name = "xgrammar"

    def __init__(self, tok, vocab_size):
        import xgrammar as xgr

        self.xgr = xgr
        t0 = time.perf_counter()
        self.info = xgr.TokenizerInfo.from_huggingface(tok, vocab_size=vocab_size,
                                                       stop_token_ids=[tok.eos_token_id])
        self.t_info = time.perf_counter() - t0
        self.vocab = vocab_size

    def compile(self, schema):
        comp = self.xgr.GrammarCompiler(self.info, cache_enabled=False)
        t0 = time.perf_counter()
        g = comp.compile_builtin_json_grammar() if schema is None else comp.compile_json_schema(json.dumps(schema))
        return g, time.perf_counter() - t0

    def matcher(self, g):
        return self.xgr.GrammarMatcher(g)

    def bitmask(self):
        return self.xgr.allocate_token_bitmask(1, self.vocab)

    def fill(self, m, mask):
        m.fill_next_token_bitmask(mask, 0)

    def apply(self, logits, mask):
        self.xgr.apply_token_bitmask_inplace(logits, mask)

    def accept(self, m, t):
        assert m.accept_token(t)


# --- llguidance -------------------------------------------------------------------------

class Llg:
    name = "llguidance"

    def __init__(self, tok, vocab_size):
        import llguidance
        import llguidance.hf
        import llguidance.torch

        self.llg = llguidance
        t0 = time.perf_counter()
        self.tok = llguidance.hf.from_tokenizer(tok, n_vocab=vocab_size)
        self.t_info = time.perf_counter() - t0
        self.vocab = vocab_size

    def compile(self, schema):
        L = self.llg.LLMatcher
        t0 = time.perf_counter()
        grammar = L.grammar_from_json_schema({} if schema is None else schema)
        m = L(self.tok, grammar)  # grammar compiled here; lexer states are built lazily
        assert not m.is_error(), m.get_error()
        return grammar, time.perf_counter() - t0

    def matcher(self, g):
        return self.llg.LLMatcher(self.tok, g)

    def bitmask(self):
        return self.llg.torch.allocate_token_bitmask(1, self.vocab)

    def fill(self, m, mask):
        self.llg.torch.fill_next_token_bitmask(m, mask, 0)

    def apply(self, logits, mask):
        self.llg.torch.apply_token_bitmask_inplace(logits, mask)  # llguidance's torch.compile kernel

    def accept(self, m, t):
        assert m.consume_token(t), m.get_error()


def replay(lib, grammar, ids, vocab) -> dict:
    """Per-step fill/apply/accept times (us) replaying `ids`, after one warm-up pass."""
    out = {}
    for rep in range(2):
        m, mask = lib.matcher(grammar), lib.bitmask()
        logits = torch.randn(1, vocab)
        fills, applies, accepts = [], [], []
        for t in ids:
            t0 = time.perf_counter(); lib.fill(m, mask)
            t1 = time.perf_counter(); lib.apply(logits, mask)
            t2 = time.perf_counter(); lib.accept(m, t)
            t3 = time.perf_counter()
            fills.append(t1 - t0); applies.append(t2 - t1); accepts.append(t3 - t2)
        out = {k: 1e6 * statistics.median(v) for k, v in
               (("fill", fills), ("apply", applies), ("accept", accepts))}
        out["total_mean"] = 1e6 * (sum(fills) + sum(applies) + sum(accepts)) / len(ids)
    return out


def tiny_llama(vocab: int):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=vocab, hidden_size=256, intermediate_size=512, num_hidden_layers=4,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
                      bos_token_id=0, eos_token_id=1, pad_token_id=2)
    return LlamaForCausalLM(cfg).eval()


def decode_speeds(model, tok, makers: dict, n_new: int, runs: int) -> dict:
    """Median tokens/s per config; runs are interleaved (A B C A B C ...) so load on a shared
    machine hits every config alike. Also the median of the per-run guard overhead in ms/token
    (guarded run time minus the unguarded run time of the same round, per token)."""
    ids = tok("Answer in JSON:", return_tensors="pt").input_ids
    times = {k: [] for k in makers}
    for r in range(runs + 1):
        for name, mk in makers.items():
            torch.manual_seed(r)
            procs = [mk()] if mk else []
            t0 = time.perf_counter()
            out = model.generate(ids, max_new_tokens=n_new, do_sample=True, logits_processor=procs,
                                 eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
            dt = time.perf_counter() - t0
            if r:  # round 0 warms up
                text = tok.decode(out[0, ids.shape[1]:], skip_special_tokens=True)
                times[name].append((out.shape[1] - ids.shape[1], dt, _valid(text)))
    base = times["unguarded"]
    res = {}
    for name, ts in times.items():
        rate = statistics.median(n / dt for n, dt, _ in ts)
        over = statistics.median(1e3 * (dt / n - b_dt / b_n) for (n, dt, _), (b_n, b_dt, _) in zip(ts, base))
        res[name] = (rate, over, statistics.median(n for n, _, _ in ts),
                     f"{sum(v for _, _, v in ts)}/{len(ts)}")
    return res


def _valid(text: str) -> bool:
    """Does the generated text parse as JSON and validate against SCHEMA?"""
    import jsonschema

    try:
        jsonschema.validate(json.loads(text), SCHEMA)
        return True
    except (json.JSONDecodeError, jsonschema.ValidationError):
        return False


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokenizer", default=str(ROOT / "demo" / "model"))
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--new-tokens", type=int, default=200)
    ap.add_argument("--runs", type=int, default=8)
    args = ap.parse_args()
    torch.set_num_threads(1)  # the shared 2-core box: one thread gives stable timings

    tok, tok_src = load_tokenizer(args.tokenizer)
    vocab = len(tok)
    print(f"tokenizer: {tok_src}; vocab {vocab}")
    doc = sample_document(40)
    ids = tok(doc, add_special_tokens=False).input_ids
    while len(ids) < args.steps:
        doc = sample_document(len(json.loads(doc)["tags"]) * 2)
        ids = tok(doc, add_special_tokens=False).input_ids
    print(f"replayed document: {len(ids)} tokens, {len(doc)} chars")

    demo = Path(args.tokenizer)
    if (demo / "model.safetensors").exists() and tok_src.endswith("(demo)"):
        from transformers import AutoModelForCausalLM

        model, model_src = AutoModelForCausalLM.from_pretrained(demo).eval(), f"the demo model ({demo.name}, trained)"
    else:
        model, model_src = tiny_llama(vocab), "a random tiny Llama 4x256"
    rows, decode = [], {}
    for cls in (Xgr, Llg):
        lib = cls(tok, vocab)
        g_any, t_any = lib.compile(None)
        g_sch, t_sch = lib.compile(SCHEMA)
        r_any = replay(lib, g_any, ids, vocab)
        r_sch = replay(lib, g_sch, ids, vocab)
        rows.append((lib.name, lib.t_info, t_any, t_sch, r_any, r_sch))
        decode[lib.name] = lib

    print("\n| library | tokenizer info (ms) | compile any-JSON (ms) | compile schema (ms) "
          "| any-JSON fill / apply / accept, median us | schema fill / apply / accept, median us "
          "| schema mean total us/token |")
    print("|---|---|---|---|---|---|---|")
    for name, ti, ta, ts, ra, rs in rows:
        print(f"| {name} | {1e3 * ti:.1f} | {1e3 * ta:.1f} | {1e3 * ts:.1f} "
              f"| {ra['fill']:.1f} / {ra['apply']:.1f} / {ra['accept']:.1f} "
              f"| {rs['fill']:.1f} / {rs['apply']:.1f} / {rs['accept']:.1f} | {rs['total_mean']:.1f} |")

    # Real decoding: a fresh processor per generate() call, built on the compiled grammar.
    import xgrammar as xgr

    from steerc.guard import GuardFactory

    xlib = decode["xgrammar"]
    g_x = xlib.compile(SCHEMA)[0]
    steerc_guard = GuardFactory(tok, json.dumps(SCHEMA), vocab_size=vocab)
    makers = {
        "unguarded": None,
        "xgrammar (contrib.hf.LogitsProcessor)": lambda: xgr.contrib.hf.LogitsProcessor(g_x),
        "llguidance (minimal processor)": lambda: LlgProcessor(decode["llguidance"], SCHEMA),
        "steerc guard (xgrammar + closure + whitespace cap)": lambda: steerc_guard.processor(args.new_tokens),
    }
    print(f"\n| decoding with {model_src} (max {args.new_tokens} new tokens, sampled) "
          "| tokens/s (median) | overhead ms/token vs unguarded (median) | tokens/run (median) "
          "| valid for the schema |")
    print("|---|---|---|---|---|")
    for name, (rate, over, n, ok) in decode_speeds(model, tok, makers, args.new_tokens, args.runs).items():
        print(f"| {name} | {rate:.0f} | {over:+.2f} | {n:.0f} | {ok} |")
    return 0


class LlgProcessor:
    """The ~20-line HF wrapper llguidance leaves to the user (bench only)."""

    def __init__(self, lib: Llg, schema):
        self.lib, self.m = lib, lib.matcher(lib.llg.LLMatcher.grammar_from_json_schema(schema))
        self.mask, self.started = lib.bitmask(), False

    def __call__(self, input_ids, scores):
        if self.started:
            self.lib.accept(self.m, int(input_ids[0, -1]))
        self.started = True
        self.lib.fill(self.m, self.mask)
        self.lib.apply(scores, self.mask)
        return scores


if __name__ == "__main__":
    raise SystemExit(main())
