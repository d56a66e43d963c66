#!/usr/bin/env bash
# Compile every example spec with every target into OUT_ROOT and print the sha256 of each
# output file and each exit status: run it before and after a refactor (same OUT_ROOT, same
# checkout path, since manifests record paths relative to the output) and diff the lists.
#   bash scripts/example_outputs.sh /tmp/outs > before.txt
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:?usage: example_outputs.sh OUT_ROOT}
rm -rf "$OUT" && mkdir -p "$OUT"
export HF_HUB_OFFLINE=1
targets=$(.venv/bin/python -c 'from steerc.targets import TARGET_NAMES; print(*TARGET_NAMES)')
for spec in specs/examples/*.steer; do
  name=$(basename "$spec" .steer)
  for t in $targets; do
    .venv/bin/steerc compile "$spec" -o "$OUT/$name-$t" --target "$t" --no-progress >/dev/null 2>&1
    echo "exit $? $name $t"
  done
done
(cd "$OUT" && find . -type f | LC_ALL=C sort | xargs sha256sum)
