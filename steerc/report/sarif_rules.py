"""SARIF `reportingDescriptor`s (rules) for diagnostic codes, from the docs' code tables.

The texts come from `steerc/report/diagnostic_codes.json`, generated from the tables in
docs/ (`python -m steerc.report.codes_docs`): the docs stay the one list of codes. GitHub
code scanning shows `shortDescription` as the rule's title and `help` on the alert page.
`helpUri` must be absolute, so it is written only when the installed package's metadata
names its repository (`[project.urls]` in pyproject.toml); steerc names none today.
"""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import metadata

from steerc.report.codes import documented_codes
from steerc.report.records import area

LEVELS = {"error": "error", "warning": "warning"}
SHORT_MAX = 120
_URL_KEYS = ("repository", "source", "source code", "homepage")


def plain(md: str) -> str:
    """Markdown cell text as plain text (code spans unquoted, `\\|` unescaped)."""
    return md.replace("`", "").replace("\\|", "|").strip()


def short(text: str) -> str:
    """A title for `text`: its first clause without parentheticals, cut at a word."""
    depth, kept = 0, []
    for ch in text:
        depth += ch == "("
        if depth == 0:
            kept.append(ch)
        depth -= ch == ")" and depth > 0
    tidy = re.sub(r"\s+([,:;.])", r"\1", " ".join("".join(kept).split()))
    first = re.split(r";\s", tidy, maxsplit=1)[0].strip(" ,:") or text.strip()
    if len(first) <= SHORT_MAX:
        return first
    return first[:SHORT_MAX - 1].rsplit(" ", 1)[0].rstrip(",:; ") + "…"


@lru_cache(maxsize=1)
def repository_url() -> str | None:
    """The repository URL the installed steerc's metadata states (Project-URL), or None."""
    try:
        urls = metadata.metadata("steerc").get_all("Project-URL") or []
    except metadata.PackageNotFoundError:
        return None
    for entry in urls:
        label, _, url = entry.partition(",")
        if label.strip().lower() in _URL_KEYS and url.strip().startswith("https://"):
            return url.strip().rstrip("/")
    return None


def rule(code: str, severity: str, repo_url: str | None = None) -> dict:
    """The rule for `code`: documented texts, or the code's area where the docs have no row."""
    kind = area(code)
    doc = documented_codes().get(code)
    out: dict = {"id": code, "name": f"steerc{kind.title().replace(' ', '')}{code}"}
    if doc is None:
        summary = f"steerc {kind} {severity} {code}"
        out |= {
            "shortDescription": {"text": summary},
            "fullDescription": {"text": f"{summary}: the message says what is wrong and the hint how to fix it."},
            "help": {"text": "See the message and its hint.", "markdown": "See the message and its hint."},
        }
    else:
        full = plain(doc["summary"])
        where = f"{doc['page']}, section \"{plain(doc['section'])}\""
        text, md = [full], [doc["summary"]]
        if "fix" in doc:
            text.append(f"Fix: {plain(doc['fix'])}")
            md.append(f"**Fix:** {doc['fix']}")
        if "example" in doc:
            text.append(f"Example message: {plain(doc['example'])}")
            md.append(f"**Example message:** {doc['example']}")
        text.append(f"Documented in {where}.")
        md.append(f"Documented in `{doc['page']}`, section *{plain(doc['section'])}*.")
        out |= {
            "shortDescription": {"text": short(full)},
            "fullDescription": {"text": full},
            "help": {"text": "\n".join(text), "markdown": "\n\n".join(md)},
        }
        repo_url = repo_url if repo_url is not None else repository_url()
        if repo_url:
            out["helpUri"] = f"{repo_url}/blob/main/{doc['page']}#{doc['anchor']}"
    out |= {"defaultConfiguration": {"level": LEVELS[severity]},
            "properties": {"tags": ["steerc", kind]}}
    return out
