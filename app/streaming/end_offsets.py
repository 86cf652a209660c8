"""The end offsets of partitions, asked of their leaders (not a consumer's cached view).

The dialer's timer needs how far sync.optouts went at the moment it sends a tick
(app/domain/dialing/gate.py). Faust's consumer knows an end only as of its last fetch of
the partition, and asking the broker through it waits on its thread; a librdkafka
consumer of our own, never subscribed and never committing, asks the leader directly.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable

from confluent_kafka import Consumer, KafkaException, TopicPartition

from realgeeks_sync.app.core.settings import Settings
from realgeeks_sync.app.streaming.kafka_config import librdkafka_config

__all__ = ["EndOffsets", "EndOffsetsError"]


class EndOffsetsError(Exception):
    """The broker did not say where a partition ends (down, unreachable, too slow)."""


class EndOffsets:
    """Asks the broker for the end offset (high watermark) of partitions of a topic."""

    def __init__(self, settings: Settings, *, timeout_s: float = 5.0) -> None:
        self._settings = settings
        self._timeout_s = timeout_s
        self._consumer: Consumer | None = None
        self._lock = threading.Lock()  # librdkafka handles are not for two threads at once

    async def ask(self, topic: str, partitions: Iterable[int]) -> dict[int, int]:
        """The end offset of each partition of ``topic`` (full name).

        Raises:
            EndOffsetsError: the broker gave no answer within the timeout, or an error.
        """
        return await asyncio.to_thread(self._ask, topic, sorted(set(partitions)))

    async def close(self) -> None:
        """Close the consumer (a later ``ask`` opens a new one)."""
        await asyncio.to_thread(self._close)

    def _ask(self, topic: str, partitions: list[int]) -> dict[int, int]:
        with self._lock:
            if self._consumer is None:
                self._consumer = Consumer(
                    librdkafka_config(
                        self._settings,
                        **{
                            "group.id": f"{self._settings.app_id}-end-offsets",
                            "enable.auto.commit": False,
                        },
                    )
                )
            ends: dict[int, int] = {}
            for partition in partitions:
                try:
                    _low, high = self._consumer.get_watermark_offsets(
                        TopicPartition(topic, partition), timeout=self._timeout_s, cached=False
                    )
                except KafkaException as exc:
                    raise EndOffsetsError(f"end of {topic}[{partition}]: {exc}") from exc
                if high < 0:
                    raise EndOffsetsError(f"end of {topic}[{partition}] unknown ({high})")
                ends[partition] = high
            return ends

    def _close(self) -> None:
        with self._lock:
            if self._consumer is not None:
                self._consumer.close()
                self._consumer = None
