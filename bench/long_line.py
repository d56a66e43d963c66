"""Time to diagnose one long line of junk (SECURITY.md, "200 KB lines").

    .venv/bin/python bench/long_line.py 200000

The line is `suppress res2[1] ( ( ( ...`: every `(` is a character that starts no token.
Before the fix each one cost a trial parse per terminal (~2 ms): 217 s for 200 KB, and the
whole line was echoed. Prints the wall time and the length of the rendered report.
"""

import sys
import time

from steerc.diagnostics import DiagnosticError, render_all
from steerc.grammar.parser import parse

n = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
text = "suppress res2[1] " + "( " * (n // 2)
t = time.perf_counter()
try:
    parse(text, "x.steer")
    out = ""
except DiagnosticError as e:
    out = render_all(e.diagnostics, {"x.steer": text})
print(f"{len(text)} characters: {time.perf_counter() - t:.2f} s, report {len(out)} characters")
