"""The worker's consumer fetches with the configured bounds."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

from realgeeks_sync.app.streaming import fetch_tuning


def test_every_worker_consumer_gets_the_fetch_bounds(monkeypatch: pytest.MonkeyPatch) -> None:
    fetch_tuning.install(min_bytes=65536, max_wait_ms=5)
    made: list[Any] = []

    def original(_self: Any, *_a: Any, **_kw: Any) -> Any:
        consumer = SimpleNamespace(_fetch_min_bytes=1, _fetch_max_wait_ms=1500)
        made.append(consumer)
        return consumer

    monkeypatch.setattr(fetch_tuning, "_original", original)
    consumer = AIOKafkaConsumerThread._create_worker_consumer(object(), None)  # type: ignore[arg-type]
    assert made == [consumer]
    assert (consumer._fetch_min_bytes, consumer._fetch_max_wait_ms) == (65536, 5)
