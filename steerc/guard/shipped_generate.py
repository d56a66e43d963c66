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


class GuardTables:
    """Per-grammar lookups that every `JsonGuard` of one grammar shares (building them costs
    tens of ms, as much as ~20 decode steps of a small model, so build once per grammar).

    Lexer: a row's state is (bracket depth, mode), mode 0 = outside a string, 1 = inside,
    2 = inside after a backslash; `delta[mode][tok]` / `after[mode][tok]` (lists [3][V]) give
    a token's depth change and the mode after it. `order`: per lexer row (outside / inside a
    string), the token ids of finite closing cost, best first (int64 numpy). `plans` caches closing searches from states
    every row starts in (the first tokens), keyed by (tokens so far, budget, node limit).
    """

    PLAN_CACHE_PREFIX = 2  # tokens of history up to which a plan is cached across rows and calls

    def __init__(self, compiled_grammar, eos_token_ids):
        vocab = compiled_grammar.tokenizer_info.decoded_vocab
        size = max(compiled_grammar.tokenizer_info.vocab_size, len(vocab))
        self.eos = tuple(int(e) for e in eos_token_ids)
        self.delta = [[0] * size for _ in range(3)]
        self.after = [[mode] * size for mode in range(3)]
        for mode, start in enumerate(((0, False, False), (0, True, False), (0, True, True))):
            delta, after = self.delta[mode], self.after[mode]
            for tok, b in enumerate(vocab):
                depth, in_str, esc = _scan(b, start)
                delta[tok], after[tok] = depth, (2 if esc else 1) if in_str else 0
        scores = _token_scores(vocab)[:, : compiled_grammar.tokenizer_info.vocab_size].clone()
        scores[:, [e for e in self.eos if e < scores.shape[1]]] = float("inf")  # EOS never closes
        self.order = []
        for row in scores.numpy():
            order = np.argsort(row, kind="stable")
            self.order.append(order[np.isfinite(row[order])])
        self.plans = {}

    def step(self, lex, tok):
        """The lexer state after token `tok`."""
        depth, mode = lex
        return depth + self.delta[mode][tok], self.after[mode][tok]


class MaskRows:
    """Additive logit masks, one row per distinct token mask: 0 = allowed, -inf = banned.

    `scores += rows[ids]` (a gather and an add) costs about a tenth of xgrammar's CPU bitmask
    kernel on a [26, 4096] batch, and a batch sees few distinct masks (every row inside a
    free-text string has the same one), so rows are cached by the packed mask's bytes. Row 0
    allows everything (finished rows); forced rows allow one token; ids from `vocab` (the
    grammar's vocabulary) to `width` (the logits') are banned: no matcher accepts them.
    [capacity, width] in the logits' dtype and device; when full, the cache starts over.
    """

    def __init__(self, width, vocab, dtype, device, capacity):
        self.rows = torch.empty(capacity, width, dtype=dtype, device=device)  # rows written on use
        self.rows[0] = 0.0
        self.width, self.vocab, self.index = width, min(vocab, width), {None: 0}

    def make_room(self, n):
        """Ensure `n` more rows fit before a step looks up its rows (ids stay valid for it)."""
        if len(self.index) + n > len(self.rows):
            self.index = {None: 0}

    def packed(self, words):
        """The row id for a packed xgrammar bitmask row (int32 numpy [ceil(V/32)])."""
        key = words.tobytes()
        j = self.index.get(key)
        if j is None:
            bits = np.unpackbits(words.view(np.uint8), bitorder="little")[: self.vocab]
            row = np.full(self.width, -np.inf, np.float32)
            row[: len(bits)] = np.where(bits == 1, 0.0, -np.inf)
            j = self.index[key] = len(self.index)
            self.rows[j] = torch.from_numpy(row)
        return j

    def only(self, tok):
        """The row id for a mask that allows token `tok` alone."""
        j = self.index.get(tok)
        if j is None:
            j = self.index[tok] = len(self.index)
            self.rows[j] = float("-inf")
            self.rows[j, tok] = 0.0
        return j


