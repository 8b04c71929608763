"""Argument types shared by the commands: each refuses a value out of its range with argparse's
usage error (exit 2), before anything runs.

    parser.add_argument("--top", type=whole_number(1, 1000), default=10)
"""

from __future__ import annotations

import argparse
from collections.abc import Callable


def whole_number(low: int, high: int) -> Callable[[str], int]:
    """An integer from ``low`` to ``high``, both included."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is not in {low}..{high}")
        return value

    parse.__name__ = f"whole number in {low}..{high}"
    return parse
