"""Parse tree -> `steerc.compiler.ast` nodes, every node with its `Span`.

This is the only module that reads Lark trees. It also checks what the grammar cannot
say: string escapes, integer-only numbers (indices, layers, limits), finite numbers,
layer ranges, non-empty and not too deep `when` bodies. Problems go to a `Collector` (E003,
E013, E015, E016, E017, E028, E032, E033; see docs/language.md).
"""

from __future__ import annotations

import math
import re

from lark import Token, Tree

from steerc.compiler import ast
from steerc.diagnostics import Collector, Span

MAX_WHEN_DEPTH = 64  # deeper nesting is a mistake, and would strain every recursive pass
_MAX_INT_DIGITS = 18  # well past any SAE width or layer count; avoids int() on 1 MB of digits
_ESCAPE = re.compile(r"\\(u[0-9A-Fa-f]{4}|.)", re.S)
_SIMPLE_ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "t": "\t", "r": "\r"}
_POSITIONS = {"on_prompt": "prompt", "on_generated": "generated", "on_all": "all"}
_RULES = frozenset({"suppress", "ablate", "steer", "amplify", "clamp_abs", "clamp_max", "scale"})


class Builder:
    """Builds one file's AST; `diags` collects the checks that fail."""

    def __init__(self, text: str, file: str, diags: Collector, report_empty_when: bool = True):
        self.text = text
        self.file = file
        self.diags = diags
        self.report_empty_when = report_empty_when

    # --- spans ---------------------------------------------------------------------

    def tok_span(self, tok: Token) -> Span:
        return Span(self.file, tok.line, tok.column, max(1, len(tok.value)))

    def tree_span(self, tree: Tree) -> Span:
        m = tree.meta
        if m.end_line == m.line:
            length = m.end_pos - m.start_pos
        else:  # up to the end of the first line
            eol = self.text.find("\n", m.start_pos)
            length = (len(self.text) if eol < 0 else eol) - m.start_pos
        return Span(self.file, m.line, m.column, max(1, length))

    # --- literals ------------------------------------------------------------------

    def string(self, tok: Token) -> ast.Str:
        raw = tok.value[1:-1]

        def unescape(m: re.Match) -> str:
            esc = m.group(1)
            if esc in _SIMPLE_ESCAPES:
                return _SIMPLE_ESCAPES[esc]
            if esc[0] == "u" and len(esc) == 5:
                cp = int(esc[1:], 16)
                if 0xD800 <= cp <= 0xDFFF:
                    self._bad_escape(tok, m, f"'\\{esc}' is a lone surrogate, not a character")
                    return ""
                return chr(cp)
            self._bad_escape(tok, m, f"unknown escape sequence '\\{esc}'")
            return ""

        return ast.Str(_ESCAPE.sub(unescape, raw), self.tok_span(tok))

    def _bad_escape(self, tok: Token, m: re.Match, message: str) -> None:
        span = Span(self.file, tok.line, tok.column + 1 + m.start(), len(m.group(0)))
        self.diags.error("E003", message, span,
                         'valid escapes: \\" \\\\ \\n \\t \\r \\uXXXX (write \\\\ for a backslash)')

    def number(self, tok: Token, suffixed: bool = False) -> ast.Num:
        text = tok.value[:-1] if suffixed else tok.value  # `5x`, `95%`
        value = float(text)
        if not math.isfinite(value):
            self.diags.error("E016", f"number {_short(text)} is too large", self.tok_span(tok),
                             "numbers must be finite doubles (|x| < 1.8e308)")
            value = 0.0
        return ast.Num(value, self.tok_span(tok))

    def integer(self, tok: Token, what: str) -> int:
        if not tok.value.isdigit():
            self.diags.error("E015", f"{what} must be a non-negative integer, found {_short(tok.value)}",
                             self.tok_span(tok), "write digits only, e.g. 12")
            return 0
        if len(tok.value) > _MAX_INT_DIGITS:
            self.diags.error("E016", f"{what} {_short(tok.value)} is too large", self.tok_span(tok),
                             f"integers here have at most {_MAX_INT_DIGITS} digits")
            return 0
        return int(tok.value)

    def name(self, tok: Token) -> ast.Name:
        return ast.Name(tok.value, self.tok_span(tok))

    # --- structure -----------------------------------------------------------------

    def spec(self, tree: Tree, comments: list[Token]) -> ast.Spec:
        stmts = tuple(self.statement(t) for t in tree.children)
        kept = tuple((c.line, c.value.rstrip()) for c in comments)
        return ast.Spec(self.file, stmts, kept)

    def statement(self, t: Tree) -> ast.Statement:
        kind, c, span = str(t.data), t.children, self.tree_span(t)
        if kind in _RULES:
            return self.rule(t)
        if kind == "when":
            return self.when(t)
        if kind == "model_decl":
            return ast.ModelDecl(self.string(c[0]), span)
        if kind == "model_hub":
            return ast.ModelDecl(self.string(c[0]), span, "hub")
        if kind == "sae_decl":
            return ast.SaeDecl(self.name(c[0]), self.string(c[1]), span)
        if kind == "sae_hub":
            sub = None if c[2] is None else self.string(c[2].children[0])
            return ast.SaeDecl(self.name(c[0]), self.string(c[1]), span, "hub", sub)
        if kind == "sae_saelens":
            return ast.SaeDecl(self.name(c[0]), self.string(c[1]), span, "saelens", self.string(c[2]))
        if kind == "catalogue_decl":
            return ast.CatalogueDecl(self.string(c[0]), span)
        if kind == "direction_decl":
            return self.direction(t)
        if kind == "use_decl":
            return ast.Use(self.string(c[0]), span)
        if kind == "enforce_format":
            return ast.EnforceJson(None, self.strength(c[0]), span)
        if kind == "enforce_schema":
            return ast.EnforceJson(self.string(c[0]), self.strength(c[1]), span)
        if kind.startswith("expect_") or kind == "baseline":
            return self.expect(t)
        raise AssertionError(f"grammar and transform disagree on {kind!r}")

    def direction(self, t: Tree) -> ast.DirectionDecl:
        name, src, where = t.children
        c = src.children
        if src.data == "dir_file":
            key = None if c[1] is None else self.string(c[1].children[0])
            source = ast.DirFile(self.string(c[0]), key)
        else:
            last_a, a, last_b, b = c
            if (last_a is None) != (last_b is None):
                given = last_a if last_a is not None else last_b
                self.diags.error("E037", "`last` on one side of a difference of means only",
                                 self.tree_span(given), "write `mean last \"A\" - mean last \"B\"` "
                                 "(both sides over their last token) or neither")
            first = last_a if last_a is not None else last_b
            source = ast.DirMean(self.string(a), self.string(b),
                                 None if first is None else self.tree_span(first))
        layers = None if where is None else self.layers(where)
        return ast.DirectionDecl(self.name(name), source, layers, self.tree_span(t),
                                 None if where is None else self.tree_span(where))

    def layers(self, part: Tree) -> tuple[int, int]:
        """`at layer L` -> (L, L); `at layers A..B` -> (A, B), E017 when A > B."""
        if part.data == "layer_one":
            n = self.integer(part.children[0], "layer")
            return n, n
        a, b = (self.integer(x, "layer") for x in part.children)
        if a > b:
            self.diags.error("E017", f"empty layer range {a}..{b}", self.tree_span(part),
                             f"ranges are inclusive and ascending: write {b}..{a}")
        return a, b

    def expect(self, t: Tree) -> ast.Statement:
        kind, c, span = str(t.data), t.children, self.tree_span(t)
        if kind == "baseline":
            return ast.Baseline(self.string(c[0]), span)
        if kind == "expect_one":
            check, arg = self.check(c[1])
            return ast.Expect(self.string(c[0]), check, arg, span)
        if kind == "expect_rate":
            check, arg = self.check(c[2])
            return ast.ExpectRate(self.percent(c[0], "a rate", 100.0), self.string(c[1]), check, arg, span)
        if kind == "expect_kl":
            bound = self.number(c[1])
            if bound.value <= 0:
                self.diags.error("E033", f"`expect kl ... below {_short(c[1].value)}` can never pass: "
                                 "KL is never negative", bound.span,
                                 "give a positive bound in nats per token, e.g. `below 0.05`")
            return ast.ExpectKl(self.text_on(c[0]), bound, span)
        target, change, pct, text = c
        direction = "down" if change.data == "change_down" else "up"
        limit = 100.0 if direction == "down" else None  # a mean cannot drop by more than 100%
        return ast.ExpectChange(self.target(target), direction, self.percent(pct, "a change", limit),
                                self.text_on(text), span)

    def check(self, t: Tree) -> tuple[ast.ExpectKind, ast.Str | None]:
        """The `is json` / `matches schema "f"` / `[not] mentions "t"` tail of an expect."""
        kinds = {"check_json": "is_json", "check_schema": "matches_schema",
                 "check_mentions": "mentions", "check_not_mentions": "not_mentions"}
        return kinds[str(t.data)], (self.string(t.children[0]) if t.children else None)

    def text_on(self, t: Tree | None) -> ast.Str | None:
        return None if t is None else self.string(t.children[0])

    def percent(self, tok: Token, what: str, limit: float | None) -> ast.Num:
        """`95%` as Num(95); E032 unless 0 < value (<= limit)."""
        num = self.number(tok, suffixed=True)  # drops the trailing `%` as it drops `x`
        if num.value <= 0 or (limit is not None and num.value > limit):
            rng = f"above 0% and at most {limit:g}%" if limit is not None else "above 0%"
            self.diags.error("E032", f"{what} of {_short(tok.value)} is out of range: it must be {rng}",
                             num.span, "a bound that always holds (0%) or never can (over 100% of a "
                             "set, or a drop past 100%) tests nothing")
        return num

    def strength(self, t: Tree | None) -> ast.Num | None:
        return None if t is None else self.number(t.children[0])

    def rule(self, t: Tree) -> ast.Rule:
        kind, c, span = str(t.data), t.children, self.tree_span(t)
        target = self.target(c[0])
        scope = self.scope(c[-1])
        if kind == "suppress":
            return ast.Suppress(target, scope, span)
        if kind == "ablate":
            return ast.Ablate(target, scope, span)
        if kind in ("steer", "amplify"):
            return ast.Steer(kind, target, self.amount(c[1]), scope, span)
        if kind == "clamp_abs":
            return ast.Clamp(target, self.amount(c[1]), "abs", scope, span)
        if kind == "clamp_max":
            return ast.Clamp(target, self.number(c[1], suffixed=True), "max", scope, span)
        return ast.Scale(target, self.amount(c[1]), scope, span)

    def amount(self, x: Token | Tree) -> ast.Amount:
        """A rule's number, or `auto` (a Tree: the keyword is a rule of its own)."""
        return ast.Auto(self.tree_span(x)) if isinstance(x, Tree) else self.number(x)

    def scope(self, t: Tree) -> ast.Scope:
        layers, everywhere, positions = None, False, "all"
        for part in t.children:
            if part is None:
                continue
            if part.data == "everywhere":
                everywhere = True
            elif part.data in ("layer_one", "layer_range"):
                layers = self.layers(part)
            else:
                positions = _POSITIONS[part.data]
        span = None if t.meta.empty else self.tree_span(t)
        return ast.Scope(layers, everywhere, positions, span)

    def target(self, t: Tree) -> ast.Target:
        c, span = t.children, self.tree_span(t)
        if t.data in ("tag_set", "search_set"):
            sae = None if c[1] is None else self.name(c[1].children[0])
            limit = None if c[2] is None else self.integer(c[2].children[0], "limit")
            cls = ast.TagSet if t.data == "tag_set" else ast.SearchSet
            return cls(self.string(c[0]), sae, limit, span)
        return self.feature(t)

    def feature(self, t: Tree) -> ast.FeatureRef | ast.DirectionRef:
        c, span = t.children, self.tree_span(t)
        if t.data == "direction_ref":
            return ast.DirectionRef(self.name(c[0]), span)
        if t.data == "index_ref":
            return ast.IndexRef(self.name(c[0]), self.integer(c[1], "feature index"), span)
        if t.data == "label_ref":
            return ast.LabelRef(self.name(c[0]), self.string(c[1]), span)
        return ast.SearchRef(self.name(c[0]), self.string(c[1]), span)

    def when(self, t: Tree, depth: int = 1) -> ast.When:
        feature_t, threshold, *rest = t.children
        # Kept tokens: `{` first, `}` last (see steer.lark's `when`); the rest are items.
        lbrace, rbrace, items = rest[0], rest[-1], rest[1:-1]
        span = self.tree_span(t)
        if rbrace.line != lbrace.line:  # a multi-line block: point at its head, `when ... {`
            span = Span(self.file, span.line, span.col, lbrace.end_pos - t.meta.start_pos)
        if depth > MAX_WHEN_DEPTH:
            self.diags.error("E028", f"`when` nested more than {MAX_WHEN_DEPTH} deep", span,
                             "combine the conditions or flatten the blocks")
            items = []
        body = tuple(self.rule(x) if x.data in _RULES else self.when(x, depth + 1) for x in items)
        if depth > MAX_WHEN_DEPTH:
            return ast.When(self.feature(feature_t), self.number(threshold), body, span, self.tok_span(rbrace))
        if not body and self.report_empty_when:
            self.diags.error("E013", "empty `when` body", Span(self.file, lbrace.line, lbrace.column,
                             rbrace.end_pos - lbrace.start_pos if rbrace.line == lbrace.line else 1),
                             "put at least one rule between `{` and `}`, or delete the `when`")
        return ast.When(self.feature(feature_t), self.number(threshold), body, span, self.tok_span(rbrace))


def _short(text: str, n: int = 24) -> str:
    return text if len(text) <= n else text[:n] + "..."
