"""Per-source-rule summaries (`steerc.compiler.rulegroups`, describe): property tests over
random programs: nothing is lost or reordered, one summary per rule, the full list on request."""

from __future__ import annotations

from hypothesis import given, settings, strategies as st

from steerc.compiler.describe import describe_program
from steerc.compiler.ir import FeatureId, Intervention, Op, Program
from steerc.compiler.rulegroups import group_by_rule, op_summary
from steerc.diagnostics import Span

RULES = [(Span("s.steer", n, 1, 5), f"rule {n}") for n in range(1, 5)] + [(None, "")]


@st.composite
def programs(draw):
    ivs = []
    for k in draw(st.lists(st.integers(0, len(RULES) - 1), max_size=40)):
        span, origin = RULES[k]
        op = draw(st.sampled_from(list(Op)))
        ivs.append(Intervention(op, FeatureId("r", draw(st.integers(0, 99))), draw(st.sampled_from([0.0, 2.0])),
                                ("blocks.1.hook_resid_post",), span=span, origin=origin))
    return Program("s.steer", "m", (), None, tuple(ivs))


@settings(max_examples=200, deadline=None)
@given(programs())
def test_groups_keep_every_intervention_in_order(program):
    groups = group_by_rule(program.interventions)
    flat = [iv for g in groups for iv in g.items]
    assert sorted(map(id, flat)) == sorted(map(id, program.interventions))
    for g in groups:  # within a rule, program order
        # by identity: two equal interventions (same feature, value, span) are both kept
        where = {id(iv): i for i, iv in enumerate(program.interventions)}
        pos = [where[id(iv)] for iv in g.items]
        assert pos == sorted(pos)
    keys = {(iv.span, iv.origin or f"{iv.op.value} {iv.feature}") for iv in program.interventions}
    assert len(groups) == len(keys)
    assert all(sum(int(n.rsplit("x", 1)[1]) if " x" in n else 1
                   for n in op_summary(g.items).split(", ")) == len(g) for g in groups)


@settings(max_examples=200, deadline=None)
@given(programs())
def test_describe_is_one_block_per_rule_and_features_lists_all(program):
    groups = group_by_rule(program.interventions)
    short = describe_program(program).splitlines()
    assert len(short) == sum(1 if len(g) == 1 else 2 for g in groups)
    assert len(describe_program(program, features=True).splitlines()) == len(program.interventions)
