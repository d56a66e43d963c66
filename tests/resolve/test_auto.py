"""`by auto` / `to auto` in resolve: t from the lock (or given), the unit per rule, and the
diagnostics for a spec that cannot be calibrated (E280, E281) or is not yet (E282)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings, strategies as st

from steerc.compiler.ir import Op
from steerc.compiler.load import load
from steerc.compiler.resolve.auto import Strength

from conftest import errors

GOALS = 'expect "hello" not mentions "qqqq"\nexpect kl below 0.5\n'


def _values(path, t):
    return [(iv.op, iv.feature.index, iv.value) for iv in load(path, strength=Strength(t, "x")).program.interventions]


@settings(max_examples=30, deadline=None)
@given(st.floats(min_value=-50, max_value=50, allow_nan=False))
def test_each_auto_value_is_t_times_its_unit(tmp_path_factory, t):
    from conftest import HEADER

    p = tmp_path_factory.mktemp("auto") / "s.steer"
    p.write_text(HEADER + 'steer res2["json key"] by auto\nclamp res2["python code"] to auto\n'
                 'scale res2["email"] by auto\nsteer res2["unmeasured feature"] by auto\n'
                 'steer res2["city name"] by 2\n' + GOALS)
    got = _values(p, t)
    # units: max_activation 3.0 and 6.0; scale: 1; no max_activation: 1; a number stays itself
    assert got == [(Op.ADD, 1, t * 3.0), (Op.SET, 3, t * 6.0), (Op.SCALE, 0, t * 1.0),
                   (Op.ADD, 12, t * 1.0), (Op.ADD, 9, 2.0)]


def test_program_records_the_calibrated_t_and_its_rules(spec):
    p = spec('when res2["greeting"] > 1 { steer res2["json key"] by auto }\nsuppress res2["email"]\n' + GOALS)
    prog = load(p, strength=Strength(0.5, "x")).program
    assert prog.calibrated.t == 0.5
    assert prog.calibrated.rules == ('when res2["greeting"] > 1 { steer res2["json key"] by auto }',)
    assert [iv.origin for iv in prog.interventions][0] == prog.calibrated.rules[0]
    assert load(spec("suppress res2[1]\n", name="plain.steer")).program.calibrated is None


def test_no_lock_is_E282_at_each_auto_with_the_calibrate_hint(spec):
    p = spec('steer res2["json key"] by auto\nscale res2[3] by auto on prompt\n' + GOALS)
    ds = errors(p)
    assert [d.code for d in ds] == ["E282", "E282"]
    assert (ds[0].span.line, ds[0].span.col, ds[0].span.length) == (4, 27, 4)
    assert ds[1].span.line == 5
    assert f"steerc calibrate {p}" in ds[0].hint and "does not exist" in ds[0].message


def test_the_lock_value_is_read_from_the_spec_lock(spec):
    p = spec('steer res2["json key"] by auto\n' + GOALS)
    lock = p.with_name(p.name + ".lock")
    lock.write_text(json.dumps({"calibration": {"t": 0.25}}))
    assert load(p).program.interventions[0].value == 0.75
    lock.write_text(json.dumps({"version": 1}))
    [d] = errors(p)
    assert d.code == "E282" and "has no calibration" in d.message
    lock.write_text("{not json")
    [d] = errors(p)
    assert d.code == "E282" and "cannot be read" in d.message


@pytest.mark.parametrize("expects,want", [
    ('expect kl below 0.5\n', ["E280"]),
    ('expect "hello" not mentions "qqqq"\n', ["E281"]),
    ('', ["E280", "E281"]),
    ('expect res2["json key"] up by at least 10%\nexpect kl below 0.5\n', []),
])
def test_a_spec_must_state_a_goal_and_a_kl_budget(spec, expects, want):
    p = spec('amplify res2["json key"] by auto\n' + expects)
    if not want:
        assert load(p, strength=Strength(1.0, "x")).program.calibrated.t == 1.0
        return
    ds = errors(p, strength=Strength(1.0, "x"))
    assert [d.code for d in ds] == want
    assert all(d.span.line == 4 and d.span.col == 29 for d in ds)  # at the `auto`


def test_goals_are_not_asked_of_a_spec_without_auto(spec):
    assert not load(spec('steer res2["json key"] by 2\n')).program.expects
