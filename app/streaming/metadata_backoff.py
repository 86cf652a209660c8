"""A pause after each failed metadata update of aiokafka's clients, growing to a second.

aiokafka answers a failed metadata update (no broker reachable) at once, and its
producer's sender asks for the next one as soon as it hears of the failure while a
partition's leader is unknown. With the broker down under load, the worker's event loop
spun on that: 6,000 refused connections and 12,000 ERROR lines a second, two thirds of a
core (tests/integration/test_broker_outage.py, py-spy: AIOKafkaClient._md_synchronizer).
librdkafka waits between attempts (reconnect.backoff.ms, growing to
reconnect.backoff.max.ms); this does the same for the update as a whole. Those waiting
for the update (sends, fetches) wait out the pause too; the first update that succeeds
ends it.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka.client import AIOKafkaClient

from realgeeks_sync.app.streaming.broker_retry import next_pause

__all__ = ["MAX_BACKOFF_S", "install", "next_backoff"]

MAX_BACKOFF_S = 1.0
"""The longest pause between two failed updates (librdkafka's reconnect.backoff.max.ms)."""

_original: Any = None


def next_backoff(previous_s: float, base_s: float) -> float:
    """The pause after one more failure: the client's retry backoff, then doubled, at most
    ``MAX_BACKOFF_S``."""
    return next_pause(previous_s, base_s, MAX_BACKOFF_S)


def install() -> None:
    """Make every aiokafka client pause after a failed metadata update (idempotent)."""
    global _original
    if _original is not None:
        return
    _original = AIOKafkaClient._metadata_update

    async def update_or_pause(self: Any, cluster_metadata: Any, topics: Any) -> bool:
        ok: bool = await _original(self, cluster_metadata, topics)
        if ok:
            self._rgsync_md_backoff = 0.0
            return True
        pause = next_backoff(getattr(self, "_rgsync_md_backoff", 0.0), self._retry_backoff)
        self._rgsync_md_backoff = pause
        await asyncio.sleep(pause)
        return False

    AIOKafkaClient._metadata_update = update_or_pause  # type: ignore[method-assign]
