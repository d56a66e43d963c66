"""Spans survive parsing: specific line/col/length for every kind of node."""

from steerc.diagnostics import Span
from steerc.grammar.parser import parse

SRC = '''# demo
sae res2 = "saes/x"
  suppress res2["email"] at layers 1..3 on prompt   # c
clamp res2[12] to 5x max; scale features tagged "t" in res2 limit 3 by -0.5
when res2[search "hi"] > 0.5 {
    steer res2[7] by 4
}
expect "p" not mentions "q"
'''


def sp(line, col, length):
    return Span("f.steer", line, col, length)


def test_positions_of_every_node():
    sae, sup, clamp, scale, when, expect = parse(SRC, "f.steer").statements
    assert sae.span == sp(2, 1, 19)
    assert sae.alias.span == sp(2, 5, 4)
    assert sae.path.span == sp(2, 12, 8)

    assert sup.span == sp(3, 3, 47)
    assert sup.target.span == sp(3, 12, 13)
    assert sup.target.sae.span == sp(3, 12, 4)
    assert sup.target.label.span == sp(3, 17, 7)
    assert sup.scope.span == sp(3, 26, 24)

    assert clamp.span == sp(4, 1, 24)
    assert clamp.target.span == sp(4, 7, 8)
    assert clamp.value.span == sp(4, 19, 2)
    assert clamp.scope.span is None  # nothing written, nothing to point at

    assert scale.span.line == 4 and scale.span.col == 27
    assert scale.target.span == sp(4, 33, 35)
    assert scale.target.tag.span == sp(4, 49, 3)
    assert scale.target.sae.span == sp(4, 56, 4)
    assert scale.factor.span == sp(4, 72, 4)

    assert when.span == sp(5, 1, 30)  # a multi-line node: up to the end of its first line
    assert when.feature.span == sp(5, 6, 17)
    assert when.feature.query.span == sp(5, 18, 4)
    assert when.threshold.span == sp(5, 26, 3)
    assert when.end == sp(7, 1, 1)
    (steer,) = when.body
    assert steer.span == sp(6, 5, 18)
    assert steer.amount.span == sp(6, 22, 1)

    assert expect.span == sp(8, 1, 27)
    assert expect.prompt.span == sp(8, 8, 3)
    assert expect.arg.span == sp(8, 25, 3)


def test_comment_lines():
    assert parse(SRC).comments == ((1, "# demo"), (3, "# c"))


def test_crlf_and_tabs_count_as_one_column():
    spec = parse("\tsuppress r[1]\r\nscale r[2] by 3\r\n", "f.steer")
    assert spec.statements[0].span == sp(1, 2, 13)
    assert spec.statements[1].factor.span == sp(2, 15, 1)


def test_multiline_when_span_covers_its_head_only():
    w = parse("when r[1] > 2 {   # why\n  suppress r[2]\n}\n", "f.steer").statements[0]
    assert w.span == sp(1, 1, 15) and w.end == sp(3, 1, 1)
    one = parse("when r[1] > 2 { suppress r[2] }  # c\n", "f.steer").statements[0]
    assert one.span == sp(1, 1, 31)
