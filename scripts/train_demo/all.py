"""Rebuild every demo artefact: data + tokenizer + LM, then the SAE, then the catalogue.

    python -m scripts.train_demo.all                                  # time-budgeted LM run
    python -m scripts.train_demo.all --steps N --decay-start S        # replay a recorded run

N and S are in demo/model/training_summary.json ("replay"). Needs the Debian `fortunes`
package and the JSON source packages pinned in demo/DATA.md.
"""

from __future__ import annotations

import argparse

from scripts.train_demo import label, train_lm, train_sae


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--decay-start", type=int, default=None)
    ap.add_argument("--minutes", type=float, default=25.0)
    args = ap.parse_args(argv)
    lm_args = ["--minutes", str(args.minutes)]
    if args.steps is not None:
        lm_args = ["--steps", str(args.steps)]
        if args.decay_start is not None:
            lm_args += ["--decay-start", str(args.decay_start)]
    for step in (lambda: train_lm.main(lm_args), lambda: train_sae.main([]),
                 lambda: label.main([])):
        rc = step()
        if rc:
            return rc
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
