"""The JSON guard processor: valid JSON on every sampled row, EOS after completion, truncation."""

import json

import jsonschema
import pytest
import torch

from steerc.guard import GuardFactory, json_guard
from tests.guard.conftest import SCHEMA

EOS, PAD = 2, 3


def _sample(model, tok, factory, max_new, seed=0, rows=20):
    ids = tok("Hi", return_tensors="pt").input_ids
    torch.manual_seed(seed)
    guard = factory.processor(max_new)
    out = model.generate(ids, max_new_tokens=max_new, do_sample=True, num_return_sequences=rows,
                         logits_processor=[guard], eos_token_id=EOS, pad_token_id=PAD)
    texts = [tok.decode(r[ids.shape[1]:], skip_special_tokens=True) for r in out]
    return texts, guard.finish(out), guard


@pytest.mark.parametrize("schema", [None, SCHEMA], ids=["any-json", "schema"])
def test_every_sampled_row_is_valid(model, tok, one_thread, schema):
    factory = GuardFactory(tok, schema, vocab_size=model.config.vocab_size)
    texts, truncated, guard = _sample(model, tok, factory, max_new=40)
    assert truncated == []
    for text in texts:
        doc = json.loads(text)
        assert isinstance(doc, (dict, list))
        if schema:
            jsonschema.validate(doc, json.loads(schema))
    assert len(set(texts)) > 1  # sampling really varied the rows


def test_unguarded_random_model_is_not_json(model, tok, one_thread):
    # The control: without the guard the same sampling does not give JSON.
    ids = tok("Hi", return_tensors="pt").input_ids
    torch.manual_seed(0)
    out = model.generate(ids, max_new_tokens=20, do_sample=True, num_return_sequences=5,
                         eos_token_id=EOS, pad_token_id=PAD)
    bad = 0
    for r in out:
        try:
            json.loads(tok.decode(r[ids.shape[1]:], skip_special_tokens=True))
        except json.JSONDecodeError:
            bad += 1
    assert bad == 5


def test_closure_is_forced_near_the_limit(model, tok, one_thread):
    # The shortest schema instance is 25 characters = 25 tokens with this tokenizer.
    factory = GuardFactory(tok, SCHEMA, vocab_size=model.config.vocab_size)
    texts, truncated, guard = _sample(model, tok, factory, max_new=26, seed=1)
    assert truncated == [] and guard.forced_steps > 0
    for text in texts:
        jsonschema.validate(json.loads(text), json.loads(SCHEMA))


def test_a_limit_below_the_shortest_document_is_reported(model, tok, one_thread):
    factory = GuardFactory(tok, SCHEMA, vocab_size=model.config.vocab_size)
    with pytest.warns(UserWarning, match="hit the token limit"):
        texts, truncated, _ = _sample(model, tok, factory, max_new=10, rows=4)
    assert truncated == [0, 1, 2, 3]
    for text in texts:
        with pytest.raises(json.JSONDecodeError):
            json.loads(text)


def test_only_eos_after_the_document_is_complete(tok):
    guard = json_guard(tok, None, vocab_size=100, eos_token_ids=[EOS])
    prompt = tok("Hi", return_tensors="pt").input_ids
    doc = tok('{"a": [1, 2]}', return_tensors="pt").input_ids
    guard(prompt, torch.zeros(1, 100))
    for j in range(1, doc.shape[1] + 1):  # feed the document one token at a time
        scores = guard(torch.cat([prompt, doc[:, :j]], 1), torch.zeros(1, 100))
    allowed = torch.isfinite(scores[0]).nonzero().flatten().tolist()
    assert allowed == [EOS]


def test_mid_document_eos_is_masked(tok):
    guard = json_guard(tok, None, vocab_size=100, eos_token_ids=[EOS])
    prompt = tok("Hi", return_tensors="pt").input_ids
    scores = guard(prompt, torch.zeros(1, 100))
    assert not torch.isfinite(scores[0, EOS])
    allowed = {tok.decode([i]) for i in torch.isfinite(scores[0]).nonzero().flatten().tolist()}
    assert allowed == {"{", "["}  # "any JSON" means an object or an array


