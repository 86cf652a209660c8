"""The Faust app and everything it is wired to, built from settings (no import side effects).

``build(settings)`` returns a ``Pipeline``: the ``faust.App``, its topics and tables, the
ingress and the shared clients. Agents and web views register themselves on it from
agents/ and app/web.py, so this module stays the one place that shows the whole graph.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import faust
from faust.types import TP

from app import changelog_guard, kafka_config, offset_guard, rocksdb_memory
from app import topics as names
from app.broker_retry import write_until_acknowledged
from app.clock import business_clock
from app.deadletters import deadletter_record
from app.ingress import Ingress
from app.metrics import Metrics
from app.partition_sequence import PartitionSequence
from app.partitioning import site_of_key, site_partition
from app.publisher import KafkaPublisher
from app.settings import Settings
from app.sizes import max_message_bytes

__all__ = ["Pipeline", "Tables", "Topics", "build"]

log = logging.getLogger(__name__)

_DAY = 24 * 3600


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


@dataclass
class Tables:
    """RocksDB-backed tables with Kafka changelogs (see tables/ for what each holds)."""

    processed_messages: Any
    identity_index: Any
    lead_snapshots: Any
    users: Any
    do_not_call: Any
    dialer_leads: Any
    dialer_sites: Any
    conversations: Any
    activity_outbox: Any


@dataclass
class Pipeline:
    """The app, its topics and tables, and the objects agents and views share."""

    settings: Settings
    app: faust.App
    metrics: Metrics
    topics: Topics
    tables: Tables
    publisher: KafkaPublisher
    ingress: Ingress
    # Agents process each partition's offsets without holes (app/partition_sequence.py).
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

    async def send(self, topic: faust.TopicT, key: str, value: dict[str, Any]) -> Any:
        """Send one JSON record; returns the future of its acknowledgement.

        Records of site-partitioned topics go to their site's partition
        (app/partitioning.py), whoever sends them.
        """
        data = json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=True)
        partition = None
        if topic.get_topic_name() in self.site_partitioned:
            partition = site_partition(site_of_key(key), self.settings.partitions)
        return await topic.send(
            key=key.encode("utf-8"), value=data.encode("utf-8"), partition=partition
        )

    async def write(
        self, records: Sequence[tuple[faust.TopicT, str, dict[str, Any]]], *, what: str
    ) -> None:
        """Send records and wait until the broker acknowledged every one.

        Broker refusals are retried (app/broker_retry.py): a repeat is harmless downstream,
        a record dropped after an acknowledged webhook is not.
        """

        async def attempt() -> None:
            futures = [await self.send(topic, key, value) for topic, key, value in records]
            await asyncio.gather(*futures)

        await write_until_acknowledged(
            attempt,
            what=what,
            on_retry=lambda _exc: self.metrics.sync_errors.labels("KafkaWriteError").inc(),
        )

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
        key = record["key"] or ""
        await self.write([(self.topics.deadletter, key, record)], what="dead letter")


def _topic(app: faust.App, settings: Settings, name: str) -> faust.TopicT:
    return app.topic(
        settings.topic(name),
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=settings.partitions,
        internal=False,
    )


def _table(app: faust.App, settings: Settings, name: str, *, ttl_days: int | None = None) -> Any:
    # A changelog record holds a table value: as large as any record (app/sizes.py).
    extra: dict[str, Any] = {"max.message.bytes": str(max_message_bytes(settings.max_body_bytes))}
    # Faust's RocksDB defaults (64 MiB memtables x3 and a 2 GiB block cache per table
    # partition) let a worker's memory climb for hours: a soak at 50 webhooks/s went from
    # 111 to 317 MB in ten minutes. Small memtables here; the cache every partition shares
    # is app/rocksdb_memory.py's (the per-partition one Faust creates is never used).
    options: dict[str, Any] = {
        "write_buffer_size": settings.rocksdb_write_buffer_mb * 1024 * 1024,
        "max_write_buffer_number": 2,
        "block_cache_size": 1024 * 1024,
        "block_cache_compressed_size": 0,
    }
    if ttl_days is not None:
        # Bounded changelog: compaction keeps one record per key, deletion drops records
        # older than the window; RocksDB's ttl drops the local copies.
        extra |= {
            "cleanup.policy": "compact,delete",
            "retention.ms": str((ttl_days + 1) * _DAY * 1000),
        }
        options["ttl"] = (ttl_days + 1) * _DAY
    return app.Table(
        settings.topic(name).replace(".", "-"),
        default=None,
        partitions=settings.partitions,
        key_type=str,
        value_type=None,
        extra_topic_configs=extra,
        options=options,
    )


def create_app(settings: Settings) -> faust.App:
    """The faust.App with the service's configuration (at-least-once, RocksDB, web)."""
    return faust.App(
        settings.app_id,
        broker=settings.kafka_url,
        store="rocksdb://",
        datadir=str(settings.data_dir),
        processing_guarantee="at_least_once",
        autodiscover=False,
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        producer_acks=-1,
        producer_linger=0.002,
        consumer_auto_offset_reset="earliest",
        web_enabled=True,
        web_bind=settings.web_host,
        web_port=settings.web_port,
        web_host="127.0.0.1" if settings.web_host in ("0.0.0.0", "::") else settings.web_host,
        # What other workers are told to call for inspection (app/inspection.py).
        canonical_url=settings.internal_url or None,
        web_in_thread=False,
        web_application_options={"client_max_size": settings.elevenlabs_max_body_bytes + 1},
        # Faust's built-in pages would show table contents to anyone: off. Inspection is
        # served by app/web.py behind the admin token.
        web_tables_enabled=False,
        web_router_enabled=False,
        web_stats_enabled=False,
        web_graph_enabled=False,
        web_metrics_enabled=False,
        web_cors_options=None,
        table_cleanup_interval=60.0,
        broker_commit_interval=1.0,
        broker_session_timeout=settings.kafka_session_timeout_s,
        broker_heartbeat_interval=min(3.0, settings.kafka_session_timeout_s / 3),
        stream_wait_empty=False,
        logging_config=None,
        # TLS and SASL for every aiokafka client Faust creates (app/kafka_config.py).
        **kafka_config.faust_options(settings),
    )


