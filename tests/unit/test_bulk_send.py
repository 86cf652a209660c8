"""send_records: one aiokafka record batch per partition, in order, split when full."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from aiokafka.record.default_records import DefaultRecordBatch

from realgeeks_sync.app.streaming import bulk_send


class FakeAccumulator:
    _batch_size = 16384
    _compression_type = 0
    _closed = False
    _exception = None

    def __init__(self) -> None:
        self.queued: list[tuple[Any, list[tuple[bytes, bytes]]]] = []

    def _append_batch(self, builder: Any, tp: Any) -> Any:
        records = DefaultRecordBatch(bytes(builder._build()))
        self.queued.append((tuple(tp), [(r.key, r.value) for r in records]))
        return SimpleNamespace(future=asyncio.get_running_loop().create_future())


class FakeProducer:
    def __init__(self) -> None:
        self._message_accumulator = FakeAccumulator()
        self.client = SimpleNamespace(_wait_on_metadata=self._metadata)
        self.sent: list[Any] = []

    async def _metadata(self, topic: str) -> None:
        return None

    async def send(self, topic: str, value: bytes, key: bytes, *, partition: int) -> Any:
        self.sent.append((topic, partition, key))
        return asyncio.get_running_loop().create_future()


async def test_records_go_as_one_batch_per_partition_in_their_order() -> None:
    producer = FakeProducer()
    records = [("t", i % 2, f"k{i}".encode(), f"v{i}".encode()) for i in range(6)]
    sent = await bulk_send.send_records(producer, records)
    queued = producer._message_accumulator.queued
    assert [tp for tp, _ in queued] == [("t", 0), ("t", 1)]
    assert queued[0][1] == [(b"k0", b"v0"), (b"k2", b"v2"), (b"k4", b"v4")]
    assert queued[1][1] == [(b"k1", b"v1"), (b"k3", b"v3"), (b"k5", b"v5")]
    assert [count for _future, count in sent] == [3, 3]
    assert producer.sent == []


async def test_a_full_batch_is_queued_and_the_next_one_started(monkeypatch: Any) -> None:
    monkeypatch.setattr(bulk_send, "BATCH_BYTES", 1000)
    producer = FakeProducer()
    producer._message_accumulator._batch_size = 500
    records = [("t", 0, f"k{i}".encode(), b"x" * 300) for i in range(7)]
    sent = await bulk_send.send_records(producer, records)
    queued = producer._message_accumulator.queued
    keys = [k for _tp, items in queued for k, _v in items]
    assert keys == [f"k{i}".encode() for i in range(7)]  # order kept across batches
    assert len(queued) > 1 and sum(count for _f, count in sent) == 7
