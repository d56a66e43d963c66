"""format_spec output re-parses to the same AST, is idempotent and keeps comments."""

import math

from hypothesis import given, settings, strategies as st

from steerc.compiler import ast as A
from steerc.grammar.errors import KEYWORDS
from steerc.grammar.parser import parse
from steerc.grammar.printer import format_spec, number, quote
from steerc.grammar.spans import strip_spans

MESSY = '''# Support bot
model   "models/demo"    # base model

sae res2="saes/demo/blocks.2.hook_resid_post" ; catalogue "c.json"
use "base.steer"



suppress res2["email"]   on prompt at layers 1..3
ablate res2[1234]everywhere
clamp res2["python code"] to +5.0x max   # strong
when res2["greeting"] > 5e-1 { steer res2["formal"] by 3 }  # one-liner
when res2[1] > 0 {
  # leading comment in block
  scale res2[77] by 0.5; amplify res2[2] by -1E-3
  when res2[2] > 1 {
    suppress features matching "q\\"uote\\\\" in res2 limit 5   # deep
  }
  # trailing comment in block
}   # after block
enforce json schema "s.json" strength 2.50
expect "Say \\u00e9" not mentions "email"
# end
'''


def stmts(spec):
    return strip_spans(spec.statements)


def test_messy_spec_round_trips_and_is_idempotent():
    spec = parse(MESSY)
    out = format_spec(spec)
    again = parse(out)
    assert stmts(again) == stmts(spec)
    assert format_spec(again) == out
    assert [c for _, c in again.comments] == [c for _, c in spec.comments]


def test_canonical_layout():
    out = format_spec(parse(MESSY))
    assert out.splitlines()[:6] == [
        "# Support bot",
        'model "models/demo"  # base model',
        "",
        'sae res2 = "saes/demo/blocks.2.hook_resid_post"',
        'catalogue "c.json"',
        'use "base.steer"',
    ]
    assert 'suppress res2["email"] at layers 1..3 on prompt' in out
    assert 'clamp res2["python code"] to 5x max  # strong' in out
    assert "    suppress features matching \"q\\\"uote\\\\\" in res2 limit 5  # deep" in out
    assert "}  # after block" in out
    assert out.endswith("# end\n")
    assert "\n\n\n" not in out


def test_auto_strengths_print_as_written():
    text = ('steer r[1] by auto\namplify r[2] by auto at layers 1..2\nclamp r[3] to auto on prompt\n'
            'scale features tagged "t" by auto\n')
    spec = parse(text)
    assert all(isinstance(getattr(x, "amount", getattr(x, "value", getattr(x, "factor", None))), A.Auto)
               for x in spec.statements)
    assert format_spec(spec) == text


def test_number_and_quote_helpers_read_back_exactly():
    for v in [0.0, -0.0, 1.0, -3.0, 0.1, 1e-300, 2.5e17, 123456789.125, -1.5e-3]:
        assert float(number(v)) == v and math.copysign(1, float(number(v))) == math.copysign(1, v)
    for s in ['a"b', "back\\slash", "\x00\x01\x7f", "tab\tnl\nret\r", "é中✓"]:
        assert parse(f"model {quote(s)}").statements[0].path.value == s


# --- random ASTs: print -> parse is the identity -----------------------------------------

names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,6}", fullmatch=True).filter(lambda s: s not in KEYWORDS)
texts = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
floats = st.floats(allow_nan=False, allow_infinity=False)
ints = st.integers(0, 10**12)
N = lambda: floats.map(lambda v: A.Num(v, None))  # noqa: E731
S = lambda: texts.map(lambda v: A.Str(v, None))  # noqa: E731
NM = names.map(lambda v: A.Name(v, None))
# a percentage or bound the checks accept: 0 < value <= hi
P = lambda hi: st.floats(min_value=0, max_value=hi, exclude_min=True).map(lambda v: A.Num(v, None))  # noqa: E731

feature = st.one_of(
    st.builds(A.IndexRef, NM, ints, st.none()),
    st.builds(A.LabelRef, NM, S(), st.none()),
    st.builds(A.SearchRef, NM, S(), st.none()),
)
target = st.one_of(
    feature,
    st.builds(A.TagSet, S(), st.none() | NM, st.none() | st.integers(0, 999), st.none()),
    st.builds(A.SearchSet, S(), st.none() | NM, st.none() | st.integers(0, 999), st.none()),
)
layers = st.none() | st.tuples(st.integers(0, 40), st.integers(0, 40)).map(lambda t: (min(t), max(t)))
positions = st.sampled_from(["all", "prompt", "generated"])
scope = st.builds(A.Scope, layers, st.just(False), positions, st.none())
ablate_scope = st.one_of(scope, st.builds(A.Scope, st.none(), st.just(True), positions, st.none()))
# a rule's strength: a number or `auto` (`clamp X to auto` has unit abs: there is no `autox max`)
AMOUNT = st.one_of(N(), st.just(A.Auto(None)))
rule = st.one_of(
    st.builds(A.Suppress, target, scope, st.none()),
    st.builds(A.Ablate, target, ablate_scope, st.none()),
    st.builds(A.Steer, st.sampled_from(["steer", "amplify"]), target, AMOUNT, scope, st.none()),
    st.builds(A.Clamp, target, N(), st.sampled_from(["abs", "max"]), scope, st.none()),
    st.builds(A.Clamp, target, AMOUNT, st.just("abs"), scope, st.none()),
    st.builds(A.Scale, target, AMOUNT, scope, st.none()),
)
item = st.recursive(rule, lambda inner: st.builds(
    A.When, feature, N(), st.lists(inner, min_size=1, max_size=3).map(tuple), st.none(), st.none()),
    max_leaves=6)