def build(settings: Settings) -> Pipeline:
    """Wire the whole service: app, topics, tables, ingress, agents, web views."""
    memory = rocksdb_memory.install(settings.rocksdb_cache_mb, settings.rocksdb_memtable_mb)
    changelog_guard.install()
    app = create_app(settings)
    topics = Topics(
        *(
            _topic(app, settings, n)
            for n in (
                names.RAW_REALGEEKS,
                names.RAW_ELEVENLABS,
                names.LEADS,
                names.ACTIVITIES,
                names.CALLS_CONTEXT,
                names.ACTIVITIES_OUTBOUND,
                names.DEADLETTER,
                names.OPTOUTS,
                names.CONVERSATIONS,
                names.DIALER_EVENTS,
            )
        )
    )
    retention = settings.dedup_retention_days
    tables = Tables(
        processed_messages=_table(app, settings, "processed_messages", ttl_days=retention),
        identity_index=_table(app, settings, "identity_index"),
        lead_snapshots=_table(app, settings, "lead_snapshots"),
        users=_table(app, settings, "realgeeks_users"),
        do_not_call=_table(app, settings, "do_not_call"),
        dialer_leads=_table(app, settings, "dialer_leads"),
        dialer_sites=_table(app, settings, "dialer_sites"),
        conversations=_table(app, settings, "conversations", ttl_days=30),
        activity_outbox=_table(app, settings, "activity_outbox", ttl_days=30),
    )
    metrics = Metrics()
    clock = business_clock(settings.clock_file)
    metrics.rocksdb_memory.set_function(memory.usage_bytes)
    publisher = KafkaPublisher.for_settings(settings)
    pipeline = Pipeline(
        settings=settings,
        app=app,
        metrics=metrics,
        topics=topics,
        tables=tables,
        publisher=publisher,
        ingress=Ingress(settings, publisher, metrics, received_clock=clock),
        sequence=PartitionSequence(
            lambda: app.consumer,
            lambda: app.consumer_generation_id,
            on_hole=lambda _tp, _expected, _got: metrics.sync_errors.labels(
                "ConsumerSkippedOffsets"
            ).inc(),
        ),
    )
    pipeline.last_processed_at = time.time()
    pipeline.site_partitioned = frozenset(
        settings.topic(spec.name) for spec in names.topic_specs(settings) if spec.by_site
    )
    pipeline.clock = clock

    # Imported here: agent modules need the pipeline, and importing them has no effects.
    from agents import register_all
    from app.web import register_views

    register_all(pipeline)
    register_views(pipeline)

    @app.timer(interval=5.0)
    async def reread_skipped_tails() -> None:
        # A record dropped at the end of a partition leaves no later record to reveal it.
        pipeline.sequence.recheck()

    # Every topic an agent consumes commits only what that agent marked finished.
    offset_guard.install(
        name
        for agent in app.agents.values()
        for name in agent.channel.topics  # type: ignore[attr-defined]
    )
    return pipeline
