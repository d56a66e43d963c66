"""AST -> canonical steer text (what `steerc fmt` writes).

`format_spec(parse(t))` re-parses to the same AST (spans aside) and formatting is
idempotent. One statement per line, blocks indented by 2 spaces, single spaces between
words, numbers in shortest round-trip form. Comments are put back by their original line:
a comment on a statement's line stays at its end; a comment on its own line stays before
the statement that followed it (or at the end of its block / file). Single blank lines
between statements are kept; longer runs shrink to one.
"""

from __future__ import annotations

from dataclasses import dataclass

from steerc.compiler import ast

INDENT = "  "


def format_spec(spec: ast.Spec) -> str:
    """Canonical source text for `spec` (ends with a newline unless the spec is empty)."""
    comments = sorted(spec.comments)
    out: list[str] = []
    _Block(comments, out).emit(spec.statements, depth=0, last_line=None, stop=None)
    return "\n".join(out) + "\n" if out else ""


@dataclass
class _Block:
    comments: list[tuple[int, str]]  # sorted, consumed from the front
    out: list[str]

    def take_before(self, line: int | None) -> list[tuple[int, str]]:
        taken = []
        while self.comments and (line is None or self.comments[0][0] < line):
            taken.append(self.comments.pop(0))
        return taken

    def take_on(self, line: int) -> str:
        parts = []
        while self.comments and self.comments[0][0] == line:
            parts.append(self.comments.pop(0)[1])
        return ("  " + " ".join(parts)) if parts else ""

    def put(self, orig_line: int, last_line: int | None, text: str) -> int:
        if last_line is not None and orig_line > last_line + 1:
            self.out.append("")
        self.out.append(text)
        return orig_line

    def emit(self, stmts, depth: int, last_line: int | None, stop: int | None) -> int | None:
        """Write `stmts` (and the comments before `stop`, a block's closing line)."""
        pad = INDENT * depth
        for i, st in enumerate(stmts):
            line = st.span.line
            for c_line, c_text in self.take_before(line):
                last_line = self.put(c_line, last_line, pad + c_text)
            # Statements sharing a line (`a; b`): the comment goes after the last one.
            shares = i + 1 < len(stmts) and stmts[i + 1].span.line == line
            if isinstance(st, ast.When):
                head = pad + format_when_head(st) + " {"
                # A comment on the header line belongs to the last body rule on that line.
                inline_body = bool(st.body) and st.body[0].span.line == line
                last_line = self.put(line, last_line, head + ("" if shares or inline_body else self.take_on(line)))
                end_line = st.end.line if st.end is not None else line
                inner_stop = end_line if end_line > line else None
                self.emit(st.body, depth + 1, line, inner_stop)
                tail = "" if shares else self.take_on(end_line)
                self.out.append(pad + "}" + tail)
                last_line = end_line
            else:
                text = pad + format_statement(st)
                last_line = self.put(line, last_line, text + ("" if shares else self.take_on(line)))
        if stop is not None or depth == 0:
            for c_line, c_text in self.take_before(stop):
                last_line = self.put(c_line, last_line, pad + c_text)
        return last_line


def format_statement(st: ast.Statement) -> str:
    """One statement (not a `when`) on one line."""
    if isinstance(st, ast.ModelDecl):
        return f"model {'hub ' * (st.kind == 'hub')}{quote(st.path.value)}"
    if isinstance(st, ast.SaeDecl):
        head = f"sae {st.alias.value} = "
        if st.kind == "hub":
            return head + f"hub {quote(st.path.value)}" + (f" path {quote(st.sub.value)}" if st.sub else "")
        if st.kind == "saelens":
            return head + f"saelens {quote(st.path.value)} id {quote(st.sub.value)}"
        return head + quote(st.path.value)
    if isinstance(st, ast.CatalogueDecl):
        return f"catalogue {quote(st.path.value)}"
    if isinstance(st, ast.DirectionDecl):
        return format_direction(st)
    if isinstance(st, ast.Use):
        return f"use {quote(st.path.value)}"
    if isinstance(st, ast.EnforceJson):
        head = "enforce json format" if st.schema is None else f"enforce json schema {quote(st.schema.value)}"
        return head + ("" if st.strength is None else f" strength {number(st.strength.value)}")
    if isinstance(st, ast.Expect):
        return f"expect {quote(st.prompt.value)} {format_check(st.kind, st.arg)}"
    if isinstance(st, ast.ExpectRate):
        return (f"expect at least {number(st.percent.value)}% of {quote(st.prompts.value)} "
                + format_check(st.kind, st.arg))
    if isinstance(st, ast.ExpectKl):
        on = "" if st.texts is None else f" on {quote(st.texts.value)}"
        return f"expect kl{on} below {number(st.bound.value)}"
    if isinstance(st, ast.ExpectChange):
        on = "" if st.texts is None else f" on {quote(st.texts.value)}"
        return (f"expect {format_target(st.target)} {st.direction} by at least "
                f"{number(st.percent.value)}%{on}")
    if isinstance(st, ast.Baseline):
        return f"baseline prompt {quote(st.prompt.value)}"
    if isinstance(st, ast.When):
        raise ValueError("format `when` with format_spec")
    return format_rule(st)


