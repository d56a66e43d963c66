"""Expectations at check time: prompt files (spec-relative, guarded reads, hashed into the
lock), `expect T down|up` targets, one `baseline prompt` (E207, E036, E034, E035, E206)."""

from __future__ import annotations

import json
import os

import jsonschema
from hypothesis import given, settings
from hypothesis import strategies as st

from steerc.compiler.load import load_program
from steerc.compiler.lock import build_lock, diff_lock, lock_schema
from steerc.compiler.serialize import program_from_dict, program_to_dict
from steerc.files.prompts import CHECK_KIND, parse_prompts

from conftest import codes, errors

BODY = ('suppress res2["email"]\nbaseline prompt "Answer only in JSON.\\n"\n'
        'expect at least 95% of "p/prompts.txt" not mentions "Amazon"\n'
        'expect kl on "p/texts.jsonl" below 0.05\n'
        'expect res2["json key"] up by at least 10%\n'
        'expect features tagged "entity:person" down by at least 50% on "p/prompts.txt"\n'
        'expect "x" is json\n')


def _files(root):
    (root / "p").mkdir(exist_ok=True)
    (root / "p" / "prompts.txt").write_text("Tell me about Amazon\n\nWho sells books?\r\n")
    (root / "p" / "texts.jsonl").write_text('{"text": "a\\nb"}\n"plain"\n\n{"prompt": "c", "id": 3}\n')


def test_expects_resolve_to_checks_with_paths_hashes_and_the_baseline(spec, tmp_path):
    _files(tmp_path)
    program = load_program(spec(BODY))
    rate, kl, up, down, one = program.expects
    assert rate.texts == str(tmp_path / "p" / "prompts.txt") and len(rate.texts_sha256) == 64
    assert (rate.kind, rate.arg, rate.percent) == ("not_mentions", "Amazon", 95.0)
    assert (kl.kind, kl.bound, kl.texts.endswith("texts.jsonl")) == ("kl_below", 0.05, True)
    assert (up.kind, up.percent, up.texts, [f.index for f in up.features]) == ("up", 10.0, None, [1])
    assert down.kind == "down" and down.features and down.texts == rate.texts
    assert {e.baseline for e in program.expects} == {"Answer only in JSON.\n"}
    assert program_from_dict(program_to_dict(program)) == program          # through the manifest


def test_plain_expects_serialize_as_before(spec):
    d = program_to_dict(load_program(spec('expect "x" is json\n')))
    assert d["expects"] == [{"prompt": "x", "kind": "is_json", "arg": None, "span": d["expects"][0]["span"]}]


def test_prompt_files_are_locked_and_their_drift_is_reported(spec, tmp_path):
    _files(tmp_path)
    path = spec(BODY)
    lock = build_lock(load_program(path), tmp_path)
    jsonschema.validate(lock, lock_schema())
    assert sorted(lock["prompt_files"]) == ["p/prompts.txt", "p/texts.jsonl"]
    (tmp_path / "p" / "prompts.txt").write_text("Tell me about Amazon\n")
    new = build_lock(load_program(path), tmp_path)
    assert [x for x in diff_lock(lock, new) if x.startswith("prompt file p/prompts.txt changed")]
    assert "prompt_files" not in build_lock(load_program(spec('expect "x" is json\n')), tmp_path)


def test_missing_and_bad_prompt_files(spec, tmp_path):
    d = errors(spec('expect at least 90% of "p/nope.txt" is json\n'))
    assert [x.code for x in d] == ["E207"] and (d[0].span.line, d[0].span.col) == (4, 24)
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "bad.jsonl").write_text('{"text": "ok"}\n{"id": 3}\n')
    d = errors(spec('expect kl on "p/bad.jsonl" below 1\n'))
    assert [x.code for x in d] == ["E036"] and "line 2" in d[0].message and d[0].span.line == 4
    (tmp_path / "p" / "blank.txt").write_text("\n  \n")
    assert codes(spec('expect at least 90% of "p/blank.txt" is json\n')) == ["E036"]
    (tmp_path / "p" / "latin1.txt").write_bytes(b"caf\xe9\n")
    assert codes(spec('expect at least 90% of "p/latin1.txt" is json\n')) == ["E036"]
    os.mkfifo(tmp_path / "p" / "fifo.txt")  # never opened for a blocking read
    assert codes(spec('expect at least 90% of "p/fifo.txt" is json\n')) == ["E036"]


def test_one_nonempty_baseline_and_a_target_that_exists(spec):
    assert codes(spec('baseline prompt "a"\nbaseline prompt "b"\nexpect "x" is json\n')) == ["E034"]
    assert codes(spec('baseline prompt "  "\nexpect "x" is json\n')) == ["E035"]
    assert codes(spec('expect features tagged "no:such" down by at least 10%\n')) == ["E206"]
    assert "E203" in codes(spec('expect res2["no such label"] down by at least 10%\n'))


# --- the prompt-file reader over its input space ------------------------------------------

_prompt = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=20)


@settings(max_examples=200, deadline=None)
@given(st.lists(_prompt.filter(str.strip), min_size=1, max_size=8))
def test_jsonl_prompts_read_back_exactly(ps):
    text = "".join(json.dumps({"text": p}) + "\n" for p in ps)
    assert parse_prompts(text, "x.jsonl", CHECK_KIND) == tuple(ps)
    assert parse_prompts(text.replace("\n", "\r\n"), "x.JSONL", CHECK_KIND) == tuple(ps)


@settings(max_examples=200, deadline=None)
@given(st.lists(_prompt.filter(lambda p: p.strip() and "\n" not in p and "\r" not in p), min_size=1,
                max_size=8))
def test_text_prompts_are_the_non_blank_lines(ps):
    text = "\n\n".join(ps) + "\n"
    assert parse_prompts(text, "x.txt", CHECK_KIND) == tuple(ps)
