"""Offline training text for the demo model: Python code, English prose and JSON.

Every source is a file already on the machine (or in a pinned Debian/PyPI package), read in
sorted order, so the corpus is a pure function of the recorded versions:

    code  : CPython standard library `.py` sources (no tests, no site-packages)
    prose : docstrings of those sources (`ast.get_docstring`), `pydoc_data.topics` (the
            language reference text), /usr/share/common-licenses, Debian `fortunes`
    json  : JSON shipped in PyPI packages (cfn-lint schemas, botocore service models,
            jsonschema-specifications metaschemas), each as original / pretty / compact

A document goes to held-out when sha256(id) % 100 < HELDOUT_PCT. `build_corpus()` returns
{format: {"train": [docs], "heldout": [docs]}}; `write_manifest()` records it in DATA.md.
"""

from __future__ import annotations

import ast
import gzip
import hashlib
import importlib.metadata as md
import json
import os
import platform
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

FORMATS = ("prose", "code", "json")
HELDOUT_PCT = 4
# Per-format cap on training characters: the LM sees ~a few M tokens in its time budget.
MAX_CHARS = {"code": 9_000_000, "prose": 9_000_000, "json": 9_000_000}
FORTUNE_FILES = (
    "computers", "definitions", "education", "food", "fortunes", "goedel", "humorists",
    "kids", "law", "literature", "love", "magic", "medicine", "miscellaneous", "news",
    "people", "pets", "platitudes", "riddles", "science", "songs-poems", "sports",
    "startrek", "wisdom", "work", "zippy",
)
FORTUNE_DIR = Path("/usr/share/games/fortunes")
LICENSE_DIR = Path("/usr/share/common-licenses")
JSON_PACKAGES = ("cfn-lint", "botocore", "jsonschema-specifications")


@dataclass(frozen=True)
class Doc:
    id: str  # stable identifier, e.g. "code:json/decoder.py"
    text: str


def stdlib_dir() -> Path:
    """The running interpreter's pure-Python standard library directory."""
    return Path(sysconfig.get_paths()["stdlib"])


def site_packages() -> Path:
    """Where the JSON source packages are installed: $STEERC_DEMO_JSON_SITE, else the base
    interpreter's purelib (outside any virtualenv; see demo/DATA.md for the pins)."""
    env = os.environ.get("STEERC_DEMO_JSON_SITE")
    if env:
        return Path(env)
    base = {"base": sys.base_prefix, "platbase": sys.base_exec_prefix}
    return Path(sysconfig.get_paths(vars=base)["purelib"])


def is_heldout(doc_id: str) -> bool:
    """Deterministic split: 4% of documents by hash of their id."""
    return int(hashlib.sha256(doc_id.encode()).hexdigest(), 16) % 100 < HELDOUT_PCT


def _stdlib_files() -> list[Path]:
    root = stdlib_dir()
    skip = {"site-packages", "test", "tests", "idle_test", "lib2to3", "__pycache__"}
    out = [p for p in root.rglob("*.py") if not (skip & set(p.relative_to(root).parts))]
    return sorted(out)


def code_docs() -> list[Doc]:
    """Each stdlib module as one document (tabs expanded, trailing spaces stripped)."""
    root, docs = stdlib_dir(), []
    for p in _stdlib_files():
        text = p.read_text(encoding="utf-8", errors="replace").expandtabs(4)
        docs.append(Doc(f"code:{p.relative_to(root)}", text))
    return docs


def docstring_docs() -> list[Doc]:
    """Docstrings (module, class, function) of >= 120 characters from the stdlib."""
    root, docs = stdlib_dir(), []
    kinds = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
    for p in tqdm(_stdlib_files(), desc="docstrings", leave=False):
        try:
            tree = ast.parse(p.read_text(encoding="utf-8", errors="replace"))
        except SyntaxError:
            continue
        parts = []
        for node in ast.walk(tree):
            if isinstance(node, kinds):
                d = ast.get_docstring(node)
                if d and len(d) >= 120 and not d.lstrip().startswith((">>>", "$")):
                    parts.append(d.strip())
        if parts:
            docs.append(Doc(f"prose:docstrings:{p.relative_to(root)}", "\n\n".join(parts)))
    return docs


def reference_docs() -> list[Doc]:
    """The language reference topics shipped as `pydoc_data.topics` (plain English text)."""
    from pydoc_data.topics import topics

    return [Doc(f"prose:pydoc_topics:{k}", topics[k].strip()) for k in sorted(topics)]


