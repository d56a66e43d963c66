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
    tags, groups, share = source_tags(labels, tokens, count, sums)
    assert groups == ["format:code", "topic:news", ""]
    # feature 0: share 0.7 on code -> tagged; feature 1: share 1.0 but only 4 active tokens; feature 2: flat
    assert tags == [["format:code"], [], []]
