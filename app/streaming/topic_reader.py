"""Read a whole topic, from its first record to its end at the time of the call (CLI tools)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from realgeeks_sync.app.core.settings import Settings
from realgeeks_sync.app.streaming.kafka_config import librdkafka_config

__all__ = ["read_records"]


def read_records(
    settings: Settings, topic: str, *, reader: str, timeout_s: float = 10.0
) -> Iterator[dict[str, Any]]:
    """Every JSON object on ``topic`` (full name), partition by partition in offset order.

    ``reader`` names the consumer group (nothing is committed). Records that are not JSON
    objects are skipped.
    """
    consumer = Consumer(
        librdkafka_config(
            settings,
            **{
                "group.id": f"{settings.app_id}-{reader}",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
            },
        )
    )
    try:
        meta = consumer.list_topics(topic, timeout=timeout_s).topics.get(topic)
        if meta is None or not meta.partitions:
            return
        ends: dict[int, int] = {}
        starts: dict[int, int] = {}
        for p in meta.partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout_s)
            if high > low:
                starts[p], ends[p] = low, high
        if not ends:
            return
        consumer.assign([TopicPartition(topic, p, starts[p]) for p in ends])
        remaining = dict(ends)
        idle = 0
        while remaining and idle < 50:
            msg = consumer.poll(0.2)
            if msg is None or msg.error():
                idle += 1
                continue
            idle = 0
            partition, offset = msg.partition() or 0, msg.offset() or 0
            if offset + 1 >= remaining.get(partition, 0):
                remaining.pop(partition, None)
            try:
                record = json.loads(msg.value() or b"")
            except ValueError:
                continue
            if isinstance(record, dict):
                yield record
    finally:
        consumer.close()
