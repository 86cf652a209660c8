"""Records handed to the producer's partition queues directly, without a send each.

Faust sends every record on its own: a FutureMessage, its sensors, the topic's codecs,
then aiokafka's ``send`` (metadata wait, serializers, partitioner), and only then the
append to the partition's open record batch. For a batch of webhooks that is a few
hundred records, and the profile put those sends at a sixth of a worker's CPU.
``send_records`` waits for each topic's metadata once, then appends every record (bytes
as they go on the topic, partition chosen by the caller) to its partition's open batch, in
order, as aiokafka's ``send`` ends up doing: records of one partition keep their order,
and a batch that is full waits for the sender as with ``send``. Each record gets a future
that resolves with its ``RecordMetadata`` once the broker acknowledged it (acks=all).

Without aiokafka's accumulator (another version) every record goes through ``send``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from aiokafka.record.default_records import DefaultRecordBatchBuilder
from aiokafka.structs import TopicPartition

__all__ = ["Record", "send_records"]

Record = tuple[str, int, bytes | None, bytes | None]
"""(topic name, partition, key, value): bytes as they go on the topic."""


async def send_records(producer: Any, records: Sequence[Record]) -> list[asyncio.Future[Any]]:
    """Queue ``records`` in order; one future per record, in the same order.

    ``producer`` is the running aiokafka producer (Faust's ``app.producer._ensure_producer()``).

    Raises:
        KafkaError: the producer refused a record (closed, failed, too large).
    """
    accumulator: Any = getattr(producer, "_message_accumulator", None)
    add_message = getattr(accumulator, "add_message", None)
    if add_message is None:
        return [
            await producer.send(topic, value, key, partition=partition)
            for topic, partition, key, value in records
        ]
    timeout = producer._request_timeout_ms / 1000
    max_bytes = producer._max_request_size
    ready: dict[str, None] = {}
    futures: list[asyncio.Future[Any]] = []
    for topic, partition, key, value in records:
        if topic not in ready:
            await producer.client._wait_on_metadata(topic)
            ready[topic] = None
        # The estimate send() checks (batch header and record overhead included): a
        # record it would refuse goes through it for the reason (MessageSizeTooLarge).
        if DefaultRecordBatchBuilder.estimate_size_in_bytes(key, value, []) > max_bytes:
            futures.append(await producer.send(topic, value, key, partition=partition))
            continue
        tp = TopicPartition(topic, partition)
        futures.append(await add_message(tp, key, value, timeout))
    return futures
