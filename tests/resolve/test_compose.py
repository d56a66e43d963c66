"""`use` composition, declaration merging, enforce json, expect."""

from steerc.compiler.ir import Op
from steerc.compiler.load import load, load_program

from conftest import FIX, HEADER, codes, errors


def test_use_inserts_statements_in_place(spec, tmp_path):
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "base.steer").write_text('suppress res2[1]\nuse "more.steer"\n')
    (tmp_path / "lib" / "more.steer").write_text('suppress res2[2]\n')
    p = load_program(spec('suppress res2[0]\nuse "lib/base.steer"\nsuppress res2[3]\n'))
    assert [iv.feature.index for iv in p.interventions] == [0, 1, 2, 3]
    assert [f.split("/")[-1] for f in p.files] == ["s.steer", "base.steer", "more.steer"]
    assert p.interventions[1].span.file.endswith("lib/base.steer")


def test_declarations_may_come_from_a_used_file(spec, tmp_path):
    (tmp_path / "decls.steer").write_text(HEADER)
    p = load_program(spec('use "decls.steer"\nsuppress res2["email"]\n', header=""))
    assert p.interventions[0].feature.index == 0


def test_cycle_lists_the_files(spec, tmp_path):
    (tmp_path / "a.steer").write_text('use "b.steer"\n')
    (tmp_path / "b.steer").write_text('use "a.steer"\n')
    (d,) = errors(spec('use "a.steer"\n'))
    assert d.code == "E209" and "a.steer -> " in d.message and d.message.count("a.steer") == 2


def test_self_use_is_a_cycle(spec):
    (d,) = errors(spec('use "s.steer"\n'))
    assert d.code == "E209"


def test_same_file_twice(spec, tmp_path):
    (tmp_path / "a.steer").write_text('suppress res2[1]\n')
    (tmp_path / "b.steer").write_text('use "a.steer"\n')
    (d,) = errors(spec('use "a.steer"\nuse "b.steer"\n'))
    assert d.code == "E210" and "first used at" in d.hint and d.span.file.endswith("b.steer")


def test_missing_use(spec):
    (d,) = errors(spec('use "nope.steer"\n'))
    assert d.code == "E207"


def test_duplicate_declarations(spec, tmp_path):
    (tmp_path / "other.steer").write_text(HEADER.replace("sae_res", "sae_mlp"))
    d = errors(spec('use "other.steer"\nsuppress res2[1]\n'))
    assert [x.code for x in d] == ["E208", "E208", "E208"]
    assert all("first declaration is at" in x.hint for x in d)
    # the same alias with the same path twice is fine
    (tmp_path / "same.steer").write_text(f'sae res2 = "{FIX / "sae_res"}"\n')
    assert codes(spec('use "same.steer"\nsuppress res2[1]\n')) == []


def test_syntax_error_in_used_file_stops_before_resolve(spec, tmp_path):
    (tmp_path / "bad.steer").write_text('suppress res2[\n')
    d = errors(spec('use "bad.steer"\nsuppress nope[1]\n'))
    assert all(x.code.startswith("E0") for x in d)


def test_enforce_json_format_expands_tags(spec):
    p = load_program(spec('enforce json format\n'))
    by_op = {}
    for iv in p.interventions:
        by_op.setdefault(iv.op, set()).add(iv.feature.index)
        assert iv.origin == "enforce json format"
    assert by_op[Op.SET] == {3, 4, 5}        # code, markdown, prose
    assert by_op[Op.SCALE] == {1, 2}         # format:json
    assert {iv.value for iv in p.interventions if iv.op == Op.SCALE} == {2.0}
    assert p.json.schema_path is None and p.json.schema is None


def test_enforce_json_schema_and_strength(spec):
    p = load_program(spec(f'enforce json schema "{FIX / "schemas/ticket.json"}" strength 0.5\n'))
    assert {iv.value for iv in p.interventions if iv.op == Op.SCALE} == {0.5}
    assert p.json.schema_path.endswith("ticket.json") and '"title"' in p.json.schema


def test_bad_schemas(spec):
    d = errors(spec(f'enforce json schema "{FIX / "schemas/bad.json"}"\n'
                    f'expect "x" matches schema "{FIX / "schemas/broken.json"}"\n'
                    'expect "y" matches schema "missing.json"\n'))
    assert [x.code for x in d] == ["E219", "E219", "E207"]
    assert "$.properties.title.type" in d[0].message
    assert "line 2" in d[1].message


def test_enforce_twice_and_without_catalogue(spec):
    d = errors(spec('enforce json format\nenforce json format\n'))
    assert [x.code for x in d] == ["E220"]
    header = f'model "{FIX / "model"}"\nsae res2 = "{FIX / "sae_res"}"\n'
    assert codes(spec('suppress res2[1]\nenforce json format\n', header)) == ["W204"]


def test_expects(spec):
    p = load_program(spec(f'suppress res2[1]\nexpect "a" is json\nexpect "b" not mentions "email"\n'
                          f'expect "c" matches schema "{FIX / "schemas/ticket.json"}"\n'))
    assert [(e.prompt, e.kind, e.arg) for e in p.expects][:2] == [
        ("a", "is_json", None), ("b", "not_mentions", "email")]
    assert p.expects[2].arg.endswith("ticket.json")


def test_warnings_are_returned_not_raised(spec):
    loaded = load(spec('scale res2[1] by 200\n'))
    assert [d.code for d in loaded.diagnostics] == ["W202"]
    assert len(loaded.program.interventions) == 1
