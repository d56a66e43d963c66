"""Rebuild every demo artefact: data + tokenizer + LM, then the SAE, then the catalogue
(the calibration corpus, then `steerc catalogue calibrate` through catalogue.sh).

    python -m scripts.train_demo.all                       # time-budgeted LM run
    python -m scripts.train_demo.all <replay arguments>    # replay a recorded run

Every argument goes to `train_lm` (see `python -m scripts.train_demo.train_lm --help`); the
replay arguments are in demo/model/training_summary.json ("replay"). Needs the Debian
`fortunes` package and the JSON source packages pinned in demo/DATA.md.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from scripts.train_demo import calibration_corpus, train_lm, train_sae

CATALOGUE_SH = Path(__file__).with_name("catalogue.sh")


def main(argv=None) -> int:
    lm_args = list(sys.argv[1:] if argv is None else argv)
    if lm_args[:1] in (["-h"], ["--help"]):
        print(__doc__)
        return 0
    for step in (lambda: train_lm.main(lm_args), lambda: train_sae.main([]),
                 lambda: calibration_corpus.main([]),
                 lambda: subprocess.call(["bash", str(CATALOGUE_SH)], env={**os.environ,
                                                                            "PYTHON": sys.executable})):
        rc = step()
        if rc:
            return rc
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
