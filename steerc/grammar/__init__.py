"""steerc.grammar: the steer language's front end (text -> `steerc.compiler.ast.Spec`).

`parse`/`parse_file` (parser.py) and `format_spec` (printer.py) are the public API;
docs/language.md is the reference. No other package sees Lark objects.
"""

from steerc.grammar.parser import parse, parse_file
from steerc.grammar.printer import format_spec
from steerc.grammar.spans import strip_spans

__all__ = ["parse", "parse_file", "format_spec", "strip_spans"]
