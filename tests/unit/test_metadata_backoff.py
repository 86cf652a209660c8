"""aiokafka's clients pause after a failed metadata update, growing to a second, and stop
pausing once one succeeds (metadata_backoff.py)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka.client import AIOKafkaClient
from hypothesis import given
from hypothesis import strategies as st

from realgeeks_sync.app.streaming import metadata_backoff
from realgeeks_sync.app.streaming.metadata_backoff import MAX_BACKOFF_S, next_backoff


@given(st.floats(0, 10), st.floats(0.001, 0.5))
def test_a_pause_is_never_shorter_than_the_clients_backoff_nor_longer_than_a_second(
    previous: float, base: float
) -> None:
    pause = next_backoff(previous, base)
    assert base <= pause <= MAX_BACKOFF_S
    assert pause == min(MAX_BACKOFF_S, max(base, previous * 2))


def test_failed_updates_pause_longer_each_time_and_a_success_ends_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    metadata_backoff.install()
    results = iter([False, False, False, False, False, True, False])
    pauses: list[float] = []

    async def scripted(self: Any, cluster: Any, topics: Any) -> bool:
        return next(results)

    async def record(seconds: float) -> None:
        pauses.append(seconds)

    monkeypatch.setattr(metadata_backoff, "_original", scripted)
    monkeypatch.setattr(metadata_backoff.asyncio, "sleep", record)

    async def updates() -> list[bool]:
        client = AIOKafkaClient(bootstrap_servers="127.0.0.1:1", retry_backoff_ms=100)
        return [await client._metadata_update(client.cluster, set()) for _ in range(7)]

    assert asyncio.run(updates()) == [False] * 5 + [True, False]
    assert pauses == [0.1, 0.2, 0.4, 0.8, 1.0, 0.1]


def test_a_client_with_no_reachable_broker_pauses_between_updates() -> None:
    metadata_backoff.install()

    async def two_updates() -> float:
        client = AIOKafkaClient(bootstrap_servers="127.0.0.1:1", retry_backoff_ms=50)
        loop = asyncio.get_running_loop()
        started = loop.time()
        # No brokers known: aiokafka's own update fails at once, without a connection.
        assert not await client._metadata_update(client.cluster, set())
        assert not await client._metadata_update(client.cluster, set())
        return loop.time() - started

    assert asyncio.run(two_updates()) >= 0.05 + 0.1
