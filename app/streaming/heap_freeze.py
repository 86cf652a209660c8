"""When a worker's heap is frozen and thawed: around Faust's rebalances (gc_tuning.py).

Frozen once a rebalance is over (recovery complete, Faust no longer rebalancing), when the
worker is about to process records with everything it keeps for long allocated. Thawed
when partitions are revoked and before a stop, so that what the worker lets go then
(Faust's services and buffers of the old assignment, caught in reference cycles) is
collected rather than kept for good. Table partitions' RocksDB handles do not depend on
it: an ``Rdict`` is not tracked by the collector, and Faust's store frees it by reference
counting when it drops it.

Faust may signal a generation's recovery complete after the next rebalance has begun (the
recovery then finds the generation stale and stops); the freeze waits until Faust is no
longer rebalancing, so it never catches what that rebalance lets go.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from realgeeks_sync.app.core import gc_tuning

__all__ = ["HeapFreeze", "install"]

log = logging.getLogger(__name__)


class HeapFreeze:
    """Freeze after a rebalance, thaw on revocation and stop (app: a faust.App)."""

    def __init__(self, app: Any, *, settle_s: float = 1.0, tries: int = 30) -> None:
        self.app = app
        self.settle_s = settle_s  # between checks that the rebalance is over
        self.tries = tries
        self.revocations = 0
        self._pending: asyncio.TimerHandle | None = None

    def on_revoked(self, _sender: Any, *_args: Any, **_kwargs: Any) -> None:
        """Partitions are being revoked: thaw; a freeze waiting for the last one is dropped."""
        self.revocations += 1
        self._cancel()
        gc_tuning.thaw()

    def on_recovered(self, _sender: Any, *_args: Any, **_kwargs: Any) -> None:
        """A recovery completed: freeze once the rebalance is over."""
        self._cancel()
        self._check_later(self.revocations, self.tries)

    def on_stopping(self, _sender: Any, *_args: Any, **_kwargs: Any) -> None:
        """The worker stops: thaw for good."""
        self.on_revoked(_sender)

    def _check_later(self, seen: int, tries: int) -> None:
        loop = asyncio.get_running_loop()
        self._pending = loop.call_later(self.settle_s, self._freeze_when_settled, seen, tries)

    def _freeze_when_settled(self, seen: int, tries: int) -> None:
        self._pending = None
        if self.revocations != seen:
            return  # another rebalance began: its own completion freezes
        if self.app.rebalancing:
            if tries > 1:
                self._check_later(seen, tries - 1)
            return
        started = time.perf_counter()
        frozen = gc_tuning.freeze()
        log.info(
            "heap frozen after rebalance",
            extra={"objects": frozen, "ms": round((time.perf_counter() - started) * 1000, 1)},
        )

    def _cancel(self) -> None:
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None


def install(app: Any, *, settle_s: float = 1.0) -> HeapFreeze:
    """Connect a HeapFreeze to the app's rebalance and shutdown signals."""
    heap = HeapFreeze(app, settle_s=settle_s)
    app.on_partitions_revoked.connect(heap.on_revoked)
    app.on_rebalance_complete.connect(heap.on_recovered)
    app.on_before_shutdown.connect(heap.on_stopping)
    return heap
