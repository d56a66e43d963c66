"""`Job`: everything one calibration run needs, and its fingerprint (what a resume checks)."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from steerc.catalogue.calibrate.corpus import Source


@dataclass(frozen=True)
class Job:
    """One `steerc catalogue calibrate` run. `saes` are (catalogue id, path) pairs."""

    model: str
    saes: tuple[tuple[str, str], ...]
    sources: tuple[Source, ...]
    out: Path
    max_tokens: int | None = None
    context: int = 128
    batch_size: int = 8
    dtype: str = "float32"
    device: str = "cpu"
    text_field: str = "text"
    top_k: int = 16          # contexts kept per feature (labels read all of them)
    n_contexts: int = 5      # contexts written to the catalogue
    left: int = 6            # tokens before the firing token in a context
    right: int = 4           # tokens after it
    n_logits: int = 8        # promoted / suppressed tokens written per feature
    checkpoint_every: int = 50   # batches between checkpoints of OUT.partial
    labels: tuple[tuple[str, str], ...] = ()   # (sae id or "", Neuronpedia export path)
    engine: str = "local"
    workers: int = 2
    threads: int | None = None
    progress: bool = True

    @property
    def width(self) -> int:
        return self.left + 1 + self.right

    @property
    def partial_path(self) -> Path:
        return self.out.with_name(self.out.name + ".partial")

    def fingerprint(self, sae_hashes: list[str]) -> str:
        """sha256 of what decides the statistics: model, SAE contents, corpus (paths, sizes,
        mtimes) and every option that changes windows or statistics."""
        def stamp(s: Source):
            if s.is_dataset:
                return [s.label, s.path]
            st = os.stat(s.path)
            return [s.label, os.path.abspath(s.path), st.st_size, st.st_mtime_ns]
        doc = {"model": os.path.abspath(self.model) if os.path.exists(self.model) else self.model,
               "saes": [[i, h] for (i, _), h in zip(self.saes, sae_hashes)],
               "sources": [stamp(s) for s in self.sources],
               "opts": {k: v for k, v in asdict(self).items()
                        if k in ("max_tokens", "context", "batch_size", "dtype", "text_field", "top_k", "left", "right")}}
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()
