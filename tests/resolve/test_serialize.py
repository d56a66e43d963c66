"""Program <-> dict round trips (examples and hypothesis)."""

import json

from hypothesis import given, settings, strategies as st

from steerc.compiler.describe import describe_program, summary
from steerc.compiler.ir import (Condition, ExpectCheck, FeatureId, Intervention, JsonConstraint, Op,
                                Program, SaeBinding)
from steerc.compiler.load import load_program
from steerc.compiler.serialize import program_from_dict, program_to_dict
from steerc.diagnostics import Span

from conftest import FIX, HEADER2


def test_round_trip_of_a_resolved_program(spec):
    p = load_program(spec('suppress res2["email"]\nablate res2[3] everywhere\n'
                          'when res2[6] > 0.5 { steer res2[7] by 3 on generated }\n'
                          'suppress mlp[0]\n'
                          f'enforce json schema "{FIX / "schemas/ticket.json"}"\nexpect "a" is json\n',
                          HEADER2))
    d = program_to_dict(p)
    assert program_from_dict(json.loads(json.dumps(d))) == p
    text = describe_program(p, features=True)
    assert len([ln for ln in text.splitlines() if "#" in ln]) == len(p.interventions)
    assert 'when res2[6] "greeting" > 0.5 at blocks.1.hook_resid_post' in text
    assert summary(p).startswith(f"{len(p.interventions)} interventions on 2 SAEs")


names = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=8)
floats = st.floats(allow_nan=False, width=64)
spans = st.none() | st.builds(Span, names, st.integers(0, 10**6), st.integers(0, 10**4),
                              st.integers(1, 100))
feature_ids = st.builds(FeatureId, names, st.integers(0, 2**40), st.none() | names)
interventions = st.builds(
    Intervention, st.sampled_from(list(Op)), feature_ids, floats,
    st.lists(names, max_size=3).map(tuple), everywhere=st.booleans(),
    positions=st.sampled_from(["all", "prompt", "generated"]),
    condition=st.none() | st.builds(Condition, feature_ids, names, floats),
    span=spans, origin=names)
programs = st.builds(
    Program, names, names,
    st.lists(st.builds(SaeBinding, names, names, names, st.integers(1, 99), st.integers(1, 99),
                       names, names), max_size=2).map(tuple),
    st.none() | names, st.lists(interventions, max_size=4).map(tuple),
    json=st.none() | st.builds(JsonConstraint, st.none() | names, st.none() | names, spans),
    expects=st.lists(st.builds(ExpectCheck, names, names, st.none() | names, spans), max_size=2).map(tuple),
    files=st.lists(names, max_size=3).map(tuple))


@settings(max_examples=60, deadline=None)
@given(programs)
def test_round_trip_property(p):
    assert program_from_dict(json.loads(json.dumps(program_to_dict(p)))) == p


def test_infinities_survive():
    iv = Intervention(Op.ADD, FeatureId("a", 1), float("inf"), ())
    p = Program("s", "m", (), None, (iv,))
    d = json.loads(json.dumps(program_to_dict(p), allow_nan=False))
    assert program_from_dict(d) == p


def test_resolution_is_deterministic(spec):
    path = spec('suppress features tagged "entity:person"\nenforce json format\n'
                'when res2[6] > 0.5 { steer res2[7] by 3 }\n')
    a, b = load_program(path), load_program(path)
    assert a == b
    assert json.dumps(program_to_dict(a), sort_keys=True) == json.dumps(program_to_dict(b), sort_keys=True)