def test_grammar_wins_over_an_earlier_ban(model, tok, one_thread):
    # bad_words_ids runs before the guard and bans both closers; the document must close anyway.
    factory = GuardFactory(tok, None, vocab_size=model.config.vocab_size)
    ids = tok("Hi", return_tensors="pt").input_ids
    closers = [[tok.convert_tokens_to_ids("}")], [tok.convert_tokens_to_ids("]")]]
    torch.manual_seed(0)
    guard = factory.processor(30)
    out = model.generate(ids, max_new_tokens=30, do_sample=True, num_return_sequences=6,
                         logits_processor=[guard], bad_words_ids=closers,
                         eos_token_id=EOS, pad_token_id=PAD)
    assert guard.finish(out) == []
    for r in out:
        json.loads(tok.decode(r[ids.shape[1]:], skip_special_tokens=True))


def _small_bpe(vocab_size=400):
    """A byte-level BPE with multi-character tokens like `"]`, `]]`, `  ` (trained here)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    text = [json.dumps({"name": f"item {i}", "level": ["low", "high"][i % 2], "tags": [[i], [i]]},
                       indent=i % 3) for i in range(200)]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(text, trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=["<s>", "</s>", "<pad>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>",
                                   pad_token="<pad>")


@pytest.mark.parametrize("schema", [None, SCHEMA], ids=["any-json", "schema"])
def test_closure_with_multi_character_tokens(one_thread, schema):
    from tests.tinymodels import make_tiny

    bpe = _small_bpe()
    model = make_tiny("llama", vocab_size=len(bpe), max_position_embeddings=256, bos_token_id=0,
                      eos_token_id=1, pad_token_id=2)[0]
    factory = GuardFactory(bpe, schema, vocab_size=len(bpe))
    ids = bpe("Hi", return_tensors="pt").input_ids
    torch.manual_seed(0)
    guard = factory.processor(60)
    out = model.generate(ids, max_new_tokens=60, do_sample=True, num_return_sequences=10,
                         logits_processor=[guard], eos_token_id=1, pad_token_id=2)
    assert guard.finish(out) == []
    for r in out:
        doc = json.loads(bpe.decode(r[ids.shape[1]:], skip_special_tokens=True))
        if schema:
            jsonschema.validate(doc, json.loads(schema))


@pytest.mark.parametrize("prefix", ['{"name": "ab', '{"name": "x]]', '{"name": "", "level": "hi'])
def test_closing_plan_from_inside_a_string(prefix):
    # `]]` inside a string is content, not a closer: the search must leave the string first.
    bpe = _small_bpe()
    factory = GuardFactory(bpe, SCHEMA, vocab_size=len(bpe))
    guard = factory.processor(100)
    ids = torch.cat([torch.tensor([[0]]), bpe(prefix, return_tensors="pt").input_ids], 1)
    guard(ids[:, :1], torch.zeros(1, len(bpe)))  # the prompt: one BOS token
    for j in range(2, ids.shape[1] + 1):
        guard._accept_last(ids[:, :j])
    plan = guard._closing_plan(guard.matchers[0], guard.lex[0], budget=60)
    assert plan is not None and len(plan) <= 20  # a short path, far under the budget
    doc = json.loads(bpe.decode(ids[0, 1:].tolist() + plan))
    jsonschema.validate(doc, json.loads(SCHEMA))


def test_a_guard_serves_one_call(model, tok, one_thread):
    guard = GuardFactory(tok, None, vocab_size=100).processor(8)
    ids = tok("Hi", return_tensors="pt").input_ids
    model.generate(ids, max_new_tokens=8, logits_processor=[guard], eos_token_id=EOS, pad_token_id=PAD)
    with pytest.raises(RuntimeError, match="one generate"):
        model.generate(ids, max_new_tokens=8, logits_processor=[guard], eos_token_id=EOS,
                       pad_token_id=PAD)


def test_any_json_grammar_is_open_and_caps_whitespace(tok):
    import xgrammar as xgr

    from steerc.guard.shipped_generate import MAX_WHITESPACE

    grammar = GuardFactory(tok, None, vocab_size=100).grammar

    def accepts(text):
        m = xgr.GrammarMatcher(grammar)
        return m.accept_string(text) and m.is_completed()

    assert accepts('{"any": [1, {"key": null, "s": "x\\n"}], "d": -1.5e3}')  # not strict mode
    assert accepts("[" + " " * MAX_WHITESPACE + "1]")
    assert not accepts("[" + " " * (MAX_WHITESPACE + 1) + "1]")
    assert not accepts("5")  # `enforce json format` means an object or an array


def test_additive_mask_rows_match_xgrammars_bitmask_kernel():
    # MaskRows replaces xgr.apply_token_bitmask_inplace on the hot path: same -inf pattern over
    # the grammar's vocabulary, allowed logits untouched, and ids past it (a model vocabulary
    # wider than the tokenizer's) banned, since no matcher would accept them.
    import xgrammar as xgr

    from steerc.guard.shipped_generate import MaskRows

    torch.manual_seed(0)
    vocab, width = 70, 75
    bitmask = xgr.allocate_token_bitmask(4, vocab)
    bitmask.copy_(torch.randint(-2**31, 2**31 - 1, bitmask.shape, dtype=torch.int32))
    logits = torch.randn(4, width)
    expected = logits.clone()
    xgr.apply_token_bitmask_inplace(expected, bitmask, vocab_size=vocab)
    expected[:, vocab:] = float("-inf")
    rows = MaskRows(width, vocab, torch.float32, torch.device("cpu"), capacity=10)
    ids = [rows.packed(w) for w in bitmask.numpy()]
    assert ids == [rows.packed(w) for w in bitmask.numpy()]  # cached, not rebuilt
    assert torch.equal(logits + rows.rows[ids], expected)
    assert torch.isfinite(rows.rows[rows.only(5)]).nonzero().flatten().tolist() == [5]
    assert torch.equal(logits + rows.rows[0], logits)  # row 0: finished rows stay open


def test_closing_search_leaves_the_matcher_where_it_was(tok):
    # The search runs on the row's own matcher and rolls back: the mask before and after
    # must be identical, and the plan must really close the document.
    import xgrammar as xgr

    guard = json_guard(tok, SCHEMA, vocab_size=100, eos_token_ids=[EOS], max_new_tokens=60)
    prompt = tok("Hi", return_tensors="pt").input_ids
    guard(prompt, torch.zeros(1, 100))
    doc = tok('{"name": "ab', return_tensors="pt").input_ids
    for j in range(1, doc.shape[1] + 1):
        guard._accept_last(torch.cat([prompt, doc[:, :j]], 1))
    m = guard.matchers[0]
    before, after = (xgr.allocate_token_bitmask(1, 100) for _ in range(2))
    m.fill_next_token_bitmask(before)
    plan = guard._closing_plan(m, guard.lex[0], budget=60)
    m.fill_next_token_bitmask(after)
    assert torch.equal(before, after) and not m.is_completed()
    text = tok.decode(doc[0].tolist() + plan)
    jsonschema.validate(json.loads(text), json.loads(SCHEMA))


def test_shared_tables_do_not_change_what_is_generated(model, tok, one_thread):
    # A factory's guards share GuardTables (lexer tables, closing order, cached first plans);
    # a guard with tables of its own must sample exactly the same tokens.
    from steerc.guard import JsonGuard

    factory = GuardFactory(tok, SCHEMA, vocab_size=model.config.vocab_size)
    ids = tok("Hi", return_tensors="pt").input_ids
    outs = []
    for make in (lambda: factory.processor(30), lambda: factory.processor(30),
                 lambda: JsonGuard(factory.grammar, [EOS], max_new_tokens=30)):
        torch.manual_seed(3)
        outs.append(model.generate(ids, max_new_tokens=30, do_sample=True, num_return_sequences=8,
                                   logits_processor=[make()], eos_token_id=EOS, pad_token_id=PAD))
    assert torch.equal(outs[0], outs[1]) and torch.equal(outs[0], outs[2])
    assert factory.tables.plans  # the first-token plans really were cached and reused
