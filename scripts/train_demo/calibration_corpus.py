"""Write demo/calibration/: the labelled corpus `catalogue.sh` calibrates the demo catalogue on.

    python -m scripts.train_demo.calibration_corpus      # rewrites demo/calibration/*.jsonl

One JSON-lines file per corpus label (`{"text": ...}` per document), all from text of the
kinds the demo model was trained on (docs/demo.md "Data"):

- format: `prose`, `code`, `json`: the held-out documents of demo/heldout/{fmt}.txt as they are;
- topic (Python code): five areas of the CPython standard library, `asyncio`, `email`,
  `http`, `unittest`, `xml` (the package's `.py` files in path order, cut into 4000-character
  documents, CHARS per topic);
- entity (JSON): five AWS services from their botocore service models, `ec2`, `dynamodb`,
  `lambda`, `iam`, `sqs` (S3 is left out: the other services' documentation links to it
  throughout, so no feature of this SAE is selective for it) (shapes in name order, each as `{name: shape}`, laid
  out indent=2 or compact by hash as in training, packed into documents of <= 4000
  characters, CHARS per service).

Each kind shares one register (topics are all code, entities all JSON), so the tag rule's
per-kind contest (steerc/catalogue/calibrate/tags.py) tells topics apart, not formats.
Needs the stdlib of Python 3.11.7 and botocore 1.43.11 (demo/DATA.md); the files are
committed, so rebuilding the catalogue needs neither.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

from scripts.train_demo import data

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "demo" / "calibration"
CHARS = 24_000
DOC_CHARS = 4_000
TOPICS = ("asyncio", "email", "http", "unittest", "xml")
ENTITIES = ("ec2", "dynamodb", "lambda", "iam", "sqs")


def topic_docs(package: str) -> list[str]:
    """CHARS of one stdlib package's source, in DOC_CHARS documents."""
    root = data.stdlib_dir()
    text = "".join(p.read_text(encoding="utf-8").expandtabs(4) for p in data._stdlib_files()
                   if p.relative_to(root).parts[0] == package)
    return [text[i:i + DOC_CHARS] for i in range(0, min(len(text), CHARS), DOC_CHARS)]


def _service_model(service: str) -> dict:
    svc = data.site_packages() / "botocore" / "data" / service
    latest = sorted(p for p in svc.iterdir() if p.is_dir())[-1]
    path = next(latest / n for n in ("service-2.json", "service-2.json.gz") if (latest / n).exists())
    raw = path.read_bytes()
    return json.loads(gzip.decompress(raw) if path.suffix == ".gz" else raw)


def entity_docs(service: str) -> list[str]:
    """CHARS of one AWS service's botocore shapes, packed into documents of <= DOC_CHARS."""
    docs, cur, total = [], "", 0
    for name, shape in sorted(_service_model(service)["shapes"].items()):
        doc_id = f"{service}#{name}"
        piece = (json.dumps({name: shape}, indent=2, ensure_ascii=False)
                 if int(hashlib.sha256(doc_id.encode()).hexdigest(), 16) % 2
                 else json.dumps({name: shape}, separators=(",", ":"), ensure_ascii=False))[:DOC_CHARS]
        if cur and len(cur) + 1 + len(piece) > DOC_CHARS:
            docs.append(cur)
            total += len(cur)
            cur = ""
            if total >= CHARS:
                break
        cur = f"{cur}\n{piece}" if cur else piece
    if cur and total < CHARS:
        docs.append(cur)
    return docs


def write(name: str, docs: list[str]) -> None:
    """demo/calibration/NAME.jsonl, one `{"text": ...}` per document."""
    (OUT / f"{name}.jsonl").write_text("".join(json.dumps({"text": d}, ensure_ascii=False) + "\n" for d in docs))


def main(argv=None) -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    for fmt in data.FORMATS:
        write(fmt, data.read_heldout(ROOT / "demo" / "heldout" / f"{fmt}.txt"))
    for t in TOPICS:
        write(f"topic-{t}", topic_docs(t))
    for e in ENTITIES:
        write(f"entity-{e}", entity_docs(e))
    for p in sorted(OUT.glob("*.jsonl")):
        rows = p.read_text().splitlines()
        print(f"{p.relative_to(ROOT)}: {len(rows)} documents, {sum(len(json.loads(r)['text']) for r in rows)} chars")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
