"""editors/steer.tmLanguage.json, tokenized by VS Code's own TextMate engine.

vscode-textmate + vscode-oniguruma run under node (editors/test-node; `npm ci` installs
them there, about 1 MB, on first use). Every token steerc's lexer finds in the repo's
specs and in docs/language.md's examples must get the matching TextMate scope, and a
few tokens are pinned exactly. Skips, saying why, when node/npm are missing or the
install fails (no registry).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from steerc.diagnostics import DiagnosticError
from steerc.grammar import parse
from steerc.grammar.lexer import LexProblem, tokenize
from steerc.grammar.parser import _LEXER

from .conftest import REPO, repo_steer_files

EDITORS = REPO / "editors"
NODE_DIR = EDITORS / "test-node"
GRAMMAR = EDITORS / "steer.tmLanguage.json"
VERBS = {"suppress", "ablate", "steer", "amplify", "clamp", "scale"}
SAMPLE = '''# a comment
sae res2 = "saes/x"
clamp res2["python \\"code\\""] to 5x max at layers 1..3  # strong
when res2[12] > -0.5e-3 { steer res2[search "a#b"] by 4 }
'''


def _engine() -> None:
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node/npm not installed: cannot run vscode-textmate")
    if not (NODE_DIR / "node_modules" / "vscode-textmate").is_dir():
        r = subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts"], cwd=NODE_DIR,
                           capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            pytest.skip(f"`npm ci` in editors/test-node failed (offline?): {r.stderr[-400:]}")


def tm_tokens(paths: list[Path]) -> dict[str, list[list[dict]]]:
    """{path: per line, [{"text", "scopes"}...]} from vscode-textmate."""
    _engine()
    r = subprocess.run(["node", "tokenize.js", str(GRAMMAR), *map(str, paths)], cwd=NODE_DIR,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def scopes_at(line_tokens: list[dict], col0: int) -> list[str]:
    """Scopes of the TextMate token covering 0-based code-point column `col0`."""
    pos = 0
    for t in line_tokens:
        pos += len(t["text"])
        if col0 < pos:
            return t["scopes"]
    raise AssertionError(f"column {col0} beyond the line")


def expected(tok) -> str:
    """A scope (prefix) the TextMate token over `tok` must carry."""
    t, v = tok.type, str(tok.value)
    if t == "STRING":
        return "string.quoted.double.steer"
    if t in ("NUMBER", "MAXMUL", "PERCENT"):
        return "constant.numeric.steer"
    if t == "COMMENT":
        return "comment.line.number-sign.steer"
    if t == "NAME":
        return "variable.other.alias"
    if t == v.upper():  # a keyword
        return "keyword.other.verb.steer" if v in VERBS else "keyword."
    return {"LBRACE": "punctuation.section.block.begin.steer", "RBRACE": "punctuation.section.block.end.steer",
            "LSQB": "punctuation.section.brackets.begin.steer", "RSQB": "punctuation.section.brackets.end.steer",
            "MORETHAN": "keyword.operator.comparison.steer", "EQUAL": "keyword.operator.assignment.steer",
            "_DOTDOT": "keyword.operator.range.steer", "MINUS": "keyword.operator.arithmetic.steer", "_SEP": "punctuation.terminator.statement.steer"}[t]


def docs_examples(tmp_path: Path) -> list[Path]:
    blocks = re.findall(r"```steer\n(.*?)```", (REPO / "docs" / "language.md").read_text(), re.S)
    out = []
    for i, b in enumerate(blocks):
        p = tmp_path / f"docs_{i:02d}.steer"
        p.write_text(b)
        out.append(p)
    return out


def test_sample_tokens_get_the_right_scopes(tmp_path):
    p = tmp_path / "sample.steer"
    p.write_text(SAMPLE)
    lines = tm_tokens([p])[str(p)]

    def scopes(line: int, text: str, nth: int = 0) -> list[str]:
        hits = [t["scopes"] for t in lines[line] if t["text"] == text]
        return hits[nth]

    assert scopes(0, "#")[-1] == "punctuation.definition.comment.steer"
    assert scopes(0, " a comment")[-1] == "comment.line.number-sign.steer"
    assert scopes(1, "res2")[-1] == "variable.other.alias.definition.steer"
    assert scopes(2, "clamp")[-1] == "keyword.other.verb.steer"
    assert scopes(2, "res2")[-2:] == ["meta.feature-ref.steer", "variable.other.alias.steer"]
    assert scopes(2, '\\"')[-2:] == ["string.quoted.double.steer", "constant.character.escape.steer"]
    assert scopes(2, "python ")[-1] == "string.quoted.double.steer"
    assert scopes(2, "5")[-1] == "constant.numeric.steer" and scopes(2, "x")[-1] == "keyword.other.unit.steer"
    assert scopes(2, "..")[-1] == "keyword.operator.range.steer"
    assert scopes(2, "3")[-1] == "constant.numeric.steer"
    assert scopes(2, " strong")[-1] == "comment.line.number-sign.steer"
    assert scopes(3, "when")[-1] == "keyword.control.conditional.steer"
    assert scopes(3, "-0.5e-3")[-1] == "constant.numeric.steer"
    assert scopes(3, ">")[-1] == "keyword.operator.comparison.steer"
    assert scopes(3, "search")[-1] == "keyword.other.search.steer"
    assert scopes(3, "a#b")[-1] == "string.quoted.double.steer"  # not a comment inside a string


def test_every_lexer_token_in_the_repo_and_docs_has_its_scope(tmp_path):
    paths = repo_steer_files() + docs_examples(tmp_path)
    texts = {}
    for p in paths:
        try:
            texts[p] = p.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
    tm = tm_tokens(list(texts))
    n_tokens, n_files, kinds = 0, 0, set()
    for p, text in texts.items():
        try:
            parse(text)
        except DiagnosticError:
            continue  # deliberately broken files: there a NAME may be a misspelt keyword
        comments: list = []
        toks = list(tokenize(_LEXER, text, comments))
        assert not any(isinstance(t, LexProblem) for t in toks)
        n_files += 1
        lines = tm[str(p)]
        for tok in [*toks, *comments]:
            if tok.type == "_SEP" and tok.value == "\n":
                continue
            want = expected(tok)
            for k in range(len(str(tok.value))):
                got = scopes_at(lines[tok.line - 1], tok.column - 1 + k)
                assert any(s.startswith(want) for s in got), (
                    f"{p}:{tok.line}:{tok.column + k}: {tok.type} {tok.value!r} has scopes {got}, wants {want}")
            n_tokens += 1
            kinds.add(tok.type)
    assert n_files >= 30 and n_tokens >= 500, (n_files, n_tokens)
    assert {"STRING", "NUMBER", "MAXMUL", "COMMENT", "NAME", "LBRACE", "SUPPRESS", "WHEN"} <= kinds


def test_vscode_manifest_contributes_the_grammar():
    pkg = json.loads((EDITORS / "vscode" / "package.json").read_text())
    lang = pkg["contributes"]["languages"][0]
    gram = pkg["contributes"]["grammars"][0]
    assert lang["extensions"] == [".steer"] and gram["language"] == lang["id"] == "steer"
    grammar = json.loads((EDITORS / "vscode" / gram["path"]).resolve().read_text())
    assert gram["scopeName"] == grammar["scopeName"] == "source.steer"
    conf = json.loads((EDITORS / "vscode" / lang["configuration"]).read_text())
    assert conf["comments"]["lineComment"] == "#"
