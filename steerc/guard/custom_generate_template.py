"""steerc JSON guard: every generated document is JSON (or JSON valid against a schema).

This file is copied verbatim to `<checkpoint>/custom_generate/generate.py` and is also the
code steerc itself runs (`steerc.guard` imports it), so there is one copy. It imports only
torch, numpy, transformers, xgrammar and the standard library (json, warnings): a downstream
user needs `pip install xgrammar`, never steerc.

    model = AutoModelForCausalLM.from_pretrained(ckpt, trust_remote_code=True)
    out = model.generate(**tok(prompt, return_tensors="pt"), max_new_tokens=256)

`generate(model, ...)` reads `custom_generate/guard.json` of the loaded checkpoint (it names
`schema.json`, or null for any JSON object or array; a missing guard.json is an error),
builds a fresh `JsonGuard` for the call, and runs the standard `GenerationMixin.generate`. The tokenizer comes from the `tokenizer` kwarg, else from
`model.name_or_path` (the checkpoint directory, which ships its tokenizer).

Closure: a guard knows `max_new_tokens`; it searches the grammar for a short closing token
path, re-searching as the spare tokens shrink, and forces that path when the budget would
otherwise run out, so a capped generation still ends as a complete document. Rows that still
end incomplete are listed in `guard.truncated_rows` and reported by a warning.
"""

import json
import warnings

import numpy as np
import torch
import transformers
import xgrammar as xgr

GUARD_FILE = "guard.json"  # {"schema_file": "schema.json" | null}; always written
ANY_JSON = '{"type": ["object", "array"]}'  # `enforce json format`
MAX_WHITESPACE = 24  # whitespace characters allowed between two JSON tokens (indent + newline)
_START = (0, False, False)  # JSON lexer state: (bracket depth, in a string, after a backslash)


def _scan(data, state):
    """Advance the lexer state over `data` (bytes); only strings and brackets matter here."""
    depth, in_str, esc = state
    for c in data:
        if in_str:
            if esc:
                esc = False
            elif c == 0x5C:  # backslash
                esc = True
            elif c == 0x22:  # quote
                in_str = False
        elif c == 0x22:
            in_str = True
        elif c in (0x7B, 0x5B):  # { [
            depth += 1
        elif c in (0x7D, 0x5D):  # } ]
            depth -= 1
    return depth, in_str, esc


def _token_scores(decoded_vocab):
    """Closing cost of each token, lower is better: float32 [2, V], row 1 = inside a string.

    Only orders the closing search (the grammar decides validity): a token's cost is how much
    it opens (brackets + an unclosed string, x10) minus its length; a leading `,` or `:` is
    progress (-1), so a number or a key does not grow forever; whitespace is never needed in
    JSON, so it comes last. Inside a string only a quote closes, so `]]` is content there.
    """
    rows = []
    for start in (_START, (0, True, False)):
        row = []
        for b in decoded_vocab:
            depth, in_str, _ = _scan(b, start)
            cost = 10.0 * (depth + in_str - start[1]) - 0.1 * len(b)  # long = fewer tokens
            if not b.strip():
                cost += 100.0
            elif not start[1] and b.lstrip()[:1] in (b",", b":"):
                cost -= 1.0
            row.append(cost)
        rows.append(row)
    return torch.tensor(rows, dtype=torch.float32)


