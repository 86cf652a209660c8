"""When a worker's heap is frozen and thawed: around Faust's rebalances (gc_tuning.py).

Frozen after table recovery, when the worker is about to process records with everything
it keeps for long allocated. Thawed when partitions are revoked and before a stop: Faust
then drops its table partitions' RocksDB handles and collects garbage so that they close,
and a frozen handle would never be collected.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from realgeeks_sync.app.core import gc_tuning

__all__ = ["install"]

log = logging.getLogger(__name__)


def install(app: Any) -> None:
    """Freeze on each ``on_rebalance_complete``, thaw on revocation and before shutdown."""
    app.on_rebalance_complete.connect(_freeze)
    app.on_partitions_revoked.connect(_thaw)
    app.on_before_shutdown.connect(_thaw)


def _freeze(_sender: Any, *_args: Any, **_kwargs: Any) -> None:
    started = time.perf_counter()
    frozen = gc_tuning.freeze()
    log.info(
        "heap frozen after rebalance",
        extra={"objects": frozen, "ms": round((time.perf_counter() - started) * 1000, 1)},
    )


def _thaw(_sender: Any, *_args: Any, **_kwargs: Any) -> None:
    gc_tuning.thaw()
