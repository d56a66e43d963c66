"""The facts about each op live on `Op`; these pin them to the semantics table in ir.py."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from steerc.compiler.ir import Op


@pytest.mark.parametrize("op,value,want", [
    (Op.PROJECT_OUT, 0.0, "down"), (Op.SET, 0.0, "down"), (Op.SET, 3.0, "toward"),
    (Op.SCALE, 0.5, "down"), (Op.SCALE, 2.0, "up"), (Op.SCALE, 1.0, None),
    (Op.ADD, -1.0, "down"), (Op.ADD, 4.0, "up"), (Op.ADD, 0.0, None),
])
def test_intent(op, value, want):
    assert op.intent(value) == want


@given(st.sampled_from(list(Op)), st.floats(allow_nan=False))
def test_intent_of_a_noop_is_none_and_of_an_edit_is_a_direction(op, value):
    noop = (op is Op.SCALE and value == 1) or (op is Op.ADD and value == 0)
    assert (op.intent(value) is None) == noop


def test_what_each_op_reads():
    # set/scale compute a_i(x) (a hook at the SAE's point); project_out reads x itself; add
    # reads nothing, so it alone can fold into a bias that a later hook then sees.
    assert {op for op in Op if op.reads_activation} == {Op.SET, Op.SCALE}
    assert {op for op in Op if op.reads_input} == {Op.SET, Op.SCALE, Op.PROJECT_OUT}
    assert all(op.reads_input for op in Op if op.reads_activation)


def test_value_words():
    assert [op.value_word for op in Op] == ["by", None, "=", "by"]
