"""`--engine ray`: the same job on Ray Data, reduced with the same mergeable statistics.

The driver tokenises the corpus into the very batches the local engine runs (so the model
sees identical tensors) and hands them to Ray Data in waves of `checkpoint_every x workers`
batches: each wave is a dataset (`from_items`) whose `map_batches` runs over a pool of
`workers` model actors, each loading the model and SAEs and turning every `GROUP` batches
into one `Partial`, shipped back sparse (only the entries those batches touched) as
safetensors bytes. The driver merges partials as they stream in (merging is exact and
order-free, see stats.py, so the result equals the local engine's bit for bit when the
per-process thread count is the same: `--threads`; each actor uses `threads` or 1), and
after each wave writes the statistics to OUT.partial like the local engine: a rerun after a
kill continues from the last finished wave.

So the driver holds one wave of tokenised batches (about 17 bytes a token with masks) and
one copy of the statistics, whatever the corpus size. Each wave starts its actors afresh
(the model is loaded once per wave and actor): raise `--checkpoint-every` for big models.

`RAY_ADDRESS` (or `ray.init`'s default discovery) joins an existing cluster; otherwise a
local Ray is started with `workers` CPUs. Actors ask for one GPU each when `device` is cuda.
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


def _waves(job: Job, tokenizer, skip_windows: int) -> Iterator[tuple[list[dict], int]]:
    """Rows of `checkpoint_every * workers` batches at a time, and the windows done after them."""
    import pickle

    rows, done = [], skip_windows
    for b in corpus.batches(list(job.sources), tokenizer, context=job.context, batch_size=job.batch_size,
                            max_tokens=job.max_tokens, text_field=job.text_field, skip_windows=skip_windows):
        rows.append({"batch": pickle.dumps(_pack(b), protocol=5), "n": int(b.mask.sum())})
        done = int(b.window[-1]) + 1
        if len(rows) == job.checkpoint_every * job.workers:
            yield rows, done
            rows = []
    if rows:
        yield rows, done


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


def run_ray(job: Job, tokenizer, fingerprint: str) -> list[Partial]:
    """Run `job` on Ray Data; returns the reduced statistics, one per SAE."""
    ray = _require_ray()
    from safetensors.torch import load
    from tqdm import tqdm

    from steerc.catalogue.calibrate.run import load_saes, resume_state, save_checkpoint

    if not ray.is_initialized():
        if os.environ.get("RAY_ADDRESS"):
            ray.init(address=os.environ["RAY_ADDRESS"], log_to_driver=False)
        else:
            ray.init(num_cpus=job.workers * (job.threads or 1), include_dashboard=False, log_to_driver=False)
    saes = load_saes(job, "cpu")
    total, windows, tokens = resume_state(job, saes, fingerprint)
    gpu = job.device.startswith("cuda")
    ctx = ray.data.DataContext.get_current()
    ctx.execution_options.preserve_order = False  # merging is order-free
    bar = tqdm(total=job.max_tokens, initial=tokens, unit="tok", unit_scale=True, desc="calibrate (ray)",
               disable=not job.progress)
    for rows, done in _waves(job, tokenizer, windows):
        ds = ray.data.from_items(rows).map_batches(
            _Worker, fn_constructor_kwargs={"job": job}, batch_size=GROUP, batch_format="numpy",
            concurrency=job.workers, num_gpus=1 if gpu else 0, num_cpus=0 if gpu else (job.threads or 1))
        for row in ds.iter_rows():
            t = load(row["partial"])
            for i, p in enumerate(total):
                p.merge_sparse({k.split(".", 1)[1]: v for k, v in t.items() if k.startswith(f"{i}.")})
            tokens += int(row["n"])
            bar.update(int(row["n"]))
        save_checkpoint(job, total, fingerprint, done, tokens)
    bar.close()
    return total
