"""The progress bar of a demo run: one tqdm bar on stderr over the phases and the days."""

from __future__ import annotations

import sys
from typing import Any

from tqdm import tqdm


class Progress:
    """Counts steps; shows them as a bar unless disabled."""

    def __init__(self, total: int, *, enabled: bool) -> None:
        self._bar: Any = tqdm(
            total=total,
            desc="demo data",
            unit="step",
            file=sys.stderr,
            disable=not enabled,
            dynamic_ncols=True,
        )

    def step(self, phase: str, **counts: int) -> None:
        """One step of ``phase`` done; ``counts`` are shown beside the bar."""
        self._bar.set_description(phase, refresh=False)
        if counts:
            self._bar.set_postfix(counts, refresh=False)
        self._bar.update(1)

    def close(self) -> None:
        self._bar.close()
