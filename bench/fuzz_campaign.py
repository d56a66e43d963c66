"""Fuzz campaign: hostile spec files through the parser and the checker (parse + resolve).

    .venv/bin/python bench/fuzz_campaign.py --n 100000 --seed 1 --json /tmp/fuzz.json

Every input is written as bytes to `a.steer` in a scratch folder whose neighbours are the
committed test fixtures (model `m`, SAEs `s` and `t`, catalogue `c.json`, schemas `sc/`,
and `base.steer` / `loop.steer` for `use`), then run through `steerc.compiler.load.load`,
the same call `steerc check` makes. The only allowed outcomes are a Program or a
`DiagnosticError` whose diagnostics render; anything else is a crash, and an input that
runs past `--time-limit` seconds is a hang. Crashing and hanging inputs are saved under
`--crash-dir` so they can be replayed (`--replay FILE`).

Generators (one chosen per input, weights in GENERATORS):
- bytes: random bytes, sometimes from a steer-ish alphabet, sometimes pure noise;
- mutate: a valid spec with byte edits (flip, insert interesting tokens, cut, duplicate
  a chunk, CRLF, NUL, invalid UTF-8, an encoded lone surrogate);
- grammar: statements built from the language's forms with hostile values (1e400,
  9999999999999999999999, -0, nan, deep `when` nesting, long lines, odd unicode).
The resolver's file readers are memoized per path (SAE configs, catalogue), so the campaign
spends its time on the spec logic; those readers have their own hostile tests.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import random
import signal
import sys
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
FIX = ROOT / "tests" / "fixtures"

from steerc.compiler.load import DiskEnvironment, load  # noqa: E402
from steerc.diagnostics import DiagnosticError, render_all  # noqa: E402

VALID = '''model "m"
sae res2 = "s"
sae mlp = "t"
catalogue "c.json"
use "base.steer"
suppress res2["email"] on prompt
steer res2["json key"] by 4 at layers 1..2
clamp res2["python code"] to 5x max  # strong
scale res2[7] by 0.5
ablate res2[8] everywhere
suppress features tagged "format:markdown" in res2 limit 3
when res2["greeting"] > 0.5 { steer res2[2] by -1.5e-3 }
expect "Describe your inbox" not mentions "email"
expect "List" is json'''

INTERESTING = [b"\x00", b"\xff", b"\xfe\xff", b"\xed\xa0\x80", b"\xc0\xaf", b"\r\n", b"\r", b"\t",
               b"\xef\xbb\xbf", b"{", b"}", b"[", b"]", b'"', b"\\", b"#", b";", b"\n",
               b"1e400", b"-1e400", b"9999999999999999999999", b"nan", b"inf", b"-0", b"0x10",
               b"1_000", b"..", b"1..", b"..3", b"when res2[1] > 0 {", b"use \"a.steer\"",
               b"use \"loop.steer\"", b"use \"base.steer\"", b"model \"m\"", b"sae x = \"s\"",
               b"catalogue \"nope.json\"", b"search \"\"", b"limit 0", b"limit -1",
               b"everywhere", b"at layers 99..1", b"\xe2\x80\xae", b"\xf0\x9f\x98\x80",
               "é".encode(), b"res2[-1]", b"res2[64]", b"mlp[31]", b"x" * 3000]

KEYWORDS = ["suppress", "ablate", "steer", "clamp", "scale", "amplify", "when", "enforce", "expect",
            "use", "model", "sae", "catalogue", "features", "tagged", "search", "in", "limit", "by",
            "to", "max", "x", "at", "layers", "layer", "on", "prompt", "generated", "all", "everywhere", "json",
            "format", "matching",
            "schema", "strength", "not", "mentions", "is", "matches"]


def _number(r: random.Random) -> str:
    if r.random() < 0.6:
        return r.choice(["0", "1", "2", "3", "0.5", "-1.5e-3", "4"])
    return r.choice(["0", "1", "-1", "0.5", "-1.5e-3", "1e400", "-1e400", "1e-400", "9999999999999999999999",
                     "-9999999999999999999999", "1" + "0" * r.randint(1, 400), "0.0", "-0", "1e308",
                     "nan", "inf", "2", "64", "3", "18446744073709551616", "1.", ".5", "1e", "+4"])


def _string(r: random.Random) -> str:
    if r.random() < 0.6:
        return r.choice(["email", "json key", "python code", "greeting", "format:json", "code", "hello"])
    return r.choice(["email", "json key", "python code", "greeting", "format:json", "", "x" * r.choice([1, 100, 5000]),
                     "\\\"", "\\n", "\\u0000", "\\ud800", "\\q", "é", "\u202e", "\U0001f600", "code",
                     "\ud800", "\udfff", "a\tb", "m", "s", "c.json", "base.steer", "loop.steer",
                     "sc/ticket.json", "sc/broken.json", "sc/bad.json", "/etc/passwd", "../" * 40])


def _ref(r: random.Random) -> str:
    alias = r.choice(["res2", "mlp", "res2", "nope", "RES2"])
    k = r.random()
    if k < 0.4:
        return f"{alias}[{_number(r)}]"
    if k < 0.7:
        return f'{alias}["{_string(r)}"]'
    if k < 0.85:
        return f'{alias}[search "{_string(r)}"]'
    sel = r.choice(["tagged", "matching"])
    lim = f" limit {_number(r)}" if r.random() < 0.6 else ""
    return f'features {sel} "{_string(r)}" in {alias}{lim}'


def _stmt(r: random.Random, depth: int) -> str:
    k = r.randrange(12)
    where = r.choice(["", "", "", " at layers 1..2", " everywhere", f" at layers {_number(r)}..{_number(r)}",
                      " on prompt", " at layer 1", " on generated", " at layers 0..2 on all"])
    if k == 0:
        return f"suppress {_ref(r)}{where}"
    if k == 1:
        return f"ablate {_ref(r)}{where}"
    if k == 2:
        return f"steer {_ref(r)} by {_number(r)}{where}"
    if k == 3:
        return f"clamp {_ref(r)} to {_number(r)}{r.choice(['', 'x max', ' x max'])}{where}"
    if k == 4:
        return f"scale {_ref(r)} by {_number(r)}{where}"
    if k == 5 and depth < 70:
        n = r.randint(0, 3)
        body = "\n".join(_stmt(r, depth + 1) for _ in range(n))
        return f"when {_ref(r)} {r.choice(['>', '<', '>=', '=='])} {_number(r)} {{\n{body}\n}}"
    if k == 6:
        d = r.choice([1, 5, 63, 64, 65, 100, 1000]) if r.random() < 0.3 else 2
        return "when res2[1] > 0 {\n" * d + "suppress res2[2]\n" + "}\n" * r.choice([d, d, d - 1, 0])
    if k == 7:
        return r.choice(["enforce json format", f'enforce json schema "{_string(r)}"',
                         f'enforce json schema "sc/ticket.json" strength {_number(r)}'])
    if k == 8:
        return f'expect "{_string(r)}" {r.choice(["not mentions", "mentions", "is json", "matches schema"])}' \
               f' "{_string(r)}"'
    if k == 9:
        return r.choice([f'use "{_string(r)}"', 'model "m"', f'sae {r.choice(["res2", "z", "mlp"])} = '
                         f'"{_string(r)}"', f'catalogue "{_string(r)}"'])
    if k == 10:
        return " ".join(r.choice(KEYWORDS) for _ in range(r.randint(1, 8)))
    return f"# {_string(r)}"


def gen_grammar(r: random.Random) -> bytes:
    lines = ['model "m"', 'sae res2 = "s"', 'sae mlp = "t"', 'catalogue "c.json"'] if r.random() < 0.8 else []
    lines += [_stmt(r, 0) for _ in range(r.randint(1, 5))]
    sep = r.choice(["\n", "\n", "\r\n", ";", "\n\n", "\r"])
    return sep.join(lines).encode("utf-8", "surrogatepass")


def gen_bytes(r: random.Random) -> bytes:
    n = r.choice([0, 1, 8, 64, 256, 1024])
    n = r.randint(0, n)
    if r.random() < 0.5:
        return bytes(r.getrandbits(8) for _ in range(n))
    alpha = b' \n;{}[]"#.=><-+x\\0123456789eE_abcmrs'
    return bytes(r.choice(alpha) for _ in range(n))


def gen_mutate(r: random.Random) -> bytes:
    data = bytearray(VALID.encode())
    for _ in range(r.randint(1, 6)):
        pos = r.randint(0, len(data))
        k = r.randrange(6)
        if k == 0 and data:
            data[min(pos, len(data) - 1)] ^= 1 << r.randrange(8)
        elif k == 1:
            data[pos:pos] = r.choice(INTERESTING)
        elif k == 2:
            del data[pos:pos + r.randint(1, 40)]
        elif k == 3:
            a = r.randint(0, len(data))
            data[pos:pos] = data[a:a + r.randint(1, 80)]
        elif k == 4:
            data = bytearray(bytes(data).replace(b"\n", b"\r\n"))
        else:
            data[pos:pos] = _stmt(r, 0).encode("utf-8", "surrogatepass") + b"\n"
    return bytes(data)


GENERATORS = (("bytes", gen_bytes, 0.30), ("mutate", gen_mutate, 0.40), ("grammar", gen_grammar, 0.30))


class MemoEnvironment(DiskEnvironment):
    """DiskEnvironment with per-path memoized readers (the fixtures never change here)."""

    @functools.lru_cache(maxsize=None)
    def sae_info(self, path):
        return super().sae_info(path)

    @functools.lru_cache(maxsize=None)
    def open_catalogue(self, path):
        return super().open_catalogue(path)

    @functools.lru_cache(maxsize=None)
    def model_layers(self, path):
        return super().model_layers(path)


class Hang(Exception):
    pass


def _alarm(signum, frame):
    raise Hang()


def scratch_dir() -> Path:
    """A folder holding the fixtures under short names, and base/loop specs for `use`."""
    d = Path(tempfile.mkdtemp(prefix="steerc-fuzz-"))
    for name, target in (("m", "model"), ("s", "sae_res"), ("t", "sae_mlp"), ("c.json", "catalogue.json"),
                         ("sc", "schemas")):
        os.symlink(FIX / target, d / name)
    (d / "base.steer").write_text('scale res2[5] by 2\n', encoding="utf-8")
    (d / "loop.steer").write_text('use "a.steer"\n', encoding="utf-8")
    return d


def run_one(path: Path, data: bytes, env, limit: float) -> tuple[str, str | None, float]:
    """(outcome, crash signature, seconds): outcome is ok, diag, crash or hang."""
    path.write_bytes(data)
    signal.setitimer(signal.ITIMER_REAL, limit)
    t = time.perf_counter()
    try:
        load(path, env=env)
        outcome, sig = "ok", None
    except DiagnosticError as e:
        outcome, sig = "diag", None
        bad = [d for d in e.diagnostics if not (isinstance(d.code, str) and len(d.code) == 4
                                                 and d.code[0] in "EW" and d.code[1:].isdigit()
                                                 and isinstance(d.message, str) and d.message)]
        if not e.diagnostics or bad:
            outcome, sig = "crash", f"malformed diagnostic {bad[:1]}"
        else:
            try:
                render_all(e.diagnostics, {str(path): data.decode("utf-8", "replace")})
            except Exception as re:  # rendering is part of the user-facing path
                outcome, sig = "crash", f"render: {type(re).__name__}: {re}"[:300]
    except Hang:
        outcome, sig = "hang", "time limit"
    except RecursionError:
        outcome, sig = "crash", "RecursionError"
    except Exception as e:
        tb = traceback.extract_tb(e.__traceback__)[-1]
        outcome = "crash"
        sig = f"{type(e).__name__} at {Path(tb.filename).name}:{tb.lineno}: {str(e)[:120]}"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    dt = time.perf_counter() - t
    if outcome != "hang" and dt > limit:
        outcome, sig = "hang", f"{dt:.1f}s (in C code, past the alarm)"
    return outcome, sig, dt


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=100_000, help="inputs to try")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--time-limit", type=float, default=5.0, help="seconds per input before it is a hang")
    ap.add_argument("--crash-dir", default="fuzz-crashes", help="where failing inputs are saved")
    ap.add_argument("--json", help="write the summary here")
    ap.add_argument("--replay", help="run one saved input and print the outcome")
    args = ap.parse_args(argv)
    os.environ.setdefault("STEERC_CACHE_DIR", tempfile.mkdtemp(prefix="steerc-fuzz-cache-"))
    signal.signal(signal.SIGALRM, _alarm)
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 1000))
    work = scratch_dir()
    path = work / "a.steer"
    env = MemoEnvironment()
    run_one(path, VALID.encode(), env, 600.0)  # warm-up: imports torch, reads the fixtures once
    if args.replay:
        print(run_one(path, Path(args.replay).read_bytes(), env, args.time_limit))
        return 0
    r = random.Random(args.seed)
    names = [g[0] for g in GENERATORS]
    weights = [g[2] for g in GENERATORS]
    fns = {g[0]: g[1] for g in GENERATORS}
    outcomes: Counter = Counter()
    per_gen: dict[str, Counter] = {n: Counter() for n in names}
    gen_cpu: Counter = Counter()
    crashes: dict[str, dict] = {}
    times: list[float] = []
    slowest = (0.0, "")
    t0, c0 = time.perf_counter(), time.process_time()
    crash_dir = Path(args.crash_dir)
    for i in range(args.n):
        gen = r.choices(names, weights)[0]
        data = fns[gen](r)
        c = time.process_time()
        outcome, sig, dt = run_one(path, data, env, args.time_limit)
        gen_cpu[gen] += time.process_time() - c
        outcomes[outcome] += 1
        per_gen[gen][outcome] += 1
        times.append(dt)
        if dt > slowest[0]:
            slowest = (dt, f"{gen} #{i} ({len(data)} bytes)")
        if sig is not None:
            entry = crashes.setdefault(sig, {"outcome": outcome, "count": 0, "first": i})
            entry["count"] += 1
            if entry["count"] == 1:
                crash_dir.mkdir(parents=True, exist_ok=True)
                entry["file"] = str(crash_dir / f"{outcome}-{i}.steer")
                Path(entry["file"]).write_bytes(data)
                print(f"[{i}] {outcome}: {sig}", file=sys.stderr, flush=True)
        if (i + 1) % 10_000 == 0:
            print(f"{i + 1} inputs, {time.perf_counter() - t0:.0f} s, {dict(outcomes)}", file=sys.stderr,
                  flush=True)
    times.sort()
    summary = {
        "command": "bench/fuzz_campaign.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "inputs": args.n, "seed": args.seed, "time_limit_s": args.time_limit,
        "outcomes": dict(outcomes), "per_generator": {k: dict(v) for k, v in per_gen.items()},
        "cpu_s_per_generator": {k: round(v, 1) for k, v in gen_cpu.items()},
        "distinct_failures": crashes,
        "wall_s": round(time.perf_counter() - t0, 1), "cpu_s": round(time.process_time() - c0, 1),
        "median_ms": round(1000 * times[len(times) // 2], 2) if times else None,
        "p99_ms": round(1000 * times[int(len(times) * 0.99)], 2) if times else None,
        "max_ms": round(1000 * times[-1], 1) if times else None, "slowest": slowest[1],
        "load_avg_end": os.getloadavg()[0],
    }
    text = json.dumps(summary, indent=1)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n", encoding="utf-8")
    return 1 if crashes else 0


if __name__ == "__main__":
    sys.exit(main())
