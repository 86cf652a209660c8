"""Records of one partition handed to the producer as one record batch.

Faust sends every record on its own: a FutureMessage, its sensors, the topic's codecs,
then aiokafka's ``send`` (metadata check, partitioner, an append to the partition's open
batch, a future). For a batch of webhooks that is a few hundred records, nearly all to
the one partition of their site, and the profile put those sends at a sixth of a worker's
CPU. ``send_records`` groups the records by topic and partition in their order, builds
one aiokafka record batch per group (up to ``BATCH_BYTES``, more when larger) and queues
it behind what is already queued for that partition, so the order per partition is the
order of the calls. It returns one future per record batch; each resolves with the
batch's ``RecordMetadata`` (its first offset) once the broker acknowledged it (acks=all).

aiokafka's public ``send_batch`` waits until the partition's queue is empty before it
queues a batch (a round trip to the broker per call); the queue is appended to directly,
as ``send`` itself does. Without those internals (another aiokafka) every record goes
through ``send``.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Sequence
from typing import Any

from aiokafka.errors import ProducerClosed
from aiokafka.producer.message_accumulator import BatchBuilder
from aiokafka.structs import TopicPartition

__all__ = ["BATCH_BYTES", "Record", "Sent", "send_records"]

# A record batch of this many bytes at most (a larger single record gets a batch of its
# own); the broker takes batches up to the topics' max.message.bytes (app/core/sizes.py).
BATCH_BYTES = 1024 * 1024

Record = tuple[str, int, bytes | None, bytes | None]
"""(topic name, partition, key, value): bytes as they go on the topic."""


Sent = tuple[asyncio.Future[Any], int]
"""A future resolving with the RecordMetadata of the first record, and how many it holds."""


async def send_records(producer: Any, records: Sequence[Record]) -> list[Sent]:
    """Queue ``records`` (in order per partition); one future per record batch.

    ``producer`` is the running aiokafka producer (Faust's ``app.producer._ensure_producer()``).

    Raises:
        KafkaError: the producer refused a record (closed, too large for any batch).
    """
    groups: dict[tuple[str, int], list[tuple[bytes | None, bytes | None]]] = {}
    for topic, partition, key, value in records:
        groups.setdefault((topic, partition), []).append((key, value))
    accumulator: Any = getattr(producer, "_message_accumulator", None)
    append_batch = getattr(accumulator, "_append_batch", None)
    sent: list[Sent] = []
    for (topic, partition), items in groups.items():
        if append_batch is None:
            for key, value in items:
                sent.append((await producer.send(topic, value, key, partition=partition), 1))
            continue
        await producer.client._wait_on_metadata(topic)
        if accumulator._closed:
            raise ProducerClosed()
        if accumulator._exception is not None:
            raise copy.copy(accumulator._exception)
        tp = TopicPartition(topic, partition)
        builder = _builder(accumulator)
        for key, value in items:
            if builder.append(timestamp=None, key=key, value=value) is not None:
                continue
            if builder._relative_offset:  # full: queue it, start the next
                sent.append(_queue(append_batch, builder, tp))
                builder = _builder(accumulator)
                if builder.append(timestamp=None, key=key, value=value) is not None:
                    continue
            # Too large even alone: send() refuses it with the reason.
            sent.append((await producer.send(topic, value, key, partition=partition), 1))
        if builder._relative_offset:
            sent.append(_queue(append_batch, builder, tp))
    return sent


def _builder(accumulator: Any) -> BatchBuilder:
    return BatchBuilder(
        max(BATCH_BYTES, accumulator._batch_size),
        accumulator._compression_type,
        is_transactional=False,
    )


def _queue(append_batch: Any, builder: BatchBuilder, tp: TopicPartition) -> Sent:
    count = builder._relative_offset
    builder.close()  # nothing else is added to it: its records are exactly ours
    batch = append_batch(builder, tp)
    return batch.future, count
