"""Every statement form parses to the expected AST nodes (spans stripped)."""

import pytest

from steerc.compiler import ast as A
from steerc.grammar.parser import parse
from steerc.grammar.spans import strip_spans


def one(src: str):
    spec = parse(src)
    assert len(spec.statements) == 1, spec.statements
    return strip_spans(spec.statements[0])


def S(v):
    return A.Str(v, None)


def N(v):
    return A.Num(float(v), None)


def NM(v):
    return A.Name(v, None)


R2 = NM("res2")
ALL = A.Scope()


def idx(i, sae="res2"):
    return A.IndexRef(NM(sae), i, None)


def lab(label):
    return A.LabelRef(R2, S(label), None)


CASES = [
    ('model "models/demo"', A.ModelDecl(S("models/demo"), None)),
    ('sae res2 = "saes/demo/blocks.2.hook_resid_post"',
     A.SaeDecl(R2, S("saes/demo/blocks.2.hook_resid_post"), None)),
    ('catalogue "catalogues/demo.json"', A.CatalogueDecl(S("catalogues/demo.json"), None)),
    ('use "base.steer"', A.Use(S("base.steer"), None)),
    ('suppress res2["email"]', A.Suppress(lab("email"), ALL, None)),
    ("suppress res2[12] at layers 1..3", A.Suppress(idx(12), A.Scope(layers=(1, 3)), None)),
    ("suppress res2[12] at layer 4 on generated",
     A.Suppress(idx(12), A.Scope(layers=(4, 4), positions="generated"), None)),
    ("suppress res2[12] on prompt at layers 0..2",
     A.Suppress(idx(12), A.Scope(layers=(0, 2), positions="prompt"), None)),
    ("ablate res2[1234] everywhere", A.Ablate(idx(1234), A.Scope(everywhere=True), None)),
    ("ablate res2[1] at layers 1..3 on all", A.Ablate(idx(1), A.Scope(layers=(1, 3)), None)),
    ("ablate res2[1]", A.Ablate(idx(1), ALL, None)),
    ("ablate res2[1] on prompt everywhere",
     A.Ablate(idx(1), A.Scope(everywhere=True, positions="prompt"), None)),
    ('steer res2["json key"] by 4', A.Steer("steer", lab("json key"), N(4), ALL, None)),
    ("amplify res2[3] by -1.5e-3 on generated",
     A.Steer("amplify", idx(3), N(-1.5e-3), A.Scope(positions="generated"), None)),
    ("clamp res2[5] to 2.5", A.Clamp(idx(5), N(2.5), "abs", ALL, None)),
    ('clamp res2["python code"] to 5x max', A.Clamp(lab("python code"), N(5), "max", ALL, None)),
    ("clamp res2[5] to 2.5x max at layer 2", A.Clamp(idx(5), N(2.5), "max", A.Scope(layers=(2, 2)), None)),
    ("scale res2[77] by 0.5", A.Scale(idx(77), N(0.5), ALL, None)),
    ("scale res2[77] by +2E+2", A.Scale(idx(77), N(200), ALL, None)),
    ('suppress features tagged "entity:person"', A.Suppress(A.TagSet(S("entity:person"), None, None, None), ALL, None)),
    ('suppress features tagged "t" in res2 limit 20',
     A.Suppress(A.TagSet(S("t"), R2, 20, None), ALL, None)),
    ('steer features matching "bridge" limit 5 by 2',
     A.Steer("steer", A.SearchSet(S("bridge"), None, 5, None), N(2), ALL, None)),
    ('scale res2[search "python code"] by .5',
     A.Scale(A.SearchRef(R2, S("python code"), None), N(0.5), ALL, None)),
    ('when res2["greeting"] > 0.5 { steer res2["formal"] by 3 }',
     A.When(lab("greeting"), N(0.5), (A.Steer("steer", lab("formal"), N(3), ALL, None),), None, None)),
    ("enforce json format", A.EnforceJson(None, None, None)),
    ("enforce json format strength 2", A.EnforceJson(None, N(2), None)),
    ('enforce json schema "schemas/ticket.json"', A.EnforceJson(S("schemas/ticket.json"), None, None)),
    ('enforce json schema "s.json" strength 0.5', A.EnforceJson(S("s.json"), N(0.5), None)),
    ('expect "List three colours" is json', A.Expect(S("List three colours"), "is_json", None, None)),
    ('expect "p" matches schema "s.json"', A.Expect(S("p"), "matches_schema", S("s.json"), None)),
    ('expect "p" mentions "bridge"', A.Expect(S("p"), "mentions", S("bridge"), None)),
    ('expect "Describe your inbox" not mentions "email"',
     A.Expect(S("Describe your inbox"), "not_mentions", S("email"), None)),
    ('expect at least 95% of "prompts/heldout.txt" not mentions "Amazon"',
     A.ExpectRate(N(95), S("prompts/heldout.txt"), "not_mentions", S("Amazon"), None)),
    ('expect at least 99.5% of "p.jsonl" is json', A.ExpectRate(N(99.5), S("p.jsonl"), "is_json", None, None)),
    ('expect at least 1e2% of "p.txt" matches schema "s.json"',
     A.ExpectRate(N(100), S("p.txt"), "matches_schema", S("s.json"), None)),
    ('expect kl on "neutral.txt" below 0.05', A.ExpectKl(S("neutral.txt"), N(0.05), None)),
    ("expect kl below 1e-3", A.ExpectKl(None, N(1e-3), None)),
    ('expect res2["self"] down by at least 50% on "code.txt"',
     A.ExpectChange(lab("self"), "down", N(50), S("code.txt"), None)),
    ('expect features tagged "format:json" in res2 limit 3 up by at least 250%',
     A.ExpectChange(A.TagSet(S("format:json"), R2, 3, None), "up", N(250), None, None)),
    ('baseline prompt "Answer only in JSON.\\n"', A.Baseline(S("Answer only in JSON.\n"), None)),
]


