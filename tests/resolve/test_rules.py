"""Ops, units, scopes, `when`, conflicts."""

import pytest

from steerc.compiler.ir import Condition, FeatureId, Op
from steerc.compiler.load import load_program

from conftest import HEADER2, codes, errors

RES = "blocks.1.hook_resid_post"


def one(spec, body, header=None):
    p = load_program(spec(body, header) if header else spec(body))
    assert len(p.interventions) == 1
    return p.interventions[0]


@pytest.mark.parametrize("body, op, value", [
    ('suppress res2[1]', Op.SET, 0.0),
    ('clamp res2[1] to 4.5', Op.SET, 4.5),
    ('clamp res2["json key"] to 5x max', Op.SET, 15.0),   # max_activation 3.0
    ('clamp res2["json key"] to -2e0x max', Op.SET, -6.0),
    ('scale res2[1] by 0.5', Op.SCALE, 0.5),
    ('steer res2[1] by -4', Op.ADD, -4.0),
    ('amplify res2[1] by 2', Op.ADD, 2.0),
    ('ablate res2[1]', Op.PROJECT_OUT, 0.0),
])
def test_ops_and_values(spec, body, op, value):
    iv = one(spec, body + "\n")
    assert (iv.op, iv.value, iv.points, iv.everywhere) == (op, value, (RES,), False)
    assert iv.origin == body.replace("-2e0x", "-2x") and iv.span.line == 4


def test_clamp_max_without_stat(spec):
    (d,) = errors(spec('clamp res2["unmeasured feature"] to 5x max\n'))
    assert d.code == "E214" and d.span.line == 4


@pytest.mark.parametrize("body, code", [
    ('clamp res2["json key"] to 400x max', "W200"),
    ('clamp res2["json key"] to 301', "W200"),
    ('steer res2["json key"] by 301', "W201"),
    ('steer res2["json key"] by 299', None),
    ('scale res2[1] by -1', "W202"),
    ('scale res2[1] by 101', "W202"),
    ('scale res2[1] by 100', None),
])
def test_unit_warnings(spec, body, code):
    assert codes(spec(body + "\n")) == ([code] if code else [])


def test_ablate_everywhere_and_layers(spec):
    iv = one(spec, "ablate res2[2] everywhere\n")
    assert iv.everywhere and iv.points == ()
    iv = one(spec, "ablate res2[2] at layers 0..2 on generated\n")
    assert iv.points == tuple(f"blocks.{L}.hook_resid_post" for L in range(3))
    assert iv.positions == "generated"
    iv = one(spec, "steer res2[2] by 3 at layer 2\n")
    assert iv.points == ("blocks.2.hook_resid_post",)


@pytest.mark.parametrize("body, code", [
    ("suppress res2[2] at layers 0..1", "E215"),
    ("ablate mlp[2] at layers 0..1", "E215"),
    ("ablate res2[2] at layers 1..3", "E216"),
])
def test_scope_errors(spec, body, code):
    d = errors(spec(body + "\nsuppress mlp[0]\nsuppress res2[0]\n", HEADER2))
    assert [x.code for x in d] == [code]


def test_mlp_out_sae_can_be_ablated_everywhere(spec):
    iv = one(spec, "ablate mlp[1] everywhere\n", HEADER2.replace("sae res2", "#"))
    assert iv.everywhere


def test_when_sets_condition(spec):
    p = load_program(spec('when res2["greeting"] > 0.5 {\n  steer res2["formal tone"] by 3\n'
                          '  suppress res2[0] on prompt\n}\n'))
    cond = Condition(FeatureId("res2", 6, "greeting"), RES, 0.5)
    assert [iv.condition for iv in p.interventions] == [cond, cond]
    assert p.interventions[1].positions == "prompt"
    assert p.interventions[0].origin == 'when res2["greeting"] > 0.5 { steer res2["formal tone"] by 3 }'


@pytest.mark.parametrize("body", [
    'when mlp[1] > 0.1 { steer res2[7] by 3 }',
    'when res2[6] > 0.1 { ablate res2[7] everywhere }',
    'when res2[6] > 0.1 { steer res2[7] by 1 at layers 0..1 }',
])
def test_condition_must_share_the_hook(spec, body):
    d = errors(spec(body + "\nsuppress mlp[0]\n", HEADER2))
    assert [x.code for x in d] == ["E217"]
    assert "hook" in (d[0].hint or "") + d[0].message


def test_nested_when(spec):
    d = errors(spec('when res2[6] > 0.1 {\n when res2[7] > 0.2 { suppress res2[1] }\n}\n'))
    assert [x.code for x in d] == ["E221"]


def test_conflicting_sets_point_at_both(spec):
    d = errors(spec('suppress res2["email"]\nclamp res2[0] to 3\n'))
    assert [x.code for x in d] == ["E218"]
    assert d[0].span.line == 5 and ":4:1" in d[0].hint and "no precedence" in d[0].hint


def test_set_and_scale_conflict_via_a_set(spec):
    d = errors(spec('suppress features tagged "entity:person"\nscale res2[13] by 2\n'))
    assert [x.code for x in d] == ["E218"]


@pytest.mark.parametrize("body", [
    'suppress res2[0] on prompt\nclamp res2[0] to 3 on generated\n',
    'suppress res2[0]\nwhen res2[6] > 0.5 { clamp res2[0] to 3 }\n',
    'steer res2[0] by 1\nsteer res2[0] by 2\n',
])
def test_non_conflicts(spec, body):
    assert codes(spec(body)) == []


def test_ablate_and_steer_warns(spec):
    assert codes(spec('ablate res2[0] everywhere\nsteer res2[0] by 2\n')) == ["W203"]


def test_all_errors_are_collected(spec):
    d = errors(spec('suppress res2[99]\nsuppress res2["nope"]\nscale res2[1] by 500\n'))
    assert [x.code for x in d] == ["E202", "E203", "W202"]