def license_docs() -> list[Doc]:
    """Debian's /usr/share/common-licenses texts (regular files only, no symlinks)."""
    files = sorted(p for p in LICENSE_DIR.iterdir() if p.is_file() and not p.is_symlink())
    return [Doc(f"prose:license:{p.name}", p.read_text(errors="replace")) for p in files]


def fortune_docs() -> list[Doc]:
    """Debian `fortunes` cookies, grouped 20 per document (cookies are separated by '%')."""
    docs = []
    for name in FORTUNE_FILES:
        path = FORTUNE_DIR / name
        if not path.exists():
            raise FileNotFoundError(f"{path}: run `apt-get install fortunes` (see demo/DATA.md)")
        cookies = [c.strip() for c in path.read_text(errors="replace").split("\n%\n") if c.strip()]
        for i in range(0, len(cookies), 20):
            docs.append(Doc(f"prose:fortunes:{name}:{i}", "\n\n".join(cookies[i:i + 20])))
    return docs


def _json_files() -> list[tuple[str, Path]]:
    sp = site_packages()
    roots = {
        "cfn-lint": sp / "cfnlint" / "data",
        "botocore": sp / "botocore" / "data",
        "jsonschema-specifications": sp / "jsonschema_specifications" / "schemas",
    }
    out = []
    for pkg, root in roots.items():
        files = sorted(list(root.rglob("*.json")) + list(root.rglob("*.json.gz")))
        out += [(pkg, p) for p in files]
    return out


def json_docs() -> list[Doc]:
    """Each JSON file in one of three layouts, picked by hash: as shipped, indent=2, compact.

    Huge files (botocore service models) are cut into their top-level members so a document
    stays under ~40k characters.
    """
    sp, docs = site_packages(), []
    for pkg, p in tqdm(_json_files(), desc="json", leave=False):
        raw = gzip.decompress(p.read_bytes()) if p.suffix == ".gz" else p.read_bytes()
        try:
            obj = json.loads(raw)
        except ValueError:
            continue
        rel = f"{pkg}:{p.relative_to(sp)}"
        pieces = [(rel, obj)]
        if len(raw) > 40_000 and isinstance(obj, dict):
            pieces = [(f"{rel}#{k}", {k: v}) for k, v in obj.items()]
            pieces = [(i, o) for i, o in pieces if len(json.dumps(o)) < 200_000]
        for doc_id, o in pieces:
            style = int(hashlib.sha256(doc_id.encode()).hexdigest(), 16) % 3
            if style == 0 and len(pieces) == 1:
                text = raw.decode("utf-8", errors="replace")
            elif style == 1 or style == 0:
                text = json.dumps(o, indent=2, ensure_ascii=False)
            else:
                text = json.dumps(o, separators=(",", ":"), ensure_ascii=False)
            docs.append(Doc(f"json:{doc_id}", text[:40_000]))
    return docs


def _cap(docs: list[Doc], limit: int) -> list[Doc]:
    """Keep documents in a hash order until `limit` characters (stable, source-independent)."""
    order = sorted(docs, key=lambda d: hashlib.sha256(d.id.encode()).hexdigest())
    out, total = [], 0
    for d in order:
        if total >= limit:
            break
        out.append(d)
        total += len(d.text)
    return out


def build_corpus() -> dict[str, dict[str, list[Doc]]]:
    """All three formats, split into train/held-out; train capped at MAX_CHARS per format."""
    raw = {
        "code": code_docs(),
        "prose": docstring_docs() + reference_docs() + license_docs() + fortune_docs(),
        "json": json_docs(),
    }
    corpus = {}
    for fmt, docs in raw.items():
        train = [d for d in docs if not is_heldout(d.id)]
        held = [d for d in docs if is_heldout(d.id)]
        corpus[fmt] = {"train": _cap(train, MAX_CHARS[fmt]), "heldout": held}
    return corpus


def source_versions() -> dict[str, str]:
    """Versions of everything the corpus is read from."""
    v = {"python": platform.python_version(), "python_stdlib": str(stdlib_dir())}
    for pkg in JSON_PACKAGES:
        dists = list(md.distributions(name=pkg, path=[str(site_packages())]))
        v[pkg] = dists[0].version if dists else "missing"
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "fortunes"],
                             capture_output=True, text=True, check=True).stdout
        v["debian:fortunes"] = out.strip()
    except (OSError, subprocess.CalledProcessError):
        v["debian:fortunes"] = "unknown"
    try:
        v["debian"] = Path("/etc/debian_version").read_text().strip()
    except OSError:
        v["debian"] = "unknown"
    return v


