"""The worker's consumer fetches with the busy bounds while records come, the idle ones when
none do."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

from realgeeks_sync.app.streaming import fetch_tuning
from realgeeks_sync.app.streaming.fetch_tuning import IDLE_WAIT_MS, adapt


class FakeFetcher:
    """What adapt uses of aiokafka's Fetcher: its bounds and the answer handler."""

    def __init__(self, answers: list[bool]) -> None:
        self._fetch_min_bytes = 1
        self._fetch_max_wait_ms = IDLE_WAIT_MS
        self.answers = answers
        self.handled: list[tuple[Any, ...]] = []

    async def _proc_fetch_request(self, *args: Any) -> bool:
        self.handled.append(args)
        return self.answers.pop(0)

    def bounds(self) -> tuple[int, int]:
        return (self._fetch_min_bytes, self._fetch_max_wait_ms)


async def test_every_worker_consumer_starts_idle_and_adapts_once_started(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fetch_tuning.install(min_bytes=65536, max_wait_ms=5)
    fetcher = FakeFetcher([True])

    def original(_self: Any, *_a: Any, **_kw: Any) -> Any:
        consumer = SimpleNamespace(_fetch_min_bytes=1, _fetch_max_wait_ms=1500, _fetcher=None)

        async def start() -> None:
            consumer._fetcher = fetcher  # aiokafka makes it in start()

        consumer.start = start
        return consumer

    monkeypatch.setattr(fetch_tuning, "_original", original)
    consumer = AIOKafkaConsumerThread._create_worker_consumer(object(), None)  # type: ignore[arg-type]
    assert (consumer._fetch_min_bytes, consumer._fetch_max_wait_ms) == (1, IDLE_WAIT_MS)
    await consumer.start()
    assert await fetcher._proc_fetch_request("assignment", 0, "request") is True
    assert fetcher.handled == [("assignment", 0, "request")]
    assert fetcher.bounds() == (65536, 5)


async def test_busy_bounds_while_records_come_idle_ones_after_a_quiet_while() -> None:
    now = [0.0]
    fetcher = FakeFetcher([True, False, False, False, True, False])
    adapt(fetcher, 65536, 50, clock=lambda: now[0])
    seen = []
    for at in (0.0, 0.05, 0.3, 0.55, 0.6, 0.65):
        now[0] = at
        await fetcher._proc_fetch_request("assignment", 0, "request")
        seen.append(fetcher.bounds())
    idle, busy = (1, IDLE_WAIT_MS), (65536, 50)
    # An empty answer under steady traffic keeps the busy bounds; half a second of them
    # makes the worker idle; the next records make it busy again.
    assert seen == [busy, busy, busy, idle, busy, busy]


async def test_a_worker_quiet_from_the_start_stays_idle() -> None:
    now = [0.0]
    fetcher = FakeFetcher([False, False])
    adapt(fetcher, 65536, 50, clock=lambda: now[0])
    for at in (0.1, 0.6):
        now[0] = at
        await fetcher._proc_fetch_request("assignment", 0, "request")
    assert fetcher.bounds() == (1, IDLE_WAIT_MS)
