"""send_records: records appended to their partitions' open batches, in order."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka.errors import KafkaTimeoutError, ProducerClosed
from aiokafka.producer.message_accumulator import MessageAccumulator
from aiokafka.record.default_records import DefaultRecordBatch
from aiokafka.structs import TopicPartition

from realgeeks_sync.app.streaming import bulk_send


class FakeProducer:
    """aiokafka's producer around its real accumulator, with no sender: batches stay queued."""

    _request_timeout_ms = 40000
    _max_request_size = 1000

    def __init__(self, batch_size: int = 16384) -> None:
        self._message_accumulator = MessageAccumulator(None, batch_size, 0, 30)
        self.client = SimpleNamespace(_wait_on_metadata=self._metadata)
        self.metadata: list[str] = []
        self.sent: list[Any] = []

    async def _metadata(self, topic: str) -> None:
        self.metadata.append(topic)

    async def send(self, topic: str, value: Any, key: Any, *, partition: int) -> Any:
        self.sent.append((topic, partition, key))
        return asyncio.get_running_loop().create_future()

    def queued(self) -> list[tuple[tuple[str, int], list[bytes | None]]]:
        """Per open batch, in order: its partition and its records' keys."""
        out = []
        for tp, batches in self._message_accumulator._batches.items():
            for batch in batches:
                out.append((tuple(tp), _keys(batch)))
        return out


def _keys(batch: Any) -> list[bytes | None]:
    records = DefaultRecordBatch(bytes(batch._builder._build()))
    return [record.key for record in records]


async def test_records_go_to_their_partitions_in_order() -> None:
    producer = FakeProducer()
    records = [("t" if i < 4 else "u", i % 2, f"k{i}".encode(), b"v") for i in range(6)]
    await bulk_send.send_records(producer, records)
    assert sorted(producer.queued()) == [
        (("t", 0), [b"k0", b"k2"]),
        (("t", 1), [b"k1", b"k3"]),
        (("u", 0), [b"k4"]),
        (("u", 1), [b"k5"]),
    ]
    assert producer.metadata == ["t", "u"]  # once per topic
    assert producer.sent == []


async def test_the_futures_are_the_batches_and_the_last_record() -> None:
    producer = FakeProducer()
    records = [("t", i % 2, f"k{i}".encode(), b"v") for i in range(5)]
    futures = await bulk_send.send_records(producer, records)
    batches = {tuple(tp): q[0] for tp, q in producer._message_accumulator._batches.items()}
    # One per batch (the last record's batch too: it holds k2 before it), then k4's own.
    assert len(futures) == 3
    assert not any(f.done() for f in futures)
    batches["t", 1].done(base_offset=10)
    await asyncio.sleep(0)
    assert [f.done() for f in futures] == [False, True, False]  # t/0's batch, then t/1's
    batches["t", 0].done(base_offset=20)
    await asyncio.gather(*futures)
    last = futures[-1].result()
    assert (last.topic, last.partition, last.offset) == ("t", 0, 22)  # k4: third in its batch


async def test_a_failed_batch_fails_its_future() -> None:
    producer = FakeProducer()
    futures = await bulk_send.send_records(
        producer, [("t", 0, b"a", b"v"), ("t", 1, b"b", b"v"), ("t", 1, b"c", b"v")]
    )
    batch = producer._message_accumulator._pop_batch(TopicPartition("t", 0))  # as the sender
    batch.failure(KafkaTimeoutError())
    with pytest.raises(KafkaTimeoutError):
        await futures[0]


