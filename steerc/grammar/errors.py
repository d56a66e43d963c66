"""Syntax errors: turn "token T where the parser expected {..}" into a friendly Diagnostic.

`expected` is the set of terminal names the LALR parser accepts at the point of failure;
the classification below reads like a table of common mistakes (see the E0xx rows of
docs/language.md). Codes are stable: tests/golden/syntax pins their rendering.
"""

from __future__ import annotations

import itertools
import unicodedata

from lark import Token

from steerc.diagnostics import Diagnostic, Span, did_you_mean
from steerc.grammar.lexer import LexProblem

STATEMENT_WORDS = ("model", "sae", "catalogue", "use", "suppress", "ablate", "steer", "amplify",
                   "clamp", "scale", "when", "enforce", "expect", "baseline", "direction")
RULE_WORDS = ("suppress", "ablate", "steer", "amplify", "clamp", "scale", "when")
KEYWORDS = frozenset(STATEMENT_WORDS + (
    "by", "to", "max", "everywhere", "at", "layers", "layer", "on", "prompt", "generated", "all",
    "search", "features", "tagged", "matching", "in", "limit", "json", "format", "schema",
    "strength", "is", "matches", "mentions", "not", "hub", "path", "saelens", "id",
    "least", "of", "kl", "below", "down", "up", "file", "key", "mean", "last", "auto"))
FEATURE_FORMS = 'res2[123], res2["label"] or res2[search "text"]'
TARGET_FORMS = FEATURE_FORMS + ', or features tagged "t" / features matching "text"'
EXPECT_FORMS = ('`expect "prompt" is json` (or `matches schema "f"`, `[not] mentions "t"`), '
                '`expect at least 95% of "prompts.txt" is json`, `expect kl [on "texts.txt"] below 0.05`, '
                '`expect res2["x"] down by at least 50% [on "texts.txt"]`')
_PUNCT = {"LSQB": "[", "RSQB": "]", "LBRACE": "{", "RBRACE": "}", "MORETHAN": ">",
          "EQUAL": "=", "_DOTDOT": ".."}


def is_keyword(tok: Token) -> bool:
    return tok.type.lower() == tok.value and tok.value in KEYWORDS


def describe(tok: Token) -> str:
    """How a token reads in a message: "keyword 'by'", "end of line", "number 4"."""
    t, v = tok.type, str(tok.value)
    if t == "$END":
        return "end of file"
    if t == "_SEP":
        return "end of line" if v == "\n" else "';'"
    if t == "STRING":
        return "string " + (v if len(v) <= 30 else v[:27] + '..."')
    if t == "NUMBER":
        return f"number {_cut(v)}"
    if is_keyword(tok):
        return f"keyword '{v}'"
    return f"'{_cut(v)}'"


def describe_expected(expected: set[str]) -> str:
    names = {"NAME": "a name", "STRING": "a string", "NUMBER": "a number", "MAXMUL": "'Nx max'",
             "_SEP": "end of statement", "$END": "end of file"}
    shown = sorted(names.get(e) or f"'{_PUNCT.get(e, e.lower())}'" for e in expected)
    if len(shown) > 8:
        return "a statement" if "'suppress'" in shown else ", ".join(shown[:8]) + ", ..."
    return shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " or " + shown[-1]


def token_span(file: str, tok: Token) -> Span:
    return Span(file, tok.line, tok.column, max(1, len(str(tok.value))))


def classify_lex(p: LexProblem, expected: set[str], file: str) -> Diagnostic:
    """E001 (characters that start no token) or E002 (string without its closing quote)."""
    span = Span(file, p.line, p.col, max(1, len(p.text)))
    if p.kind == "string":
        return Diagnostic("E002", "unterminated string", span,
                          'add the closing `"` on the same line (strings cannot span lines; write \\n)')
    ch = p.text[0]
    if ch.isdecimal():  # not ASCII: those lex as NUMBER
        return _non_ascii_digits(p, span)
    shown = "\\0" if ch == "\0" else ch
    msg = f"unexpected character '{shown}'" + (f" (U+{ord(ch):04X})" if not ch.isprintable() else "")
    if "MORETHAN" in expected and ch in "<=!":
        return Diagnostic("E022", f"unsupported comparison '{p.text.split()[0]}'", span,
                          "conditions have the form `when res2[12] > 0.5 { ... }` (only `>`)")
    if ch == "'":
        hint = 'strings use double quotes: "like this"'
    elif ch in "\u201c\u201d":
        hint = 'use straight double quotes ("), not typographic ones'
    elif ch == "\0":
        hint = "the text contains a NUL byte: is this a binary file?"
    elif ch.isspace():
        hint = "an unusual space (copied from a web page?): replace it with a plain space"
    elif ch in "(),":
        hint = "steer rules take no parentheses or commas: `steer res2[12] by 4`"
    else:
        hint = "delete it; comments start with '#'"
    return Diagnostic("E001", msg, span, hint)


