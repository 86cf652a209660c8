"""The handle agents and routes share: the Faust app, its topics and tables, and the
writes every agent makes (records acknowledged, dead letters, partitions by site)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import faust
from faust.types import TP

from realgeeks_sync.app.core import json_codec
from realgeeks_sync.app.core.metrics import Metrics
from realgeeks_sync.app.core.settings import Settings
from realgeeks_sync.app.core.sites import SiteDirectory
from realgeeks_sync.app.domain.deadletters import deadletter_record
from realgeeks_sync.app.streaming.broker_retry import write_until_acknowledged
from realgeeks_sync.app.streaming.bulk_send import Record, send_records
from realgeeks_sync.app.streaming.caller_directory import CallerDirectory
from realgeeks_sync.app.streaming.partition_sequence import PartitionSequence
from realgeeks_sync.app.streaming.partitioning import site_of_key, site_partition
from realgeeks_sync.app.streaming.publisher import KafkaPublisher

__all__ = ["Pipeline", "Tables", "Topics"]

log = logging.getLogger(__name__)


@dataclass
class Topics:
    """Faust handles for every topic (values are raw UTF-8 JSON bytes)."""

    raw_realgeeks: faust.TopicT
    raw_elevenlabs: faust.TopicT
    leads: faust.TopicT
    activities: faust.TopicT
    calls_context: faust.TopicT
    activities_outbound: faust.TopicT
    deadletter: faust.TopicT
    optouts: faust.TopicT
    conversations: faust.TopicT
    dialer_events: faust.TopicT
    leads_outbound: faust.TopicT
    call_outcomes: faust.TopicT
    callers: faust.TopicT


@dataclass
class Tables:
    """RocksDB-backed tables with Kafka changelogs (tables/catalog.py: what each holds)."""

    processed_messages: Any
    identity_index: Any
    lead_snapshots: Any
    users: Any
    do_not_call: Any
    dialer_leads: Any
    dialer_sites: Any
    conversations: Any
    lead_stories: Any
    site_days: Any
    activity_outbox: Any
    conversation_outcomes: Any
    lead_calls: Any


@dataclass
class Pipeline:
    """The app, its topics and tables, and the objects agents and views share."""

    settings: Settings
    app: faust.App
    metrics: Metrics
    topics: Topics
    tables: Tables
    publisher: KafkaPublisher
    # Agents process each partition's offsets without holes (app/streaming/partition_sequence.py).
    sequence: PartitionSequence
    # partition -> received_at (epoch s) of the message being processed; for sync lag.
    in_flight: dict[TP, float] = field(default_factory=dict)
    last_processed_at: float = 0.0
    # The cheap authenticated Real Geeks call behind /health (set by the writer agent).
    realgeeks_probe: Callable[[], Awaitable[None]] | None = None
    # Wall clock for the dialer's calling window; tests pass a clock they move.
    clock: Callable[[], float] = time.time
    # Full names of the topics whose records go to their site's partition.
    site_partitioned: frozenset[str] = frozenset()
    # Every lead's numbers and call variables, on this worker (app/streaming/caller_directory.py).
    caller_directory: CallerDirectory | None = None
    # The sites in force (app/core/sites.py): per-site secrets, logins and dialers.
    sites: SiteDirectory | None = None
    # partition -> the lock on its leads' call contexts (see ``context_lock``).
    context_locks: dict[int, asyncio.Lock] = field(default_factory=dict)

    def context_lock(self, partition: int) -> asyncio.Lock:
        """The lock two agents take to write a partition's call contexts: normalize_leads
        (a batch, whose table writes wait in a TableBatch until it is sent) and
        track_lead_calls. Held from the decision to the acknowledged outputs, so neither
        decides on what the other has decided but not yet written, and calls.context
        receives contexts in the order they were decided."""
        lock = self.context_locks.get(partition)
        if lock is None:
            lock = self.context_locks[partition] = asyncio.Lock()
        return lock

    async def send(self, topic: faust.TopicT, key: str, value: dict[str, Any]) -> Any:
        """Send one JSON record; returns the future of its acknowledgement.

        Records of site-partitioned topics go to their site's partition
        (app/streaming/partitioning.py), whoever sends them.
        """
        data = json_codec.dumps_sorted(value)
        partition = self._site_partition(topic.get_topic_name(), key)
        return await topic.send(key=key.encode("utf-8"), value=data, partition=partition)

    def _site_partition(self, topic_name: str, key: str) -> int | None:
        """The partition of the key's site for a site-partitioned topic, else None."""
        if topic_name not in self.site_partitioned:
            return None
        return site_partition(site_of_key(key), self.settings.partitions)

    async def write(
        self, records: Sequence[tuple[faust.TopicT, str, dict[str, Any]]], *, what: str
    ) -> None:
        """Send records and wait until the broker acknowledged every one.

        Broker refusals are retried (app/streaming/broker_retry.py): a repeat is harmless
        downstream, a record dropped after an acknowledged webhook is not.
        """

        async def attempt() -> None:
            # Records of site-partitioned topics (nearly all) go straight to the producer's
            # partition queues (app/streaming/bulk_send.py); the rest through Faust.
            bulk: list[Record] = []
            futures = []
            for topic, key, value in records:
                name = topic.get_topic_name()
                partition = self._site_partition(name, key)
                if partition is None:
                    futures.append(await self.send(topic, key, value))
                else:
                    bulk.append(
                        (name, partition, key.encode("utf-8"), json_codec.dumps_sorted(value))
                    )
            if bulk:
                producer = self.app.producer._ensure_producer()  # type: ignore[attr-defined]
                futures += await send_records(producer, bulk)
            await asyncio.gather(*futures)

        await write_until_acknowledged(attempt, what=what, on_retry=self.count_write_retry)

    async def write_to_every_partition(
        self, topic: faust.TopicT, key: str, value: dict[str, Any], *, what: str
    ) -> int:
        """Send one record to each of the ``partitions`` partitions of ``topic`` and wait
        until the broker acknowledged every copy; returns how many.

        For a decision about every site (pause every site): each site's partition, whichever
        worker holds it, reads it in order with the site's own records, sites never seen
        included. Retried whole, like ``write`` (a second copy changes nothing).
        """
        data = json_codec.dumps_sorted(value)
        name = topic.get_topic_name()
        bulk: list[Record] = [
            (name, partition, key.encode("utf-8"), data)
            for partition in range(self.settings.partitions)
        ]

        async def attempt() -> None:
            producer = self.app.producer._ensure_producer()  # type: ignore[attr-defined]
            await asyncio.gather(*await send_records(producer, bulk))

        await write_until_acknowledged(attempt, what=what, on_retry=self.count_write_retry)
        return len(bulk)

    def count_write_retry(self, _exc: BaseException) -> None:
        """Count a broker write retried (``on_retry`` of app/streaming/broker_retry.py)."""
        self.metrics.sync_errors.labels("KafkaWriteError").inc()

    async def deadletter(
        self,
        event: faust.EventT,
        error: BaseException,
        *,
        error_type: str | None = None,
        attempts: int = 1,
        retriable: bool = False,
    ) -> None:
        """Send the event's message to sync.deadletter with the reason, and wait for the ack."""
        record = self.deadletter_record(
            event, error, error_type=error_type, attempts=attempts, retriable=retriable
        )
        await self.write([record], what="dead letter")

    def deadletter_record(
        self,
        event: faust.EventT,
        error: BaseException,
        *,
        error_type: str | None = None,
        attempts: int = 1,
        retriable: bool = False,
    ) -> tuple[faust.TopicT, str, dict[str, Any]]:
        """The sync.deadletter record for the event's message, counted and logged (not sent)."""
        msg = event.message
        record = deadletter_record(
            topic=msg.topic,
            key=msg.key,
            value=msg.value,
            error=error,
            error_type=error_type,
            attempts=attempts,
            retriable=retriable,
        )
        self.metrics.deadletters.labels(msg.topic, record["error_type"]).inc()
        self.metrics.sync_errors.labels(record["error_type"]).inc()
        log.warning(
            "dead-lettered",
            extra={
                "topic": msg.topic,
                "partition": msg.partition,
                "offset": msg.offset,
                "error_type": record["error_type"],
                "reason": record["error"][:300],
            },
        )
        return (self.topics.deadletter, record["key"] or "", record)