@pytest.mark.parametrize("src,expected", CASES, ids=[c[0][:40] for c in CASES])
def test_statement_forms(src, expected):
    assert one(src) == expected


def test_nested_when_bodies_hold_rules_and_whens():
    src = """when res2[1] > 0 {
  suppress res2[2]
  when res2[3] > -1e2 {
    scale res2[4] by 2; ablate res2[5]
  }
}"""
    w = one(src)
    assert isinstance(w, A.When) and len(w.body) == 2
    inner = w.body[1]
    assert isinstance(inner, A.When) and inner.threshold.value == -100.0
    assert [type(x) for x in inner.body] == [A.Scale, A.Ablate]


@pytest.mark.parametrize("escaped,value", [
    (r'"a\"b"', 'a"b'), (r'"a\\b"', "a\\b"), (r'"a\nb"', "a\nb"), (r'"\tx"', "\tx"),
    (r'"\u00e9\u4e2d"', "é中"), ('"ünïcödé ✓"', "ünïcödé ✓"), ('""', ""), (r'"#not a comment"', "#not a comment"),
])
def test_string_escapes(escaped, value):
    assert parse(f"model {escaped}").statements[0].path.value == value


@pytest.mark.parametrize("text,value", [
    ("4", 4.0), ("-1.5e-3", -1.5e-3), ("+2", 2.0), (".25", 0.25), ("1E3", 1000.0), ("-0", 0.0),
    ("1e308", 1e308), ("0.000001", 1e-6),
])
def test_numbers(text, value):
    assert parse(f"scale r[1] by {text}").statements[0].factor.value == value


def test_separators_comments_and_blank_lines():
    src = "\n\n# only a comment\nsuppress r[1]; suppress r[2];;\r\n\n  suppress r[3]  # trailing\n;"
    spec = parse(src)
    assert [s.target.index for s in spec.statements] == [1, 2, 3]
    assert spec.comments == ((3, "# only a comment"), (6, "# trailing"))


def test_empty_and_comment_only_files():
    assert parse("").statements == ()
    assert parse("# nothing\n\n").statements == ()


def test_keywords_do_not_swallow_longer_names():
    # `suppressx`/`maxi` are names, not keywords followed by text
    spec = parse('sae maxi = "p"\nsuppress maxi[1]\nsae x = "q"\nclamp x[2] to 3x max')
    assert spec.statements[1].target.sae.value == "maxi"
    assert spec.statements[3].target.sae.value == "x"


def test_no_lark_object_reaches_the_ast():
    import dataclasses

    spec = parse('sae r = "p"\nwhen r[1] > 0 { steer r["x"] by 2 at layer 1 on prompt }\n'
                 'suppress features tagged "t" in r limit 2 # c\nexpect "p" is json\n')
    seen = []

    def walk(x):
        seen.append(type(x))
        if dataclasses.is_dataclass(x):
            for f in dataclasses.fields(x):
                walk(getattr(x, f.name))
        elif isinstance(x, tuple):
            for y in x:
                walk(y)

    walk(spec)
    assert not [t for t in seen if t.__module__.startswith("lark")]
    assert str in seen and int in seen and float in seen
