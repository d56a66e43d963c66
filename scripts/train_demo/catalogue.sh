#!/usr/bin/env bash
# Rebuild demo/catalogue.json with the user-facing command, on the labelled corpus in
# demo/calibration/ (written by `python -m scripts.train_demo.calibration_corpus`):
# format tags from prose/code/json, topic tags from five stdlib areas (code), entity tags
# from five AWS services (botocore JSON). docs/demo.md "Catalogue" explains the result.
# One thread, so the bytes do not depend on the machine's core count.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-.venv/bin/python}
C=demo/calibration
corpus=(--corpus "prose=$C/prose.jsonl" --corpus "code=$C/code.jsonl" --corpus "json=$C/json.jsonl")
for t in asyncio email http unittest xml; do corpus+=(--corpus "code,topic:$t=$C/topic-$t.jsonl"); done
for e in ec2 dynamodb lambda iam sqs; do corpus+=(--corpus "json,entity:$e=$C/entity-$e.jsonl"); done
exec "$PY" -m steerc catalogue calibrate --model ./demo/model --sae res2=demo/saes/blocks.2.hook_resid_post \
    "${corpus[@]}" --context 128 --batch-size 16 --threads 1 "$@" -o demo/catalogue.json