def _non_ascii_digits(p: LexProblem, span: Span) -> Diagnostic:
    """E029: `１２` (fullwidth) or `٣` (Arabic-Indic) where a number goes; Python's int()
    would read them, the language does not: a number is ASCII digits only."""
    digits = "".join(itertools.takewhile(str.isdecimal, p.text))
    ascii_form = "".join(str(unicodedata.decimal(c)) for c in digits)
    name = unicodedata.name(digits[0], f"U+{ord(digits[0]):04X}")
    return Diagnostic("E029", f"non-ASCII digit '{digits[0]}' (U+{ord(digits[0]):04X} {name}): numbers "
                      "are written with the digits 0-9", Span(span.file, span.line, span.col, len(digits)),
                      f"write {ascii_form}")


def classify(tok: Token, expected: set[str], file: str, statement: str | None = None) -> Diagnostic:
    """A Diagnostic for `tok` arriving where the parser accepts only `expected`; `statement`
    is the terminal of the keyword that opened the statement being parsed (`EXPECT`), if any."""
    span = token_span(file, tok)
    found = describe(tok)
    word = str(tok.value)

    def d(code: str, msg: str, hint: str | None = None) -> Diagnostic:
        return Diagnostic(code, msg, span, hint)

    if tok.type == "MAXMUL":
        return d("E010", f"'{word} max' is only valid in `clamp ... to`",
                 "`Nx max` means N times the feature's catalogue max activation; "
                 "other verbs take a plain number (`steer res2[1] by 4`)")
    if "SUPPRESS" in expected:  # at the start of a statement
        return _statement_start(tok, expected, d, found)
    if expected == {"PERCENT"}:
        hint = "rates and changes are percentages: `at least 95%`"
        if tok.type == "NUMBER":
            hint = (f"for a fraction of {word} write `{float(word) * 100:g}%`"
                    if 0 < float(word) <= 1 else f"write `{word}%`")
        return d("E031", f"expected a percentage such as 95%, found {found}", hint)
    if statement in ("EXPECT", "BASELINE"):
        special = _expect_problem(expected, statement)
        if special is not None:
            return d("E027", f"incomplete `{statement.lower()}`: found {found}", special)
    if expected == {"NUMBER", "STRING", "SEARCH"}:
        return d("E008", f"bad feature reference: expected an index, a \"label\" or `search`, found {found}",
                 f"write {FEATURE_FORMS}")
    if expected == {"RSQB"}:
        return d("E008", f"expected ']' to close the feature reference, found {found}",
                 f"write {FEATURE_FORMS}")
    if expected == {"LSQB"}:
        return d("E008", f"expected '[' after the SAE alias, found {found}", f"write {FEATURE_FORMS}")
    if {"NAME", "FEATURES"} <= expected:
        hint = f"write {TARGET_FORMS}"
        if tok.type == "STRING":
            hint = f"name the SAE the label belongs to: res2[{word}]"
        elif is_keyword(tok):
            hint = f"'{word}' is a reserved word and cannot be an SAE alias"
        return d("E009", f"expected a feature or a feature set, found {found}", hint)
    if expected == {"TAGGED", "MATCHING"}:
        return d("E009", f"expected `tagged` or `matching` after `features`, found {found}",
                 'write features tagged "tag" or features matching "text"')
    if "BY" in expected:
        hint = "write e.g. `steer res2[1] by 4`"
        if tok.type == "TO":
            hint = "this verb takes `by`; only `clamp` takes `to`"
        return d("E006", f"expected `by` after the target, found {found}", hint)
    if "TO" in expected:
        hint = "write `clamp res2[1] to 3` or `clamp res2[1] to 5x max`"
        if tok.type == "BY":
            hint = "`clamp` takes `to`: " + hint[6:]
        return d("E007", f"expected `to` after the target, found {found}", hint)
    numbers = expected - {"AUTO"}  # a rule's strength may also be `auto`
    if numbers == {"NUMBER", "MAXMUL"} and tok.type == "MAX":
        return d("E010", "expected a number before `max`", "write `to 5x max` (N times the max activation)")
    if expected == {"NUMBER"} and tok.type == "EQUAL":
        return d("E022", "unsupported comparison '>='",
                 "conditions have the form `when res2[12] > 0.5 { ... }` (only `>`)")
    if "NUMBER" in expected and tok.type == "AUTO":
        return d("E040", "`auto` is only a rule's strength (`steer X by auto`, `scale X by auto`, "
                 "`clamp X to auto`)", "write a number here; `steerc calibrate` searches only the "
                 "strengths of steer, amplify, scale and clamp rules")
    if "NUMBER" in expected and tok.type == "NAME" and "AUTO" in expected:
        return d("E005", f"expected a number or `auto`, found {found}",
                 did_you_mean(word, ("auto",)) or "numbers look like 4, -0.5, 2.5e-3; `auto` lets "
                 "`steerc calibrate` find the strength")
    if "NUMBER" in expected:
        what = "a number or `auto`" if "AUTO" in expected else "a number"
        return d("E005", f"expected {what}, found {found}", "numbers look like 4, -0.5, 2.5e-3")
    if "MAX" in expected:
        return d("E010", f"expected `max` after 'Nx', found {found}",
                 "write `clamp res2[1] to 5x max`")
    if expected == {"LBRACE"}:
        hint = "the `{` must be on the same line as `when`" if tok.type == "_SEP" else \
            "write `when res2[1] > 0.5 { ... }`"
        return d("E021", f"expected '{{' after the condition, found {found}", hint)
    if expected == {"MORETHAN"}:
        return d("E022", f"expected '>' after the `when` feature, found {found}",
                 "conditions have the form `when res2[12] > 0.5 { ... }` (only `>`)")
    if expected <= {"LAYERS", "LAYER"}:
        return d("E023", f"expected `layers A..B` or `layer A` after `at`, found {found}",
                 "write `at layers 2..4` or `at layer 3`")
    if expected <= {"PROMPT", "GENERATED", "ALL"}:
        hint = did_you_mean(word, ("prompt", "generated", "all")) if tok.type == "NAME" else None
        return d("E023", f"expected `prompt`, `generated` or `all` after `on`, found {found}",
                 hint or "write `on prompt`, `on generated` or `on all`")
    if expected == {"_DOTDOT"}:
        return d("E023", f"expected '..' in the layer range, found {found}", "write `at layers 2..4`")
    # a declaration's string, which `hub` / `saelens` may precede (`model hub "org/name"`)
    if "STRING" in expected and expected <= {"STRING", "HUB", "SAELENS"}:
        hint = 'put it in double quotes: "..."' if tok.type in ("NAME", "NUMBER") or is_keyword(tok) else None
        return d("E024", f"expected a string, found {found}", hint)
    if expected == {"NAME"}:
        hint = f"'{word}' is a reserved word and cannot be a name" if is_keyword(tok) else \
            "names start with a letter or '_': res2, my_sae"
        return d("E025", f"expected a name, found {found}", hint)
    if expected == {"EQUAL"}:
        return d("E025", f"expected '=' after the SAE alias, found {found}",
                 'write `sae res2 = "saes/demo/blocks.2.hook_resid_post"`')
    if expected & {"JSON", "FORMAT", "SCHEMA"} and not expected & {"_SEP"}:
        return d("E027", f"incomplete `enforce`: found {found}",
                 'write `enforce json format` or `enforce json schema "file.json"`')
    if expected & {"IS", "MATCHES", "MENTIONS"} or expected == {"MENTIONS"}:
        return d("E027", f"incomplete `expect`: found {found}",
                 'write `expect "prompt" is json`, `matches schema "f"`, `mentions "t"` or `not mentions "t"`')
    if "_SEP" in expected or "RBRACE" in expected:
        hint = "statements are separated by a newline or ';'"
        if tok.type == "NAME" and word == "x" or tok.type == "MAX":
            return d("E010", f"unexpected {found}: write `Nx max` with no space", "e.g. `clamp res2[1] to 5x max`")
        if tok.type == "RBRACE":
            return d("E012", "unexpected '}': no `when` block is open", "delete it")
        return d("E014", f"expected end of statement, found {found}", hint)
    return d("E020", f"unexpected {found}; expected {describe_expected(expected)}")


