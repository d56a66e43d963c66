"""Hostile input: random text, mutated specs, deep nesting, huge numbers and lines, NUL
bytes, bad encodings. The parser must answer with a spec or a DiagnosticError, quickly."""

import time

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from steerc.diagnostics import DiagnosticError, render_all
from steerc.grammar.parser import MAX_ERRORS, parse, parse_file
from steerc.grammar.transform import MAX_WHEN_DEPTH

VALID = '''model "m"
sae res2 = "s"
suppress res2["email"] at layers 1..3 on prompt
clamp res2[2] to 5x max; scale features tagged "t" in res2 limit 3 by -0.5
when res2[1] > 0.5 {
  steer res2[4] by -1e-3
  ablate res2[search "x"] everywhere
}
enforce json schema "s.json" strength 2
expect "p" not mentions "q"
'''


def parse_or_diagnose(text: str):
    """Parse; a DiagnosticError must carry renderable E0xx diagnostics with spans."""
    try:
        return parse(text, "fuzz.steer")
    except DiagnosticError as e:
        assert e.diagnostics
        for d in e.diagnostics:
            assert d.code.startswith("E0"), d
            assert d.span is None or d.span.line >= 1 and d.span.col >= 1
        render_all(e.diagnostics, {"fuzz.steer": text})
        return None


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=200))
def test_random_text_only_raises_diagnostics(text):
    parse_or_diagnose(text)


ALPHABET = list(' \n;{}[]"#.=><-+x\\') + ["suppress", "when", "by", "to", "max", "res2", "1", "2.5",
                                          "features", "at layers", "on", '"q"', "\x00", "é"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, len(VALID)), st.integers(0, 6), st.sampled_from(ALPHABET)),
                min_size=1, max_size=5))
def test_mutated_valid_specs_only_raise_diagnostics(edits):
    text = VALID
    for pos, cut, insert in edits:
        pos = min(pos, len(text))
        text = text[:pos] + insert + text[pos + cut:]
    parse_or_diagnose(text)


def test_deep_nesting_is_refused_not_a_crash():
    depth = 500
    src = "when r[1] > 0 {\n" * depth + "suppress r[1]\n" + "}\n" * depth
    with pytest.raises(DiagnosticError) as e:
        parse(src)
    assert [d.code for d in e.value.diagnostics] == ["E028"]
    assert e.value.diagnostics[0].span.line == MAX_WHEN_DEPTH + 1


def test_nesting_up_to_the_limit_parses():
    depth = MAX_WHEN_DEPTH
    src = "when r[1] > 0 {\n" * depth + "suppress r[1]\n" + "}\n" * depth
    node = parse(src).statements[0]
    for _ in range(depth - 1):
        node = node.body[0]
    assert node.body[0].target.index == 1


def test_deep_unclosed_nesting_gives_one_error():
    with pytest.raises(DiagnosticError) as e:
        parse("when r[1] > 0 {\n" * 500)
    (d,) = e.value.diagnostics
    assert d.code == "E011" and d.span.line == 500 and "500 blocks" in d.hint


def test_error_count_is_capped():
    with pytest.raises(DiagnosticError) as e:
        parse("bogus\n" * 1000)
    codes = [d.code for d in e.value.diagnostics]
    assert len(codes) == MAX_ERRORS + 1 and codes[-1] == "E026"


@pytest.mark.parametrize("src,code", [
    ("steer r[1] by 1e999", "E016"),
    ("steer r[1] by -1e400", "E016"),
    ("suppress r[" + "9" * 5000 + "]", "E016"),
    ("suppress r[1] limit", "E014"),
])
def test_huge_numbers(src, code):
    with pytest.raises(DiagnosticError) as e:
        parse(src)
    assert e.value.diagnostics[0].code == code


def test_megabyte_lines_are_fast():
    big = "x" * 1_000_000
    for src in [f'model "{big}"', f"suppress r[1] # {big}", big, '"' + big, f"steer r[1] by 1{'0' * 1_000_000}",
                "@" * 1_000_000, f"suppress r[{'1' * 1_000_000}]"]:
        t = time.perf_counter()
        parse_or_diagnose(src)
        assert time.perf_counter() - t < 10, src[:20]
    assert len(parse(f'model "{big}"').statements[0].path.value) == 1_000_000


def test_nul_bytes(tmp_path):
    with pytest.raises(DiagnosticError) as e:
        parse("suppress r[1]\x00\n")
    assert e.value.diagnostics[0].code == "E001"
    p = tmp_path / "nul.steer"
    p.write_bytes(b"suppress r[1]\nsteer \x00r[1]")
    with pytest.raises(DiagnosticError) as e:
        parse_file(p)
    (d,) = e.value.diagnostics
    assert (d.code, d.span.line, d.span.col) == ("E018", 2, 7)


def test_invalid_utf8_and_missing_files(tmp_path):
    p = tmp_path / "bad.steer"
    p.write_bytes(b'model "ok"\nmodel "\xff\xfe"\n')
    with pytest.raises(DiagnosticError) as e:
        parse_file(p)
    (d,) = e.value.diagnostics
    assert (d.code, d.span.line, d.span.col) == ("E018", 2, 8)
    with pytest.raises(DiagnosticError) as e:
        parse_file(tmp_path / "missing.steer")
    assert e.value.diagnostics[0].code == "E019"


def test_parse_file_accepts_bom_and_names_the_path(tmp_path):
    p = tmp_path / "ok.steer"
    p.write_bytes("\ufeffsuppress r[1]\n".encode())
    spec = parse_file(p)
    assert spec.file == str(p) and spec.statements[0].span.file == str(p)
    assert spec.statements[0].span.col == 1
