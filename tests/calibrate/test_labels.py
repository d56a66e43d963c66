"""Auto-labels: token with its context pattern, readable names, never a double quote, unique."""

from __future__ import annotations

from hypothesis import given, settings, strategies as st

from steerc.catalogue.calibrate.labels import Label, dedupe, label_feature, token_name
from steerc.catalogue.calibrate.tags import source_tags, tag_for

import torch


def ctx(*toks: str) -> list[str]:
    return list(toks)


def test_token_with_its_context_pattern():
    contexts = [ctx("", "the", " ", "Amazon", " Web", " Services"),
                ctx(" said", " ", " ", "Amazon", " Web", " Services"),
                ctx("", "buy", " on", "Amazon", ".", "")]
    lab = label_feature(contexts, left=3, right=2)
    assert lab.label == "Amazon (in \u201cAmazon Web Services\u201d)"
    assert lab.aliases == ("Amazon", "Amazon Web Services")


def test_names_for_punctuation_and_whitespace():
    assert token_name("\n") == "newline"
    assert token_name("    ") == "indentation"
    assert token_name("{") == "left curly bracket"
    assert token_name(' "Amazon"') == "Amazon"


def test_after_and_mixed_labels():
    after = [ctx("def", " a"), ctx("def", " b"), ctx("def", " c"), ctx("x", " d")]
    assert label_feature(after, left=1, right=0).label == "after def"
    mixed = [ctx("a", " p"), ctx("b", " q"), ctx("c", " r"), ctx("d", " s"), ctx("e", " p"), ctx("f", " t")]
    assert label_feature(mixed, left=1, right=0).label == "p / q"
    assert label_feature([], 1, 0) is None


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.text(min_size=1, max_size=4), min_size=5, max_size=5), min_size=1, max_size=8))
def test_labels_never_hold_double_quotes_and_are_not_blank(contexts):
    lab = label_feature(contexts, left=2, right=2)
    assert '"' not in lab.label and lab.label.strip()
    assert all(a.strip() and '"' not in a for a in lab.aliases)


def test_dedupe_suffixes_and_drops_aliases_equal_to_other_labels():
    out = dedupe([Label("comma", ("punct",)), Label("Comma", ("comma",)), Label("punct", ()), None], ["", "", "", "inactive 3"])
    assert [o[0] for o in out] == ["comma", "Comma #2", "punct", "inactive 3"]
    assert out[0][1] == [] and out[1][1] == []


