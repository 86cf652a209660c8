"""The wall clock the dialer and the receipt times go by (a file a drill or test moves)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

__all__ = ["business_clock"]


def business_clock(clock_file: Path | None) -> Callable[[], float]:
    """Unix seconds: ``time.time``, or the number written in ``clock_file`` when one is set.

    Only what a person's day depends on reads it (calling hours, a lead's age, receipt
    times); signatures and timeouts always use the real clock.
    """
    if clock_file is None:
        return time.time

    def now() -> float:
        try:
            return float(clock_file.read_text().strip())
        except (OSError, ValueError):
            return time.time()

    return now