statement = st.one_of(
    item,
    st.builds(A.ModelDecl, S(), st.none(), st.sampled_from(["plain", "hub"])),
    st.builds(A.SaeDecl, NM, S(), st.none()),
    st.builds(A.SaeDecl, NM, S(), st.none(), st.just("hub"), st.none() | S()),
    st.builds(A.SaeDecl, NM, S(), st.none(), st.just("saelens"), S()),
    st.builds(A.CatalogueDecl, S(), st.none()),
    st.builds(A.Use, S(), st.none()),
    st.builds(A.EnforceJson, st.none() | S(), st.none() | N(), st.none()),
    st.builds(A.Expect, S(), st.just("is_json"), st.none(), st.none()),
    st.builds(A.Expect, S(), st.sampled_from(["matches_schema", "mentions", "not_mentions"]), S(), st.none()),
    st.builds(A.ExpectRate, P(100), S(), st.just("is_json"), st.none(), st.none()),
    st.builds(A.ExpectRate, P(100), S(), st.sampled_from(["matches_schema", "mentions", "not_mentions"]),
              S(), st.none()),
    st.builds(A.ExpectKl, st.none() | S(), P(1e300), st.none()),
    st.builds(A.ExpectChange, target, st.just("down"), P(100), st.none() | S(), st.none()),
    st.builds(A.ExpectChange, target, st.just("up"), P(1e300), st.none() | S(), st.none()),
    st.builds(A.Baseline, S(), st.none()),
)


def _with_lines(stmts_, line=1):
    """Give statements increasing line numbers (the printer orders comments by them)."""
    import dataclasses
    from steerc.diagnostics import Span
    out = []
    for s in stmts_:
        if isinstance(s, A.When):
            body = _with_lines(s.body, line + 1)
            s = dataclasses.replace(s, body=body, span=Span("g", line, 1), end=Span("g", line + 100, 1))
            line += 101
        else:
            s = dataclasses.replace(s, span=Span("g", line, 1))
            line += 1
        out.append(s)
    return tuple(out)


@settings(max_examples=150, deadline=None)
@given(st.lists(statement, max_size=6))
def test_random_asts_print_and_reparse_to_themselves(statements):
    spec = A.Spec("g", _with_lines(statements))
    text = format_spec(spec)
    assert stmts(parse(text)) == strip_spans(tuple(statements))
    assert format_spec(parse(text)) == text


# --- random layouts with comments: formatting is idempotent and loses nothing ------------

LINES = ["suppress r[1]", 'steer r["a b"] by -2', "amplify r[6] by auto on prompt", "clamp r[7] to auto", "clamp r[2] to 5x max at layer 1", "ablate r[3] everywhere",
         "scale r[4] by .5; suppress r[5]", 'model "m"', "", "   ", "# own-line comment"]


@st.composite
def layouts(draw, depth=0):
    out = []
    for _ in range(draw(st.integers(0, 5))):
        if depth < 2 and draw(st.integers(0, 4)) == 0:
            inner = draw(layouts(depth + 1)) or ["suppress r[9]"]
            if not any(x.strip() and not x.strip().startswith("#") for x in inner):
                inner.append("suppress r[9]")
            head = "when r[0] > 1 {" + draw(st.sampled_from(["", "  # head"]))
            out += [head, *inner, "}" + draw(st.sampled_from(["", " # tail"]))]
        else:
            line = draw(st.sampled_from(LINES))
            if depth and line.startswith("model"):
                line = "suppress r[8]"
            out.append(line + (draw(st.sampled_from(["", "  # c"])) if line.strip() else ""))
    return out


@settings(max_examples=150, deadline=None)
@given(layouts())
def test_formatting_random_layouts_is_idempotent(lines):
    spec = parse("\n".join(lines))
    once = format_spec(spec)
    again = parse(once)
    assert stmts(again) == stmts(spec)
    assert [c for _, c in again.comments] == [c for _, c in spec.comments]
    assert format_spec(again) == once
