"""Parser benchmark: a generated R-rule spec, text -> AST, against plain Lark in the same run.

    .venv/bin/python bench/parse_bench.py --rules 10000 --repeat 3

Timed (best of --repeat):
- `steerc.grammar.parse`: lexing, LALR parse with error recovery, Lark tree with positions,
  and the frozen AST with spans (what every command pays).
- the obvious alternative: `Lark.parse` of the same text with the same grammar (LALR,
  contextual lexer, propagate_positions) -- a bare parse tree, no AST, first error only.
- `format_spec` of the parsed AST, and a 10-error file through the recovering path.
Wall and CPU time are both printed, with the machine's load: on a shared box wall time
moves a lot, CPU time less.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lark import Lark  # noqa: E402

from steerc.diagnostics import DiagnosticError  # noqa: E402
from steerc.grammar import format_spec, parse  # noqa: E402

FORMS = (
    'suppress res2[{i}] at layers 1..3 on prompt',
    'steer res2["label {i}"] by -1.5e-3',
    'clamp res2[{i}] to 5x max  # strong',
    'scale features tagged "t{i}" in res2 limit 4 by 0.5',
    'ablate res2[search "q{i}"] everywhere',
    'when res2[{i}] > 0.5 {{ amplify res2[{i}] by 2 }}',
)


def make_spec(rules: int) -> str:
    head = ['model "models/demo"', 'sae res2 = "saes/demo/blocks.2.hook_resid_post"', 'catalogue "c.json"']
    return "\n".join(head + [FORMS[i % len(FORMS)].format(i=i) for i in range(rules)]) + "\n"


def best(fn, repeat: int) -> tuple[float, float]:
    """Best wall-clock and best CPU time (process_time: less disturbed by other load)."""
    wall, cpu = [], []
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return min(wall), min(cpu)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rules", type=int, default=10000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    text = make_spec(args.rules)
    plain = Lark.open(str(ROOT / "steerc/grammar/steer.lark"), parser="lalr", propagate_positions=True)
    spec = parse(text)
    bad = "\n".join(["supress r[1]", "steer r[1] 4"] * 5 + ["suppress r[1]"] * (args.rules - 10)) + "\n"

    def parse_bad():
        try:
            parse(bad)
        except DiagnosticError:
            pass

    rows = [
        ("steerc parse (text -> AST + spans)", best(lambda: parse(text), args.repeat)),
        ("plain Lark.parse (tree only)", best(lambda: plain.parse(text), args.repeat)),
        ("format_spec", best(lambda: format_spec(spec), args.repeat)),
        (f"steerc parse, 10 errors in {args.rules} lines", best(parse_bad, args.repeat)),
    ]
    print(f"{args.rules} rules, {len(text) / 1e6:.2f} MB, {len(spec.statements)} statements; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"  {'':45s} {'wall':>8s}    {'cpu':>8s}")
    for name, (wall, cpu) in rows:
        print(f"  {name:45s} {wall * 1000:8.0f} ms {cpu * 1000:8.0f} ms")


if __name__ == "__main__":
    main()
