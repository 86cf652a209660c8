"""How often the worker's consumer asks the broker for records.

Faust's consumer asks with ``fetch_max_wait_ms=1500`` and aiokafka's ``fetch_min_bytes=1``:
the broker answers as soon as one record is there. A worker reads about sixty partitions
(every agent topic), and aiokafka encodes each fetch request and decodes each answer for
all of them in Python, so at a steady 150 webhooks/s that consumer thread took a third of
the worker's CPU (py-spy, issue 13), one fetch per record or two. Asking for at least
``min_bytes`` but waiting no more than ``max_wait_ms`` bounds the fetches to a few hundred
a second whatever the rate.

The default wait is 50 ms (RGSYNC_FETCH_MAX_WAIT_MS). At 5 ms the fetches themselves and
the batches of one they hand over were most of a worker's CPU at a steady rate: at
100 webhooks/s, 6.4 ms of worker CPU per webhook against 3.7 ms at 50 ms, and at 200/s
the worker kept up only with 50 ms (ops/bench_e2e_latency.py, ops/bench_worker_rate.py).

Those bounds hold only while records come. After ``IDLE_AFTER_S`` without any, the fetcher
switches to the idle bounds (any record, or ``IDLE_WAIT_MS``): an idle worker asked twenty
empty fetches a second and spent 7.5 % of a core on them, and the first record after a
quiet spell waited out the 50 ms. The first fetch that brings records switches back. Not
after one empty fetch: a fetch asks only for the partitions with no records waiting to be
handed over, so under steady traffic many come back empty, and switching on each one made
a worker at 200 webhooks/s fetch in smaller pieces and spend more CPU per webhook.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

__all__ = ["IDLE_AFTER_S", "IDLE_WAIT_MS", "adapt", "install"]

IDLE_WAIT_MS = 500
"""The longest an idle worker's fetch waits for a first record (aiokafka's default)."""
IDLE_AFTER_S = 0.5
"""How long without records makes a worker idle (a webhook a second or fewer)."""

_settings: dict[str, int] = {}
_original: Any = None


def install(*, min_bytes: int, max_wait_ms: int) -> None:
    """Make every worker consumer Faust creates fetch with these bounds while records come,
    and with the idle bounds when none do (idempotent)."""
    global _original
    _settings.update(min_bytes=min_bytes, max_wait_ms=max_wait_ms)
    if _original is not None:
        return
    _original = AIOKafkaConsumerThread._create_worker_consumer

    def create(self: Any, *args: Any, **kwargs: Any) -> Any:
        consumer = _original(self, *args, **kwargs)
        # Read by aiokafka when the consumer starts and makes its Fetcher: idle until the
        # first records come.
        consumer._fetch_min_bytes = 1
        consumer._fetch_max_wait_ms = IDLE_WAIT_MS
        start = consumer.start

        async def start_adapted() -> None:
            await start()
            adapt(consumer._fetcher, _settings["min_bytes"], _settings["max_wait_ms"])

        consumer.start = start_adapted
        return consumer

    AIOKafkaConsumerThread._create_worker_consumer = create  # type: ignore[method-assign]


def adapt(
    fetcher: Any, min_bytes: int, max_wait_ms: int, clock: Callable[[], float] = time.monotonic
) -> None:
    """Switch ``fetcher``'s bounds after each answer: the busy ones after an answer with
    records, the idle ones once none came for ``IDLE_AFTER_S`` (aiokafka reads them for
    every request)."""
    process: Callable[..., Any] = fetcher._proc_fetch_request
    last_records = clock()

    async def process_and_adapt(*args: Any, **kwargs: Any) -> Any:
        nonlocal last_records
        got_records = await process(*args, **kwargs)
        now = clock()
        if got_records:
            last_records = now
            fetcher._fetch_min_bytes, fetcher._fetch_max_wait_ms = min_bytes, max_wait_ms
        elif now - last_records >= IDLE_AFTER_S:
            fetcher._fetch_min_bytes, fetcher._fetch_max_wait_ms = 1, IDLE_WAIT_MS
        return got_records

    fetcher._proc_fetch_request = process_and_adapt
