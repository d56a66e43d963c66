#!/usr/bin/env bash
# Creates .venv with a CPU torch (pinned: an unpinned torch pulls GBs of CUDA builds) and
# installs steerc with its test extras. Idempotent and quick when already done.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.steerc-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q torch==2.13.0
  .venv/bin/python -m pip install -q -e '.[test]'
  touch "$stamp"
fi
