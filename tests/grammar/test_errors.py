"""Syntax errors: all of them are collected, each with the right code and position, and
recovery never loses the statements around an error."""

import pytest

from steerc.diagnostics import DiagnosticError
from steerc.grammar.parser import parse


def diags(src):
    with pytest.raises(DiagnosticError) as e:
        parse(src, "e.steer")
    return [(d.code, d.span.line, d.span.col) for d in e.value.diagnostics]


def test_every_bad_line_is_reported_once():
    src = "\n".join([
        "supress res2[1]",          # E004 unknown verb
        "steer res2[1] 4",          # E006 missing by
        "suppress res2[1]",         # fine
        "clamp res2[1] by 3",       # E007 missing to
        "scale res2[2] by 5x max",  # E010 x max misuse
        "suppress res2[1]",         # fine
    ])
    assert diags(src) == [("E004", 1, 1), ("E006", 2, 15), ("E007", 4, 15), ("E010", 5, 18)]


def test_recovery_keeps_checking_later_statements():
    # the bad escape on line 3 is found by the AST pass, so lines 1-3 survived recovery
    src = 'when r[1] < 3 { suppress r[1] }\nsteer r[1] by\nmodel "a\\qb"\n'
    assert diags(src) == [("E022", 1, 11), ("E005", 2, 14), ("E003", 3, 9)]


def test_recovery_inside_blocks():
    src = "when r[1] > 0 {\n  steer r[2] by\n  suppress r[3]\n  clamp r[4] to x\n}\nsuppress r[5] at\n"
    assert diags(src) == [("E005", 2, 16), ("E005", 4, 17), ("E023", 6, 17)]


def test_stray_closing_brace_after_a_broken_when_is_not_reported_twice():
    src = "when r[1] > { suppress r[1] }\nsuppress r[2]\n}\n"
    assert diags(src) == [("E005", 1, 13), ("E012", 3, 1)]


def test_unclosed_block_points_at_its_brace():
    assert diags("suppress r[1]\nwhen r[1] > 0 {\n  suppress r[2]\n") == [("E011", 2, 15)]


def test_unterminated_string_is_one_error():
    assert diags('model "abc\nsuppress r[1]\nsae x = "y\n') == [("E002", 1, 7), ("E002", 3, 9)]


def test_empty_when_is_reported_only_without_syntax_errors():
    assert diags("when r[1] > 0 {}\n") == [("E013", 1, 15)]
    assert diags("when r[1] > 0 { supress r[2] }\n") == [("E004", 1, 17)]


def test_hints_name_the_fix():
    with pytest.raises(DiagnosticError) as e:
        parse("supress r[1]\nsuppress r[1] on promt\n")
    hints = [d.hint for d in e.value.diagnostics]
    assert hints == ["did you mean 'suppress'?", "did you mean 'prompt'?"]