class JsonGuard(transformers.LogitsProcessor):
    """Masks logits so each row's text stays a prefix of a document in `compiled_grammar`.

    Use one instance per `generate()` call (the matchers hold per-call state); pass the
    grammar's `GuardTables` to skip rebuilding them.
    After the document is complete only the EOS tokens are allowed. `max_new_tokens` (or
    `max_length`) enables closure forcing: the guard keeps a closing path in view and forces
    it when only `margin` spare tokens are left (the slack absorbs a sampled token that opens
    several brackets at once). `search_nodes` bounds one closing search.
    """

    def __init__(self, compiled_grammar, eos_token_ids, max_new_tokens=None, max_length=None,
                 margin=6, search_nodes=400, tables=None):
        self.grammar = compiled_grammar
        self.eos = [int(e) for e in eos_token_ids]
        if not self.eos:
            raise ValueError("the JSON guard needs at least one EOS token id")
        if tables is not None and tables.eos != tuple(self.eos):
            raise ValueError("GuardTables were built for other EOS token ids")
        self.tables = tables or GuardTables(compiled_grammar, self.eos)
        self.vocab_size = compiled_grammar.tokenizer_info.vocab_size
        self.max_new_tokens, self.max_length = max_new_tokens, max_length
        self.margin, self.search_nodes = margin, search_nodes
        self.matchers, self.plans, self.prompt_len = [], [], None
        self.truncated_rows = []  # filled by `finish()`
        self.forced_steps = 0

    # -- state ------------------------------------------------------------------------
    def _start(self, input_ids):
        batch, self.prompt_len = input_ids.shape
        self.matchers = [xgr.GrammarMatcher(self.grammar, override_stop_tokens=self.eos)
                         for _ in range(batch)]
        self.live = list(range(batch))  # rows whose matcher has not accepted EOS yet
        self.plans = [[] for _ in range(batch)]  # committed closing paths (token ids)
        self.next_check = [float("inf")] * batch  # step_left at which to search again
        self.nest_check = [float("inf")] * batch  # ... or the nesting at which to search again
        self.lex = [(0, 0)] * batch  # lexer state (GuardTables) of each row's text so far
        self.bitmask = xgr.allocate_token_bitmask(batch, self.vocab_size)
        self._mask_words = self.bitmask.numpy()  # int32 [B, ceil(V/32)], the same memory
        self._masks = None  # MaskRows for this call's logits, set on the first call
        self._filler = xgr.BatchGrammarMatcher()  # one C++ call fills every free row's mask
        if self.max_new_tokens is None and self.max_length is not None:
            self.max_new_tokens = self.max_length - self.prompt_len
        self._scratch = xgr.allocate_token_bitmask(1, self.vocab_size)
        self._bytes = self._scratch.numpy()[0].view(np.uint8)  # [ceil(V/32) * 4], `_scratch`'s memory

    def _accept_last(self, input_ids):
        last = input_ids[:, -1].tolist()
        eos, step, live = self.eos, self.tables.step, []
        for i in self.live:
            tok = last[i]
            # (per row: xgrammar's batch_accept_token costs more here, in its result conversion)
            if not self.matchers[i].accept_token(tok):
                raise RuntimeError(f"JSON guard: row {i} produced token {tok} outside the grammar "
                                   "(was another processor run after the guard?)")
            self.lex[i] = step(self.lex[i], tok)
            plan = self.plans[i]
            if plan and plan[0] == tok:
                plan.pop(0)
            elif plan:
                raise RuntimeError(f"JSON guard: row {i} left its forced closing path "
                                   "(was another processor run after the guard?)")
            if tok not in eos:  # a matcher terminates exactly when it accepts a stop token
                live.append(i)
        self.live = live

    # -- closure ----------------------------------------------------------------------
    def _best(self, m, lex, k=3):
        """The k allowed next tokens (EOS excluded) that close the document best, best first.

        A generator: the search usually takes the first, so the rest are found only when it
        backtracks. One snapshot of the mask per node, ranked in the precomputed cost order.
        """
        m.fill_next_token_bitmask(self._scratch, 0)  # writes self._bytes
        order = self.tables.order[1 if lex[1] else 0]  # int64 [C] candidates, best first
        ranked = np.unpackbits(self._bytes, bitorder="little")[order]  # [C] 0/1, a copy
        start = 0
        for _ in range(k):
            if start >= len(ranked):
                return
            pos = start + int(ranked[start:].argmax())  # the first allowed candidate from start
            if not ranked[pos]:
                return
            yield int(order[pos])
            start = pos + 1

    def _closing_plan(self, m, lex, budget):
        """A short token path (<= budget) that completes the document, or None.

        Depth-first over the best 3 tokens per state, on `m` itself, which is rolled back
        to where it was before returning; `search_nodes` bounds the cost of a failing search.
        """
        path, nodes, step = [], [0], self.tables.step

        def dfs(depth, lex):
            if m.is_completed():
                return True
            if depth >= budget or nodes[0] >= self.search_nodes:
                return False
            nodes[0] += 1
            for tok in self._best(m, lex):
                if m.accept_token(tok):
                    path.append(tok)
                    if dfs(depth + 1, step(lex, tok)):
                        return True
                    path.pop()
                    m.rollback(1)
            return False

        try:
            found = dfs(0, lex)
        finally:
            if path:
                m.rollback(len(path))
        return path if found else None

    def _search(self, i, step_left, history):
        """`_closing_plan` for row i. Rows still on their first tokens (`history`, else None)
        share one search per state (same tokens, same grammar state), across calls too."""
        if history is None:
            return self._closing_plan(self.matchers[i], self.lex[i], step_left)
        cache = self.tables.plans
        key = (tuple(history), step_left, self.search_nodes)
        if key not in cache:
            if len(cache) > 4096:
                cache.clear()
            cache[key] = self._closing_plan(self.matchers[i], self.lex[i], step_left)
        return None if cache[key] is None else list(cache[key])

    def _force(self, i, step_left, input_ids, early):
        """The token row i must take now, or None to sample freely.

        A closing plan is searched for again when half of the spare slack has been used (at
        least 2 tokens later: `margin` absorbs what the plan grows in those), or earlier when
        the nesting (open brackets + an open string) has deepened by a quarter of it: the plan
        grows mainly with the nesting, so this keeps the slack from being overrun between
        searches while skipping most of the searches a fixed schedule does. The plan is
        committed to once the slack is down to `margin` tokens.
        """
        m, plan = self.matchers[i], self.plans[i]
        if m.is_completed():
            return self.eos[0] if step_left <= self.margin else None
        if plan:
            return plan[0]
        nest = self.lex[i][0] + (self.lex[i][1] > 0)
        if step_left > self.next_check[i] and nest < self.nest_check[i]:
            return None
        plan = self._search(i, step_left, input_ids[i, self.prompt_len:].tolist() if early else None)
        if plan is None:  # not closable in budget by the search: keep trying, reported at the end
            self.next_check[i], self.nest_check[i] = step_left - 1, float("inf")
            return None
        slack = step_left - len(plan)
        if slack <= self.margin:
            self.plans[i] = plan
            return plan[0]
        spare = slack - self.margin
        self.next_check[i] = step_left - max(2, spare // 2)
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
        free, forced_rows, forced = self.live, [], []
        if self.max_new_tokens is not None:
            done = input_ids.shape[1] - self.prompt_len
            step_left, early = self.max_new_tokens - done, done <= self.tables.PLAN_CACHE_PREFIX
            free = []
            for i in self.live:
                tok = self._force(i, step_left, input_ids, early)
                if tok is None:
                    free.append(i)
                else:
                    forced_rows.append(i)
                    forced.append(tok)
        device = scores.device
        out = scores if device.type in ("cpu", "cuda") else scores.cpu()
        if free:
            self._filler.batch_fill_next_token_bitmask([self.matchers[i] for i in free],
                                                       self.bitmask, free)
        self.forced_steps += len(forced_rows)
        if self._masks is None:  # per call, so concurrent generate() calls never share rows
            # ~4 MB for a 4096-token vocabulary, and room for at least two steps' new rows
            capacity = max(2 * out.shape[0] + 2, min(256, (4 << 20) // (4 * out.shape[-1])))
            self._masks = MaskRows(out.shape[-1], self.vocab_size, out.dtype, out.device, capacity)
        masks = self._masks
        masks.make_room(out.shape[0])
        ids = [0] * out.shape[0]  # finished rows (not live) stay open: transformers pads them
        words = self._mask_words
        for i in free:
            ids[i] = masks.packed(words[i])
        for i, tok in zip(forced_rows, forced):
            ids[i] = masks.only(tok)
        add = masks.rows.index_select(0, torch.tensor(ids, device=out.device))  # [B, V]
        out.add_(add)
        # [B]: an earlier processor banned every legal token (amax: isfinite().any() costs
        # ~15x more on CPU, a visible share of a small model's step)
        dead = out.amax(-1) == float("-inf")
        if dead.any():  # the grammar wins over bans like no_repeat_ngram_size / bad_words_ids
            out[dead] = add[dead]
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
        _CACHE[key] = (grammar, GuardTables(grammar, eos))
    grammar, tables = _CACHE[key]
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
                      tables=tables)
    procs = transformers.LogitsProcessorList(kwargs.pop("logits_processor", None) or [])
    procs.append(guard)  # last, so no later processor can re-enable a masked token
    if "eos_token_id" not in kwargs:
        kwargs["eos_token_id"] = eos
    out = transformers.GenerationMixin.generate(model, *args, logits_processor=procs, **kwargs)
    sequences = out if isinstance(out, torch.Tensor) else out.sequences
    model.json_guard_truncated = guard.finish(sequences)
    return out