def test_tag_rule_share_and_minimum_count():
    assert tag_for("code") == "format:code" and tag_for("news") == "topic:news" and tag_for("entity:acme") == "entity:acme"
    labels = ["code", "news", ""]
    tokens = torch.tensor([100, 100, 100])
    count = torch.tensor([[10, 4, 10], [1, 0, 10], [0, 0, 10]])
    sums = torch.tensor([[7.0, 9.0, 1.0], [3.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    tags, contests = source_tags(labels, tokens, count, sums)
    assert [(c.kind, c.groups, c.n_tags) for c in contests] == [("format", ("format:code", "topic:news", ""), 1),
                                                               ("topic", ("topic:news", "format:code", ""), 1)]
    # feature 0: share 0.7 on code -> tagged; feature 1: share 1.0 but only 4 active tokens; feature 2: flat
    assert tags == [["format:code"], [], []]


def test_topic_corpora_do_not_dilute_format_tags():
    """Each kind is its own contest: prose corpora labelled with topics keep their format
    tags, a feature that fires on every topic alike gets no topic tag, a feature of another
    format that fires a little on one topic's text is not that topic's, and neither is a
    rare feature of one other source (the other sources are not pooled into one diluted
    remainder)."""
    labels = ["code", "prose", "json", "prose,topic:startrek", "prose,topic:food", ""]
    tokens = torch.tensor([100, 100, 100, 100, 100, 1000])
    # rows: sources; columns: f0 general prose, f1 code, f2 startrek prose, f3 json seen 6x in
    # food, f4 rare code (5 tokens in 100) also seen 5x in startrek; the unlabelled 1000 tokens never fire
    count = torch.tensor([[0, 50, 0, 0, 5], [50, 0, 10, 0, 0], [0, 1, 1, 60, 0],
                          [50, 0, 30, 0, 5], [50, 0, 0, 6, 0], [0, 0, 0, 0, 0]])
    sums = torch.tensor([[0.0, 80.0, 0.0, 0.0, 5.0], [80.0, 0.0, 9.0, 0.0, 0.0], [1.0, 1.0, 1.0, 90.0, 0.0],
                         [80.0, 0.0, 60.0, 0.0, 4.0], [80.0, 0.0, 0.0, 3.0, 0.0], [0.0] * 5])
    tags, contests = source_tags(labels, tokens, count, sums)
    assert tags == [["format:prose"], ["format:code"], ["format:prose", "topic:startrek"], ["format:json"],
                    ["format:code"]]
    assert [(c.kind, c.groups, c.n_tags) for c in contests] == [
        ("format", ("format:code", "format:prose", "format:json", ""), 3),
        ("topic", ("topic:startrek", "topic:food", "format:code", "format:prose", "format:json", ""), 2)]


_LABELS = st.lists(st.sampled_from(["code", "prose", "json", "", "topic:a", "topic:b", "entity:x",
                                     "code,topic:a", "json,entity:x", "prose,topic:b,entity:y"]),
                   min_size=1, max_size=6)


@settings(max_examples=100, deadline=None)
@given(_LABELS, st.integers(0, 2**31 - 1))
def test_renaming_another_kinds_labels_changes_no_tag_of_this_kind(labels, seed):
    """A kind's tags depend on how other kinds group the sources, not on their names."""
    from steerc.catalogue.calibrate.tags import kind_of

    g = torch.Generator().manual_seed(seed)
    d, S = 12, len(labels)
    tokens = torch.randint(1, 1000, (S,), generator=g)
    count = torch.randint(0, 40, (S, d), generator=g)
    sums = torch.rand(S, d, generator=g) * count
    before, _ = source_tags(labels, tokens, count, sums)
    renamed = [",".join("topic:z" + p.split(":")[1] if p.startswith("topic:") else p for p in lab.split(","))
               if lab else lab for lab in labels]
    after, _ = source_tags(renamed, tokens, count, sums)
    assert [[t for t in ts if kind_of(t) != "topic"] for ts in after] == \
        [[t for t in ts if kind_of(t) != "topic"] for ts in before]


@settings(max_examples=100, deadline=None)
@given(_LABELS, st.integers(0, 2**31 - 1))
def test_splitting_a_source_in_two_changes_no_tag(labels, seed):
    """Sources with the same label are pooled: one source cut into two gives the same tags."""
    g = torch.Generator().manual_seed(seed)
    d, S = 12, len(labels)
    tokens = torch.randint(2, 1000, (S,), generator=g)
    count = torch.randint(0, 40, (S, d), generator=g)
    sums = torch.rand(S, d, generator=g).double() * count
    whole, _ = source_tags(labels, tokens, count, sums)
    t0, c0, s0 = tokens[0] // 2, count[0] // 2, sums[0] / 2
    split, _ = source_tags([labels[0]] + labels, torch.cat([t0[None], (tokens[0] - t0)[None], tokens[1:]]),
                           torch.cat([c0[None], (count[0] - c0)[None], count[1:]]),
                           torch.cat([s0[None], (sums[0] - s0)[None], sums[1:]]))
    assert split == whole


def test_source_label_problems():
    from steerc.catalogue.calibrate.tags import label_problem

    assert label_problem("code,topic:xml") is None and label_problem("entity:s3") is None
    assert "kind 'format'" in label_problem("code,json")
    assert "whitespace" in label_problem("code,") and "whitespace" in label_problem("a b")


def test_a_word_piece_is_named_by_the_words_it_sits_in():
    ctx = [["the", " Bu", "cket", " is"], ["a", " Bu", "ild", "er"], ["my", " Bu", "cket", "."],
           ["x", " Bu", "s", " stop"], ["of", " Bu", "ffer", "s"]]
    lab = label_feature(ctx, left=1, right=2)
    assert lab.label == "Bu (in \u201cBucket\u201d, \u201cBuffers\u201d, \u201cBuilder\u201d)"
    assert lab.aliases == ("Bu",)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(0, 10, allow_nan=False), min_size=1, max_size=6).flatmap(
    lambda col: st.just(col)))
def test_runner_up_is_the_best_other_group(col):
    from steerc.catalogue.calibrate.tags import _runner_up

    mean = torch.tensor(col, dtype=torch.float64)[:, None]
    got = _runner_up(mean)[:, 0].tolist()
    assert got == [max([x for j, x in enumerate(col) if j != i], default=0.0) for i in range(len(col))]
