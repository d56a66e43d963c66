"""Named directions (`direction NAME = file "..." | mean "A" - mean "B" at layer L`).

files (vector files -> per-layer vectors), meandiff (differences of means on the base model),
sae (a direction as a one-feature linear SAE, so every lowering works on it unchanged),
build (a program's direction bindings -> those SAEs). docs/language.md "Directions".
"""