def _expect_problem(expected: set[str], statement: str) -> str | None:
    """The hint for a token an `expect` / `baseline` statement cannot take here, or None
    when the general rules below say it better (a missing number, string or bracket)."""
    if statement == "BASELINE":
        return 'write `baseline prompt "Answer only in JSON."`' if expected == {"PROMPT"} else None
    if "KL" in expected:  # right after `expect`
        return "write " + EXPECT_FORMS
    if expected == {"LEAST"}:
        return 'write `expect at least 95% of "prompts.txt" ...`'
    if expected == {"OF"}:
        return 'write `expect at least 95% of "prompts.txt" is json` (the prompt file follows `of`)'
    if expected == {"DOWN", "UP"}:
        return 'after the feature: `down by at least 50%` or `up by at least 50%`'
    if expected == {"BY"}:
        return 'write `down by at least 50%`'
    if expected <= {"ON", "BELOW"}:
        return 'write `expect kl below 0.05` or `expect kl on "texts.txt" below 0.05`'
    return None


def _statement_start(tok: Token, expected: set[str], d, found: str) -> Diagnostic:
    word = str(tok.value)
    in_block = "MODEL" not in expected
    words = RULE_WORDS if in_block else STATEMENT_WORDS
    if tok.type == "RBRACE":
        return d("E012", "unexpected '}': no `when` block is open", "delete it")
    if tok.type == "LBRACE":
        return d("E021", "unexpected '{'", "a block's `{` goes on the same line as its `when` condition")
    if tok.type == "NAME":
        hint = did_you_mean(word, words) or "statements start with " + ", ".join(f"`{w}`" for w in words)
        return d("E004", f"unknown statement '{_cut(word)}'", hint)
    if in_block and tok.value in STATEMENT_WORDS:
        return d("E004", f"`{word}` cannot appear inside a `when` block",
                 "only rules (suppress, ablate, steer, amplify, clamp, scale) and `when` go in a block")
    return d("E004", f"expected a statement, found {found}",
             "statements start with " + ", ".join(f"`{w}`" for w in words))


def _cut(text: str, n: int = 30) -> str:
    return text if len(text) <= n else text[:n - 3] + "..."