class JsonGuard(transformers.LogitsProcessor):
    """Masks logits so each row's text stays a prefix of a document in `compiled_grammar`.

    Use one instance per `generate()` call (the matchers hold per-call state).
    After the document is complete only the EOS tokens are allowed. `max_new_tokens` (or
    `max_length`) enables closure forcing: the guard keeps a closing path in view and forces
    it when only `margin` spare tokens are left (the slack absorbs a sampled token that opens
    several brackets at once). `search_nodes` bounds one closing search.
    """

    def __init__(self, compiled_grammar, eos_token_ids, max_new_tokens=None, max_length=None,
                 margin=6, search_nodes=400, token_scores=None):
        self.grammar = compiled_grammar
        self.eos = [int(e) for e in eos_token_ids]
        if not self.eos:
            raise ValueError("the JSON guard needs at least one EOS token id")
        self.vocab_size = compiled_grammar.tokenizer_info.vocab_size
        self.max_new_tokens, self.max_length = max_new_tokens, max_length
        self.margin, self.search_nodes = margin, search_nodes
        self._scores = token_scores
        self._vocab = compiled_grammar.tokenizer_info.decoded_vocab
        self.matchers, self.plans, self.prompt_len = [], [], None
        self.truncated_rows = []  # filled by `finish()`
        self.forced_steps = 0

    # -- state ------------------------------------------------------------------------
    def _start(self, input_ids):
        batch, self.prompt_len = input_ids.shape
        self.matchers = [xgr.GrammarMatcher(self.grammar, override_stop_tokens=self.eos)
                         for _ in range(batch)]
        self.plans = [[] for _ in range(batch)]  # committed closing paths (token ids)
        self.next_check = [float("inf")] * batch  # step_left at which to search again
        self.nest_check = [float("inf")] * batch  # ... or the nesting at which to search again
        self.lex = [_START] * batch  # lexer state of each row's text so far
        self.bitmask = xgr.allocate_token_bitmask(batch, self.vocab_size)
        if self.max_new_tokens is None and self.max_length is not None:
            self.max_new_tokens = self.max_length - self.prompt_len
        if self.max_new_tokens is not None:
            if self._scores is None:
                self._scores = _token_scores(self._vocab)
            self._scores = self._scores[:, : self.vocab_size].clone()
            self._scores[:, self.eos] = float("inf")  # EOS never closes a document
            self._scratch = xgr.allocate_token_bitmask(1, self.vocab_size)
            # Per lexer row (outside / inside a string): the closing candidates, best first, so
            # `_best` reads a few mask bits instead of ranking the vocabulary. numpy, because a
            # search visits thousands of nodes and torch's per-call overhead dominated them.
            self._bits = self._scratch.numpy()[0].view(np.uint8)  # shares `_scratch`'s memory
            self._order = []
            for row in self._scores.numpy():
                order = np.argsort(row, kind="stable")
                self._order.append(order[np.isfinite(row[order])])

    def _accept_last(self, input_ids):
        for i, m in enumerate(self.matchers):
            if m.is_terminated():
                continue  # finished row: transformers pads it
            tok = int(input_ids[i, -1])
            self.lex[i] = _scan(self._vocab[tok], self.lex[i]) if tok < len(self._vocab) else self.lex[i]
            if not m.accept_token(tok):
                raise RuntimeError(f"JSON guard: row {i} produced token {tok} outside the grammar "
                                   "(was another processor run after the guard?)")
            plan = self.plans[i]
            if plan and plan[0] == tok:
                plan.pop(0)
            elif plan:
                raise RuntimeError(f"JSON guard: row {i} left its forced closing path "
                                   "(was another processor run after the guard?)")

    # -- closure ----------------------------------------------------------------------
    def _best(self, m, lex, k=3):
        """The k allowed next tokens (EOS excluded) that close the document best.

        Looks at the best 256 candidates first: the allowed closers are usually among them,
        so most nodes never unpack the whole mask.
        """
        m.fill_next_token_bitmask(self._scratch, 0)  # writes self._bits: [ceil(V/32) * 4] bytes
        allowed = np.unpackbits(self._bits, bitorder="little")  # [V rounded up to 32] 0/1
        order = self._order[1 if lex[1] else 0]
        hits = np.flatnonzero(allowed[order[:256]])[:k]
        if len(hits) < k:
            hits = np.flatnonzero(allowed[order])[:k]
        return order[hits].tolist()

    def _closing_plan(self, m, lex, budget):
        """A short token path (<= budget) that completes the document, or None.

        Depth-first over the best 3 tokens per state, on a fork of `m`; `search_nodes`
        bounds the cost of a failing search.
        """
        fork, path, nodes = m.fork(), [], [0]

        def dfs(depth, lex):
            if fork.is_completed():
                return True
            if depth >= budget or nodes[0] >= self.search_nodes:
                return False
            nodes[0] += 1
            for tok in self._best(fork, lex):
                if fork.accept_token(tok):
                    path.append(tok)
                    if dfs(depth + 1, _scan(self._vocab[tok], lex)):
                        return True
                    path.pop()
                    fork.rollback(1)
            return False

        return path if dfs(0, lex) else None

    def _force(self, i, step_left):
        """The token row i must take now, or None to sample freely.

        A closing plan is searched for again when half of the spare slack has been used, or
        earlier when the nesting (open brackets + an open string) has deepened by a quarter
        of it: the plan grows mainly with the nesting, so this keeps the slack from being
        overrun between searches while skipping most of the searches a fixed schedule does.
        The plan is committed to once the slack is down to `margin` tokens.
        """
        if self.max_new_tokens is None:
            return None
        m, plan = self.matchers[i], self.plans[i]
        if m.is_completed():
            return self.eos[0] if step_left <= self.margin else None
        if plan:
            return plan[0]
        nest = self.lex[i][0] + self.lex[i][1]
        if step_left > self.next_check[i] and nest < self.nest_check[i]:
            return None
        plan = self._closing_plan(m, self.lex[i], step_left)
        if plan is None:  # not closable in budget by the search: keep trying, reported at the end
            self.next_check[i], self.nest_check[i] = step_left - 1, float("inf")
            return None
        slack = step_left - len(plan)
        if slack <= self.margin:
            self.plans[i] = plan
            return plan[0]
        spare = slack - self.margin
        self.next_check[i] = step_left - max(1, spare // 2)
        self.nest_check[i] = nest + max(1, spare // 4)
        return None

    # -- LogitsProcessor --------------------------------------------------------------
    def __call__(self, input_ids, scores):
        if self.prompt_len is None:
            self._start(input_ids)
        elif input_ids.shape[1] != self._seen + 1:
            raise RuntimeError("a JsonGuard serves one generate() call; make a new one per call")
        else:
            self._accept_last(input_ids)
        self._seen = input_ids.shape[1]
        step_left = None
        if self.max_new_tokens is not None:
            step_left = self.max_new_tokens - (input_ids.shape[1] - self.prompt_len)
        for i, m in enumerate(self.matchers):
            if m.is_terminated():
                self.bitmask[i].fill_(-1)  # finished row: anything (transformers pads it)
                continue
            forced = self._force(i, step_left)
            if forced is not None:
                self.forced_steps += 1
                self.bitmask[i].zero_()
                bit = 1 << (forced % 32)
                self.bitmask[i, forced // 32] = bit - (1 << 32) if bit >= 1 << 31 else bit
            else:
                m.fill_next_token_bitmask(self.bitmask, i)
        device = scores.device
        out = scores if device.type in ("cpu", "cuda") else scores.cpu()
        xgr.apply_token_bitmask_inplace(out, self.bitmask.to(out.device))
        # [B]: an earlier processor banned every legal token (amax: isfinite().any() costs
        # ~15x more on CPU, a visible share of a small model's step)
        dead = out.amax(-1) == float("-inf")
        if dead.any():  # the grammar wins over bans like no_repeat_ngram_size / bad_words_ids
            out[dead] = 0.0
            rows = dead.nonzero().flatten().tolist()
            xgr.apply_token_bitmask_inplace(out, self.bitmask.to(out.device), indices=rows)
        return out.to(device)

    def finish(self, sequences):
        """Record rows whose document is incomplete at the end; returns their indices."""
        self.truncated_rows = []
        if self.prompt_len is None:
            return []
        for i, m in enumerate(self.matchers):
            if m.is_terminated() or m.is_completed():
                continue
            last = int(sequences[i, -1])
            fork = m.fork()  # the final token was never passed to __call__
            if fork.accept_token(last) and fork.is_completed():
                continue
            self.truncated_rows.append(i)
        if self.truncated_rows:
            warnings.warn(f"JSON guard: rows {self.truncated_rows} hit the token limit before the "
                          "JSON document was complete; raise max_new_tokens", stacklevel=3)
        return self.truncated_rows


def compile_grammar(tokenizer, schema=None, vocab_size=None, eos_token_ids=None):
    """An xgrammar CompiledGrammar: any JSON object/array, or the JSON Schema text.

    Whitespace between tokens is capped at MAX_WHITESPACE characters per gap: small models
    otherwise fill a document with blank lines (seen with the demo model).
    """
    info = xgr.TokenizerInfo.from_huggingface(tokenizer, vocab_size=vocab_size,
                                              stop_token_ids=eos_token_ids)
    compiler = xgr.GrammarCompiler(info)
    if schema is None:  # non-strict: any members and items, as JSON itself allows
        return compiler.compile_json_schema(ANY_JSON, strict_mode=False,
                                            max_whitespace_cnt=MAX_WHITESPACE)
    text = schema if isinstance(schema, str) else json.dumps(schema)
    return compiler.compile_json_schema(text, max_whitespace_cnt=MAX_WHITESPACE)


def _eos_ids(model, kwargs):
    gc = kwargs.get("generation_config") or model.generation_config
    eos = kwargs.get("eos_token_id", gc.eos_token_id)
    if eos is None:
        eos = model.config.eos_token_id
    return [eos] if isinstance(eos, int) else list(eos or [])


def _guard_file(model, name):
    """A file of this checkpoint's `custom_generate/` (local dir or hub repo), or None.

    transformers runs a *copy* of generate.py from its modules cache, so files next to
    `__file__` are not the checkpoint's: they are looked up via `model.name_or_path`.
    """
    return transformers.utils.cached_file(model.name_or_path, "custom_generate/" + name,
                                          _raise_exceptions_for_missing_entries=False)


def load_guard_config(model):
    """(schema text or None) from `custom_generate/guard.json`; fails closed if it is missing."""
    path = _guard_file(model, GUARD_FILE)
    if path is None:
        raise FileNotFoundError(f"JSON guard: {model.name_or_path!r} has no custom_generate/{GUARD_FILE}; "
                                "refusing to generate without the constraint it describes")
    with open(path, encoding="utf-8") as f:
        cfg = json.load(f)
    if not cfg.get("schema_file"):
        return None
    schema_path = _guard_file(model, cfg["schema_file"])
    if schema_path is None:
        raise FileNotFoundError(f"JSON guard: custom_generate/{cfg['schema_file']} is missing")
    with open(schema_path, encoding="utf-8") as f:
        return f.read()


_CACHE = {}


def generate(*args, model, **kwargs):
    """`GenerationMixin.generate` with the JSON guard added; same arguments and outputs.

    transformers passes `model` by keyword (`functools.partial(generate, model=self)`), so
    positional `input_ids` still work. Extra kwarg `tokenizer` (else loaded from
    `model.name_or_path`). After the call, `model.json_guard_truncated` lists the rows that
    hit the token limit before their document was complete.
    """
    schema = load_guard_config(model)
    tokenizer = kwargs.pop("tokenizer", None)
    eos = _eos_ids(model, kwargs)
    key = (id(model), model.name_or_path if tokenizer is None else id(tokenizer), schema, tuple(eos))
    if key not in _CACHE:
        if tokenizer is None:
            # The caller already trusted this checkpoint's code (custom_generate only runs then);
            # without the flag AutoTokenizer would prompt for its custom model_type.
            tokenizer = transformers.AutoTokenizer.from_pretrained(model.name_or_path, trust_remote_code=True)
        grammar = compile_grammar(tokenizer, schema, model.config.get_text_config().vocab_size, eos)
        _CACHE[key] = (grammar, _token_scores(grammar.tokenizer_info.decoded_vocab))
    grammar, token_scores = _CACHE[key]
    gc = kwargs.get("generation_config") or model.generation_config
    if (kwargs.get("num_beams") or gc.num_beams or 1) > 1:
        raise ValueError("the JSON guard supports greedy decoding and sampling, not beam search")
    if kwargs.get("assistant_model") is not None or kwargs.get("prompt_lookup_num_tokens") \
            or gc.prompt_lookup_num_tokens:
        raise ValueError("the JSON guard does not support assisted/speculative decoding")
    if kwargs.get("min_new_tokens") or gc.min_new_tokens:
        raise ValueError("min_new_tokens conflicts with the JSON guard: once the document is "
                         "complete only EOS may follow")
    guard = JsonGuard(grammar, eos,
                      max_new_tokens=kwargs.get("max_new_tokens", gc.max_new_tokens),
                      max_length=kwargs.get("max_length", gc.max_length),
                      token_scores=token_scores)
    procs = transformers.LogitsProcessorList(kwargs.pop("logits_processor", None) or [])
    procs.append(guard)  # last, so no later processor can re-enable a masked token
    if "eos_token_id" not in kwargs:
        kwargs["eos_token_id"] = eos
    out = transformers.GenerationMixin.generate(model, *args, logits_processor=procs, **kwargs)
    sequences = out if isinstance(out, torch.Tensor) else out.sequences
    model.json_guard_truncated = guard.finish(sequences)
    return out
