"""Parse the docs' tables of diagnostic codes into steerc/report/diagnostic_codes.json.

The docs' `| code | meaning | fix |` tables (docs/language.md first, then the other pages)
are the only hand-written list of codes. `python -m steerc.report.codes_docs` parses them
into the JSON (shipped with the package, since an installed steerc has no docs/); `--check`
exits 1 when that file is out of date, which a test also checks. A code listed on several
pages keeps its first row (docs/language.md is the full table).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from steerc.report.codes import CODES_JSON

FIRST_PAGE = "language.md"  # the full table; other pages add their own rows after it
_CODE = re.compile(r"[EW][0-9]{3}")
_RANGE = re.compile(r"([EW])([0-9]{3})\s*-\s*([EW])?([0-9]{3})")


def split_row(line: str) -> list[str]:
    """The cells of a Markdown table row; a `|` inside a code span or escaped as `\\|` is text."""
    cells, cur, in_code = [], [], False
    body = line.strip()
    body = body[1:] if body.startswith("|") else body
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body) and body[i + 1] == "|":
            cur.append("|")
            i += 2
            continue
        if ch == "`":
            in_code = not in_code
        if ch == "|" and not in_code:
            cells.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
        i += 1
    if "".join(cur).strip():
        cells.append("".join(cur).strip())
    return cells


def codes_in_cell(cell: str) -> list[str]:
    """`E201` -> [E201]; `E120-E124` -> E120..E124; `E494 / E495` -> both; else []."""
    text = cell.replace("`", "").strip()
    if not re.fullmatch(r"[EW][0-9]{3}(\s*(-|/|,)\s*[EW]?[0-9]{3})*", text):
        return []
    out: list[str] = []
    for m in _RANGE.finditer(text):
        out += [f"{m.group(1)}{n:03d}" for n in range(int(m.group(2)), int(m.group(4)) + 1)]
    out += _CODE.findall(_RANGE.sub("", text))
    return sorted(set(out))


def slug(heading: str) -> str:
    """GitHub's anchor for a Markdown heading (lower case, punctuation dropped, spaces to -)."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def parse_page(text: str, page: str) -> dict[str, dict]:
    """{code: row} for every row of every `| code | ... |` table in one Markdown page."""
    rows: dict[str, dict] = {}
    heading, anchor, seen_slugs = "", "", {}
    columns: list[str] | None = None
    in_fence = False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            in_fence = not in_fence
            continue
        if in_fence:
            continue
        m = re.match(r"#{1,6}\s+(.*)", line)
        if m:
            heading = m.group(1).strip()
            base = slug(heading)
            n = seen_slugs.get(base, 0)
            seen_slugs[base] = n + 1
            anchor = base if n == 0 else f"{base}-{n}"
            columns = None
            continue
        if not line.lstrip().startswith("|"):
            columns = None
            continue
        cells = split_row(line)
        if columns is None:
            columns = [c.lower() for c in cells] if cells and cells[0].lower() == "code" else []
            continue
        if not columns or len(cells) < 2 or set("".join(cells)) <= set("-: "):
            continue
        for code in codes_in_cell(cells[0]):
            if code in rows:
                continue
            row = {"summary": cells[1], "page": f"docs/{page}", "section": heading, "anchor": anchor}
            for name, cell in zip(columns[2:], cells[2:]):
                key = "fix" if "fix" in name else "example" if "example" in name else None
                if key and cell:
                    row[key] = cell
            rows[code] = row
    return rows


def parse_docs(docs: Path) -> dict[str, dict]:
    """Every documented code: docs/language.md first, then the other pages by name."""
    pages = sorted(docs.glob("*.md"), key=lambda p: (p.name != FIRST_PAGE, p.name))
    table: dict[str, dict] = {}
    for p in pages:
        for code, row in parse_page(p.read_text(encoding="utf-8"), p.name).items():
            table.setdefault(code, row)
    return dict(sorted(table.items()))


def render_json(table: dict[str, dict]) -> str:
    """The shipped file's exact text."""
    return json.dumps(table, indent=1, ensure_ascii=False, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    """`python -m steerc.report.codes_docs [--check] [--docs DIR]`: regenerate (or check) the JSON."""
    ap = argparse.ArgumentParser(prog="python -m steerc.report.codes_docs", description=__doc__.split("\n")[0])
    ap.add_argument("--docs", default=str(Path(__file__).resolve().parents[2] / "docs"))
    ap.add_argument("--check", action="store_true", help="exit 1 if the shipped JSON is out of date")
    args = ap.parse_args(argv)
    want = render_json(parse_docs(Path(args.docs)))
    target = Path(__file__).with_name(CODES_JSON)
    have = target.read_text(encoding="utf-8") if target.exists() else ""
    if args.check:
        if have != want:
            print(f"{target} is out of date: run `python -m steerc.report.codes_docs`", file=sys.stderr)
            return 1
        return 0
    if have != want:
        target.write_text(want, encoding="utf-8")
        print(f"wrote {target}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
