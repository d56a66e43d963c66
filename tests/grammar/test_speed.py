"""Parse speed relative to plain Lark on the same text (CPU time, so other load on the
machine matters less than for wall time): recovery support and the AST must stay cheap."""

import time
from pathlib import Path

from lark import Lark

from steerc.grammar import parse

GRAMMAR = Path(__file__).resolve().parents[2] / "steerc" / "grammar" / "steer.lark"


def cpu(fn, repeat=3):
    best = float("inf")
    for _ in range(repeat):
        t = time.process_time()
        fn()
        best = min(best, time.process_time() - t)
    return best


def test_parse_costs_at_most_twice_a_bare_lark_parse():
    forms = ['suppress r[{i}] at layers 1..3 on prompt', 'clamp r["l{i}"] to 5x max  # c',
             'when r[{i}] > 0.5 {{ steer r[{i}] by -2 }}', 'scale features tagged "t" in r limit 3 by .5']
    text = "\n".join(forms[i % 4].format(i=i) for i in range(2000))
    plain = Lark.open(str(GRAMMAR), parser="lalr", propagate_positions=True)
    assert len(parse(text).statements) == 2000
    ours, bare = cpu(lambda: parse(text)), cpu(lambda: plain.parse(text))
    assert ours < 2 * bare, (ours, bare)
