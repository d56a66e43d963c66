"""Exports of a spec to other tools' steering formats (`steerc export`).

    lmeval   lm-evaluation-harness `--model steered`: a .pt of steering vectors or a .csv
"""
