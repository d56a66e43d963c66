#!/usr/bin/env bash
# The README's first command: set up, compile one example spec against the shipped demo
# model, and show what `steerc verify` measures. Works from a fresh clone (no state outside
# the repository); a few minutes on 2 cores after setup.
#   bash scripts/demo.sh [EXAMPLE]      # EXAMPLE: a name in specs/examples/ (default no_code)
set -euo pipefail
cd "$(dirname "$0")/.."
example=${1:-no_code}
spec=specs/examples/$example.steer
for f in demo/model/config.json demo/catalogue.json "$spec"; do
  if [ ! -e "$f" ]; then
    echo "demo.sh: $f is missing (the demo artefacts ship in demo/; see demo/DATA.md)" >&2
    exit 1
  fi
done
bash scripts/setup.sh
export TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1
echo "\$ steerc compile $spec -o build/$example --force"
.venv/bin/steerc compile "$spec" -o "build/$example" --force --no-progress
echo
echo "\$ steerc verify build/$example --json build/$example.verify.json --plot build/$example.verify.png"
.venv/bin/steerc verify "build/$example" --json "build/$example.verify.json" --plot "build/$example.verify.png"