def corpus_digest(corpus: dict[str, dict[str, list[Doc]]]) -> str:
    """sha256 over every document id and text, in corpus order."""
    h = hashlib.sha256()
    for fmt in FORMATS:
        for split in ("train", "heldout"):
            for d in corpus[fmt][split]:
                h.update(d.id.encode() + b"\0" + d.text.encode() + b"\0")
    return h.hexdigest()


def write_heldout(corpus, out_dir: Path, chars: int = 60_000) -> None:
    """demo/heldout/{prose,code,json}.txt (format-labelled eval) and neutral.txt (prose).

    Documents are separated by a line holding only `<|doc|>`; each file takes held-out
    documents in id order until `chars` characters. neutral.txt is fortunes + reference
    prose not used in prose.txt (for KL measurement of steered vs base models).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    used = set()
    for fmt in FORMATS:
        docs = sorted(corpus[fmt]["heldout"], key=lambda d: d.id)
        if fmt == "prose":  # a mix of the prose sources, not only the first by id
            docs = sorted(docs, key=lambda d: hashlib.sha256(d.id.encode()).hexdigest())
        picked, total = [], 0
        for d in docs:
            if total >= chars:
                break
            text = d.text[:4000]
            picked.append(text)
            used.add(d.id)
            total += len(text)
        (out_dir / f"{fmt}.txt").write_text("\n<|doc|>\n".join(picked) + "\n")
    neutral = [d for d in corpus["prose"]["heldout"]
               if d.id not in used and d.id.startswith(("prose:fortunes", "prose:pydoc"))]
    neutral = sorted(neutral, key=lambda d: d.id)
    text, total = [], 0
    for d in neutral:
        if total >= chars:
            break
        text.append(d.text[:3000])
        total += len(text[-1])
    (out_dir / "neutral.txt").write_text("\n<|doc|>\n".join(text) + "\n")


def read_heldout(path: Path) -> list[str]:
    """Documents of a demo/heldout/*.txt file."""
    return [t.strip("\n") for t in path.read_text().split("\n<|doc|>\n") if t.strip()]


def write_manifest(corpus, path: Path) -> None:
    """demo/DATA.md: sources, versions, document and character counts, corpus digest."""
    v = source_versions()
    lines = ["# Demo training data", "",
             "Built by `scripts/train_demo/data.py` from files on the machine; no download.", "",
             "| source | version |", "|---|---|"]
    lines += [f"| {k} | {val} |" for k, val in v.items()]
    lines += ["", f"Interpreter: `{sys.executable}`; JSON packages read from "
              f"`{site_packages()}` (set STEERC_DEMO_JSON_SITE to override).", "",
              "| format | train docs | train chars | held-out docs | held-out chars |",
              "|---|---|---|---|---|"]
    for fmt in FORMATS:
        tr, he = corpus[fmt]["train"], corpus[fmt]["heldout"]
        lines.append(f"| {fmt} | {len(tr)} | {sum(len(d.text) for d in tr)} | {len(he)} | "
                     f"{sum(len(d.text) for d in he)} |")
    lines += ["", "Sources per format:", "",
              "- code: every `.py` under the stdlib directory except `test/`, `tests/`, "
              "`idle_test/`, `lib2to3/`, `site-packages/`.",
              "- prose: stdlib docstrings (>= 120 chars, `ast.get_docstring`), "
              "`pydoc_data.topics`, `/usr/share/common-licenses/*` (files), Debian `fortunes` "
              f"files {', '.join(FORTUNE_FILES)} (install: `apt-get install fortunes`).",
              "- json: `cfnlint/data/**/*.json`, `botocore/data/**/*.json[.gz]` (large models "
              "split by top-level key), `jsonschema_specifications/schemas/**`; layout chosen "
              "per document by hash: as shipped / `indent=2` / compact.",
              "", f"Held-out: sha256(doc id) % 100 < {HELDOUT_PCT}. Train capped at "
              f"{MAX_CHARS['code']} chars per format (hash order).",
              "", f"Corpus sha256: `{corpus_digest(corpus)}`", ""]
    path.write_text("\n".join(lines))