def format_direction(d: ast.DirectionDecl) -> str:
    """`direction NAME = file "f" [key "k"] | mean "a" - mean "b"` and its layers."""
    src = d.source
    if isinstance(src, ast.DirFile):
        body = f"file {quote(src.path.value)}" + (f" key {quote(src.key.value)}" if src.key else "")
    else:
        last = "last " if src.last is not None else ""
        body = f"mean {last}{quote(src.a.value)} - mean {last}{quote(src.b.value)}"
    where = "" if d.layers is None else " " + format_scope(ast.Scope(layers=d.layers))
    return f"direction {d.name.value} = {body}{where}"


def format_check(kind: str, arg: ast.Str | None) -> str:
    """The tail of an expect: `is json`, `matches schema "f"`, `[not] mentions "t"`."""
    tail = {"is_json": "is json", "matches_schema": "matches schema", "mentions": "mentions",
            "not_mentions": "not mentions"}[kind]
    return tail + ("" if arg is None else " " + quote(arg.value))


def format_rule(r: ast.Rule) -> str:
    target = format_target(r.target)
    if isinstance(r, ast.Suppress):
        body = f"suppress {target}"
    elif isinstance(r, ast.Ablate):
        body = f"ablate {target}"
    elif isinstance(r, ast.Steer):
        body = f"{r.verb} {target} by {amount(r.amount)}"
    elif isinstance(r, ast.Clamp):
        unit = "x max" if r.unit == "max" else ""
        body = f"clamp {target} to {amount(r.value)}{unit}"
    elif isinstance(r, ast.Scale):
        body = f"scale {target} by {amount(r.factor)}"
    else:
        raise TypeError(f"not a rule: {type(r).__name__}")
    scope = format_scope(r.scope)
    return f"{body} {scope}" if scope else body


def format_when_head(w: ast.When) -> str:
    return f"when {format_target(w.feature)} > {number(w.threshold.value)}"


def format_scope(s: ast.Scope) -> str:
    parts = []
    if s.everywhere:
        parts.append("everywhere")
    if s.layers is not None:
        a, b = s.layers
        parts.append(f"at layer {a}" if a == b else f"at layers {a}..{b}")
    if s.positions != "all":
        parts.append(f"on {s.positions}")
    return " ".join(parts)


def format_target(t: ast.Target) -> str:
    if isinstance(t, ast.DirectionRef):
        return t.name.value
    if isinstance(t, ast.IndexRef):
        return f"{t.sae.value}[{t.index}]"
    if isinstance(t, ast.LabelRef):
        return f"{t.sae.value}[{quote(t.label.value)}]"
    if isinstance(t, ast.SearchRef):
        return f"{t.sae.value}[search {quote(t.query.value)}]"
    word = "tagged" if isinstance(t, ast.TagSet) else "matching"
    text = t.tag.value if isinstance(t, ast.TagSet) else t.query.value
    out = f"features {word} {quote(text)}"
    if t.sae is not None:
        out += f" in {t.sae.value}"
    if t.limit is not None:
        out += f" limit {t.limit}"
    return out


def amount(a: ast.Amount) -> str:
    """A rule's strength: its number, or `auto`."""
    return "auto" if isinstance(a, ast.Auto) else number(a.value)


def number(v: float) -> str:
    """Shortest text that reads back as exactly `v`: 4, -0.5, 1e-05, 1e+300."""
    if v == int(v) and abs(v) < 1e16:
        return str(int(v)) if v or str(v)[0] != "-" else "-0"
    return repr(v)


def quote(s: str) -> str:
    """A steer string literal for `s` (escapes quote, backslash and control characters)."""
    out = []
    for ch in s:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F or 0xD800 <= ord(ch) <= 0xDFFF:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'