async def test_a_cancelled_caller_cancels_no_batch_and_flush_still_waits() -> None:
    # An agent stopping is cancelled while it waits for its acknowledgements: the batches
    # carry other records too (a TableBatch's changelog records, not awaited), and Faust's
    # commit waits on the batches through the producer's flush.
    producer = FakeProducer()
    accumulator = producer._message_accumulator
    other = await accumulator.add_message(TopicPartition("t", 0), b"x", b"v", 5)
    futures = await bulk_send.send_records(producer, [("t", 0, b"a", b"v"), ("t", 0, b"b", b"v")])
    waiter = asyncio.ensure_future(asyncio.gather(*futures))
    await asyncio.sleep(0)
    waiter.cancel()
    await asyncio.gather(waiter, return_exceptions=True)
    (batch,) = accumulator._batches[TopicPartition("t", 0)]
    assert not batch.future.cancelled() and not other.done()
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(asyncio.shield(accumulator.flush()), 0.05)  # still waits
    drained = accumulator._pop_batch(TopicPartition("t", 0))
    await asyncio.sleep(0)
    assert drained in accumulator._pending_batches  # in flight until the broker answers
    accumulator.reenqueue(drained)  # a retriable error: retried, no KeyError
    drained.done(base_offset=0)
    assert (await other).offset == 0


async def test_a_full_batch_waits_for_the_sender_and_the_records_keep_their_order() -> None:
    producer = FakeProducer(batch_size=300)  # room for three records of 60 bytes
    accumulator = producer._message_accumulator
    tp = TopicPartition("t", 0)
    records = [("t", 0, f"k{i}".encode(), b"x" * 60) for i in range(8)]
    drained: list[list[bytes | None]] = []

    async def sender() -> None:
        while True:
            await asyncio.sleep(0)
            batches = accumulator._batches.get(tp)
            if batches and batches[0]._builder.closed():
                drained.append(_keys(accumulator._pop_batch(tp)))  # ends send_records' wait

    task = asyncio.create_task(sender())
    futures = await asyncio.wait_for(bulk_send.send_records(producer, records), 5)
    task.cancel()
    assert [len(keys) for keys in drained] == [3, 3]
    keys = [k for batch in drained for k in batch] + producer.queued()[0][1]
    assert keys == [f"k{i}".encode() for i in range(8)]
    assert len(futures) == 4  # three batches, then the last record's own future


async def test_a_closed_producer_refuses() -> None:
    producer = FakeProducer()
    producer._message_accumulator._closed = True
    with pytest.raises(ProducerClosed):
        await bulk_send.send_records(producer, [("t", 0, b"a", b"v"), ("t", 0, b"b", b"v")])


async def test_a_record_over_the_request_size_goes_through_send_for_its_error() -> None:
    producer = FakeProducer()
    await bulk_send.send_records(producer, [("t", 0, b"k", b"x" * 2000)])
    assert producer.sent == [("t", 0, b"k")]
    assert producer.queued() == []


async def test_a_record_over_the_request_size_only_with_its_overhead_goes_through_send() -> None:
    # Key and value fit in 1000 bytes; with the batch header and record overhead that
    # send() counts (aiokafka's estimate) they do not, so send() must refuse it.
    producer = FakeProducer()
    await bulk_send.send_records(producer, [("t", 0, b"k", b"x" * 990), ("t", 1, b"k", b"y")])
    assert producer.sent == [("t", 0, b"k")]
    assert producer.queued() == [(("t", 1), [b"k"])]


async def test_a_full_batch_not_drained_in_time_times_out() -> None:
    producer = FakeProducer(batch_size=300)
    producer._request_timeout_ms = 50  # nothing drains: no sender runs
    records = [("t", 0, f"k{i}".encode(), b"x" * 60) for i in range(8)]
    with pytest.raises(KafkaTimeoutError):
        await asyncio.wait_for(bulk_send.send_records(producer, records), 5)
    assert [len(keys) for _, keys in producer.queued()] == [3]  # the rest never appended


async def test_a_failed_producer_refuses_with_its_error() -> None:
    producer = FakeProducer()
    producer._message_accumulator._exception = KafkaTimeoutError("the sender failed")
    with pytest.raises(KafkaTimeoutError, match="the sender failed"):
        await bulk_send.send_records(producer, [("t", 0, b"a", b"v"), ("t", 0, b"b", b"v")])
    assert producer.queued() == []
