"""Typed command-line values: whole numbers with a range, checked when arguments are parsed.

`type=int` alone takes `-3`, `0`, a 23-digit number and even `１` (Python's int() reads
fullwidth and Arabic-Indic digits); each then failed deep inside a command. A value out of
range is a usage error (exit 2) naming the flag, in the command's `--format`.
"""

from __future__ import annotations

import argparse
import re
from typing import Callable

_INT = re.compile(r"[+-]?[0-9]{1,18}")  # ASCII digits only; 18 digits can never overflow an int64


def int_range(lo: int, hi: int) -> Callable[[str], int]:
    """An argparse `type` taking whole numbers `lo <= n <= hi` written in ASCII digits."""

    def parse(text: str) -> int:
        if not _INT.fullmatch(text.strip()):
            raise argparse.ArgumentTypeError(f"'{text[:40]}' is not a whole number (digits 0-9)")
        value = int(text)
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"{value} is out of range: expected {lo} to {hi}")
        return value

    parse.__name__ = "whole number"
    return parse


def positive_float(hi: float) -> Callable[[str], float]:
    """An argparse `type` taking decimal numbers `0 < x <= hi` (no nan, no infinity)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text[:40]}' is not a number") from None
        if not 0 < value <= hi:  # also refuses nan
            raise argparse.ArgumentTypeError(f"{text[:40]} is out of range: expected a number above 0, at most {hi:g}")
        return value

    parse.__name__ = "number"
    return parse


# The ranges: each far past any sensible value, so that nothing downstream overflows.
COUNT = int_range(1, 1_000_000)          # --top, --limit, --max-windows, --max-new-tokens
JOBS = int_range(1, 256)                  # --jobs: threads
WIDTH = int_range(1, 1 << 40)             # --d-sae: features of an SAE
TOKENS = int_range(1, 1 << 50)            # catalogue calibrate --max-tokens
STRENGTH = positive_float(1000.0)   # trace --strength: residual norms
