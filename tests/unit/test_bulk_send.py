"""send_records: records appended to their partitions' open batches, in order."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from realgeeks_sync.app.streaming import bulk_send


class FakeAccumulator:
    def __init__(self) -> None:
        self.added: list[tuple[tuple[str, int], bytes | None, bytes | None]] = []

    async def add_message(self, tp: Any, key: Any, value: Any, timeout: float) -> Any:
        self.added.append((tuple(tp), key, value))
        return asyncio.get_running_loop().create_future()


class FakeProducer:
    _request_timeout_ms = 40000
    _max_request_size = 1000

    def __init__(self) -> None:
        self._message_accumulator = FakeAccumulator()
        self.client = SimpleNamespace(_wait_on_metadata=self._metadata)
        self.metadata: list[str] = []
        self.sent: list[Any] = []

    async def _metadata(self, topic: str) -> None:
        self.metadata.append(topic)

    async def send(self, topic: str, value: Any, key: Any, *, partition: int) -> Any:
        self.sent.append((topic, partition, key))
        return asyncio.get_running_loop().create_future()


async def test_records_go_to_their_partitions_in_order_with_a_future_each() -> None:
    producer = FakeProducer()
    records = [("t" if i < 4 else "u", i % 2, f"k{i}".encode(), b"v") for i in range(6)]
    futures = await bulk_send.send_records(producer, records)
    assert len(futures) == 6
    added = producer._message_accumulator.added
    assert [(tp, k) for tp, k, _v in added] == [
        (("t", 0), b"k0"),
        (("t", 1), b"k1"),
        (("t", 0), b"k2"),
        (("t", 1), b"k3"),
        (("u", 0), b"k4"),
        (("u", 1), b"k5"),
    ]
    assert producer.metadata == ["t", "u"]  # once per topic
    assert producer.sent == []


async def test_a_record_over_the_request_size_goes_through_send_for_its_error() -> None:
    producer = FakeProducer()
    await bulk_send.send_records(producer, [("t", 0, b"k", b"x" * 2000)])
    assert producer.sent == [("t", 0, b"k")]
    assert producer._message_accumulator.added == []


async def test_a_record_over_the_request_size_only_with_its_overhead_goes_through_send() -> None:
    # Key and value fit in 1000 bytes; with the batch header and record overhead that
    # send() counts (aiokafka's estimate) they do not, so send() must refuse it.
    producer = FakeProducer()
    await bulk_send.send_records(producer, [("t", 0, b"k", b"x" * 990), ("t", 1, b"k", b"y")])
    assert producer.sent == [("t", 0, b"k")]
    assert producer._message_accumulator.added == [(("t", 1), b"k", b"y")]
