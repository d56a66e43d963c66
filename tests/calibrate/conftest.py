"""A user-built tiny Llama and JumpReLU SAE, and a small labelled corpus (code / prose)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.tinymodels import HIDDEN, random_sae_dir, save_tiny

HOOK = "blocks.1.hook_resid_post"
D_SAE = 48
CODE = ["def parse(text):\n    return [int(x) for x in text.split(',')]\n",
        "import os\nimport sys\n\nclass Reader:\n    def read(self, path):\n        return open(path).read()\n",
        "for i in range(10):\n    if i % 2 == 0:\n        print(i)\n"]
PROSE = ["The quiet town sat by the river, and every morning the baker opened his shop.\n",
         "Amazon Web Services hosts many sites. People said Amazon Web Services was cheap.\n",
         "She walked along the shore and watched the boats return with the evening tide.\n"]


@pytest.fixture(scope="session")
def tiny(tmp_path_factory) -> Path:
    """Folder with model/, sae/, code.txt, prose.txt and docs.jsonl."""
    root = tmp_path_factory.mktemp("calibrate")
    save_tiny("llama", root / "model")
    random_sae_dir(HIDDEN, D_SAE, HOOK, root / "sae", "jumprelu")
    (root / "code.txt").write_text("\n".join(CODE * 3))
    (root / "prose.txt").write_text("\n".join(PROSE * 3))
    (root / "docs.jsonl").write_text("".join(json.dumps({"body": t}) + "\n" for t in PROSE + CODE))
    return root


def args(tiny: Path, out: Path, *extra: str) -> list[str]:
    """CLI arguments of a small calibration of the tiny model."""
    return ["catalogue", "calibrate", "--model", str(tiny / "model"), "--sae", f"res={tiny / 'sae'}",
            "--corpus", f"code={tiny / 'code.txt'}", "--corpus", f"prose={tiny / 'prose.txt'}",
            "--context", "32", "--batch-size", "4", "--threads", "1", "--no-progress", "-o", str(out), *extra]
