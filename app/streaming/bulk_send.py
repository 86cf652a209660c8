"""Records handed to the producer's partition queues directly, without a send each.

Faust sends every record on its own: a FutureMessage, its sensors, the topic's codecs,
then aiokafka's ``send`` (metadata wait, serializers, partitioner), and only then the
append to the partition's open record batch. For a batch of webhooks that is a few
hundred records, and the profile put those sends at a sixth of a worker's CPU.
``send_records`` waits for each topic's metadata once, then appends every record (bytes
as they go on the topic, partition chosen by the caller) to its partition's open batch, in
order, as aiokafka's ``send`` ends up doing: records of one partition keep their order,
and a batch that is full waits for the sender as with ``send``.

Callers wait for every record, and read the offset of a table's last one only, so a record
gets no future of its own: the futures returned are those of the producer batches the
records went into (each resolves once the broker acknowledged the whole batch, acks=all,
or fails with the batch; shielded, so cancelling one cancels no batch), then the last
record's own. A future and a ``RecordMetadata`` per record were a twentieth of a worker's
CPU in a backlog (py-spy: ``MessageBatch.done``, ``create_future`` and the metadata tuples).

Without aiokafka's accumulator (another version) every record goes through ``send``.
"""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Sequence
from typing import Any

from aiokafka.errors import KafkaTimeoutError, ProducerClosed
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from aiokafka.structs import TopicPartition

__all__ = ["Record", "send_records"]

Record = tuple[str, int, bytes | None, bytes | None]
"""(topic name, partition, key, value): bytes as they go on the topic."""


async def send_records(producer: Any, records: Sequence[Record]) -> list[asyncio.Future[Any]]:
    """Queue ``records`` in order; returns futures that resolve once every one is acknowledged.

    The last future is the last record's own and resolves with its ``RecordMetadata``.
    ``producer`` is the running aiokafka producer (Faust's ``app.producer._ensure_producer()``).

    Raises:
        KafkaError: the producer refused a record (closed, failed, too large).
    """
    accumulator: Any = getattr(producer, "_message_accumulator", None)
    add_message = getattr(accumulator, "add_message", None)
    if add_message is None or not hasattr(accumulator, "_batches"):
        return [
            await producer.send(topic, value, key, partition=partition)
            for topic, partition, key, value in records
        ]
    timeout = producer._request_timeout_ms / 1000
    max_bytes = producer._max_request_size
    ready: dict[str, None] = {}
    batches: dict[int, asyncio.Future[Any]] = {}  # id(batch future) -> batch future, in order
    futures: list[asyncio.Future[Any]] = []  # records that went through send()
    last = len(records) - 1
    for i, (topic, partition, key, value) in enumerate(records):
        if topic not in ready:
            await producer.client._wait_on_metadata(topic)
            ready[topic] = None
        # The estimate send() checks (batch header and record overhead included): a
        # record it would refuse goes through it for the reason (MessageSizeTooLarge).
        if DefaultRecordBatchBuilder.estimate_size_in_bytes(key, value, []) > max_bytes:
            futures.append(await producer.send(topic, value, key, partition=partition))
            continue
        tp = TopicPartition(topic, partition)
        if i == last:
            futures.append(await add_message(tp, key, value, timeout))
        else:
            done = await _append(accumulator, tp, key, value, timeout)
            batches.setdefault(id(done), done)
    # Shielded: a caller cancelled while it waits (an agent stopping) must not cancel a
    # batch that other records share. aiokafka's flush would take a cancelled batch for
    # sent, and its pending-batch bookkeeping would break on the batch's next retry.
    return [*(asyncio.shield(done) for done in batches.values()), *futures]


async def _append(
    accumulator: Any, tp: TopicPartition, key: bytes | None, value: bytes | None, timeout: float
) -> asyncio.Future[Any]:
    """``add_message`` without a future for the record: returns its batch's future.

    The same steps as aiokafka's ``MessageAccumulator.add_message``: a closed or failed
    producer raises, a new batch is opened when the partition has none, a full batch wakes
    the sender and waits until it is drained (at most ``timeout`` seconds).
    """
    while True:
        if accumulator._closed:
            raise ProducerClosed()
        if accumulator._exception is not None:
            raise copy.copy(accumulator._exception)
        pending = accumulator._batches.get(tp)
        if pending:
            batch = pending[-1]
        else:
            batch = accumulator._append_batch(accumulator.create_builder(), tp)
        if batch._builder.append(timestamp=None, key=key, value=value) is not None:
            return batch.future
        if not accumulator._waiter_future.done():
            accumulator._waiter_future.set_result(None)
        started = time.monotonic()
        await batch.wait_drain(timeout)
        timeout -= time.monotonic() - started
        if timeout <= 0:
            raise KafkaTimeoutError()
