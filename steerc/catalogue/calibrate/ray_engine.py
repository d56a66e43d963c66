"""`--engine ray`: the same job on Ray Data, reduced with the same mergeable statistics.

The driver tokenises the corpus into the very batches the local engine runs (so the model
sees identical tensors) and hands them to Ray Data as rows (`from_items`); `map_batches`
runs them over a pool of `workers` model actors, each loading the model and SAEs once and
turning every `GROUP` batches into one `Partial`, shipped back sparse (only the entries
those batches touched) as safetensors bytes. The driver merges partials as they stream in: merging is exact
and order-free (see stats.py), so the result equals the local engine's bit for bit when the
per-process thread count is the same (`--threads`; each actor uses `threads` or 1).

`RAY_ADDRESS` (or `ray.init`'s default discovery) joins an existing cluster; otherwise a
local Ray is started with `workers` CPUs. Actors ask for one GPU each when `device` is cuda.
The tokenised corpus passes through the driver's memory into Ray's object store (about 17
bytes a token with masks; Ray spills to disk), so unlike the local engine this one's driver
memory grows with the corpus; the statistics live on the driver. There is no resume: a Ray run is restarted whole.
"""

from __future__ import annotations

import os
from typing import Iterator

from steerc.catalogue.calibrate import corpus
from steerc.catalogue.calibrate.job import Job
from steerc.catalogue.calibrate.stats import Partial
from steerc.diagnostics import Diagnostic, DiagnosticError

E_RAY = "E147"
GROUP = 8


def _require_ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as e:
        raise DiagnosticError([Diagnostic(E_RAY, f"--engine ray needs Ray Data, which is not installed ({e.name} is missing)",
                                          hint="pip install 'steerc[ray]' (or use the default local engine)")])
    return ray


def _pack(batch: corpus.Batch) -> dict:
    return {"ids": batch.ids.numpy(), "attn": batch.attn.numpy(), "mask": batch.mask.numpy(),
            "window": batch.window.numpy(), "source": batch.source.numpy()}


def _rows(job: Job, tokenizer) -> Iterator[dict]:
    import pickle

    for b in corpus.batches(list(job.sources), tokenizer, context=job.context, batch_size=job.batch_size,
                            max_tokens=job.max_tokens, text_field=job.text_field):
        yield {"batch": pickle.dumps(_pack(b), protocol=5), "n": int(b.mask.sum())}


class _Worker:
    """A Ray actor: model + SAEs loaded once; one batch in, its partial statistics out."""

    def __init__(self, job: Job):
        import torch

        from steerc.catalogue.calibrate.model import Encoder, load_model
        from steerc.catalogue.calibrate.run import load_saes

        torch.set_num_threads(job.threads or 1)
        self.job = job
        model, _ = load_model(job.model, dtype=job.dtype, device=job.device)
        self.saes = load_saes(job, "cpu")
        self.encoder = Encoder(model, self.saes, job.device)

    def __call__(self, rows: dict) -> dict:
        import pickle

        import numpy as np
        import torch
        from safetensors.torch import save

        from steerc.catalogue.calibrate.run import add_batch, new_partials

        parts = new_partials(self.job, self.saes)
        for blob in rows["batch"]:
            b = pickle.loads(blob)
            batch = corpus.Batch(*(torch.from_numpy(b[k]) for k in ("ids", "attn", "mask", "window", "source")), 0)
            add_batch(self.encoder, parts, batch, self.job.left)
        blob = save({f"{i}.{k}": v for i, p in enumerate(parts) for k, v in p.to_sparse().items()})
        return {"partial": np.array([blob], dtype=object), "n": np.array([int(rows["n"].sum())])}


def run_ray(job: Job, tokenizer) -> list[Partial]:
    """Run `job` on Ray Data; returns the reduced statistics, one per SAE."""
    ray = _require_ray()
    from safetensors.torch import load
    from tqdm import tqdm

    from steerc.catalogue.calibrate.run import load_saes, new_partials

    if not ray.is_initialized():
        if os.environ.get("RAY_ADDRESS"):
            ray.init(address=os.environ["RAY_ADDRESS"], log_to_driver=False)
        else:
            ray.init(num_cpus=job.workers * (job.threads or 1), include_dashboard=False, log_to_driver=False)
    saes = load_saes(job, "cpu")
    total = new_partials(job, saes)
    gpu = job.device.startswith("cuda")
    ctx = ray.data.DataContext.get_current()
    ctx.execution_options.preserve_order = False  # merging is order-free
    ds = ray.data.from_items(list(_rows(job, tokenizer)), override_num_blocks=None)
    ds = ds.map_batches(_Worker, fn_constructor_kwargs={"job": job}, batch_size=GROUP, batch_format="numpy",
                        concurrency=job.workers, num_gpus=1 if gpu else 0, num_cpus=0 if gpu else (job.threads or 1))
    bar = tqdm(total=job.max_tokens, unit="tok", unit_scale=True, desc="calibrate (ray)", disable=not job.progress)
    for row in ds.iter_rows():
        t = load(row["partial"])
        for i, p in enumerate(total):
            p.merge_sparse({k.split(".", 1)[1]: v for k, v in t.items() if k.startswith(f"{i}.")})
        bar.update(int(row["n"]))
    bar.close()
    return total
