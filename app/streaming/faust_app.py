"""The faust.App and its topics and tables, from settings and the table catalogue."""

from __future__ import annotations

from typing import Any

import faust

from realgeeks_sync.app.core.settings import Settings
from realgeeks_sync.app.streaming import kafka_config, table_codec
from realgeeks_sync.app.streaming import topics as names
from realgeeks_sync.app.streaming.pipeline import Tables, Topics
from realgeeks_sync.tables.catalog import TABLES

__all__ = ["build_tables", "build_topics", "create_app", "table_options"]


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


def table_options(settings: Settings) -> dict[str, Any]:
    """The RocksDB options (Faust's ``RocksDBOptions`` keywords) of every table partition."""
    # Faust's RocksDB defaults (64 MiB memtables x3 and a 2 GiB block cache per table
    # partition) let a worker's memory climb for hours: a soak at 50 webhooks/s went from
    # 111 to 317 MB in ten minutes. Small memtables here; the cache every partition shares
    # is app/streaming/rocksdb_memory.py's (the per-partition one Faust creates is never used).
    return {
        "write_buffer_size": settings.rocksdb_write_buffer_mb * 1024 * 1024,
        "max_write_buffer_number": 2,
        "block_cache_size": 1024 * 1024,
        "block_cache_compressed_size": 0,
    }


def _table(app: faust.App, settings: Settings, name: str, *, ttl_days: int | None = None) -> Any:
    options = table_options(settings)
    if ttl_days is not None:
        options["ttl"] = names.table_retention_s(ttl_days)
    table: Any = app.Table(
        names.table_name(settings, name),
        default=None,
        partitions=settings.partitions,
        key_type=str,
        value_type=None,
        # The same config ensure_topics creates the changelog with (app/streaming/topics.py).
        extra_topic_configs=names.changelog_config(settings, ttl_days),
        options=options,
    )
    # Named codecs (Faust's "json" changes its bytes when orjson is installed): the store,
    # made on first use, takes them from the table; the changelog topic, made when the
    # table was registered, is made again with them (same name, same settings).
    table.key_serializer = table_codec.KEY_SERIALIZER
    table.value_serializer = table_codec.VALUE_SERIALIZER
    table.changelog_topic = table._new_changelog_topic()
    return table


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
        # Record batches up to 1 MiB (Faust's default 16 KiB holds two or three lead
        # events, and a full batch waits for the sender): a batch of webhooks' records to
        # one partition goes in one request.
        producer_max_batch_size=1024 * 1024,
        consumer_auto_offset_reset="earliest",
        table_standby_replicas=settings.table_standby_replicas,
        web_enabled=True,
        web_bind=settings.web_host,
        web_port=settings.web_port,
        web_host="127.0.0.1" if settings.web_host in ("0.0.0.0", "::") else settings.web_host,
        # What other workers are told to call for inspection (app/operations/inspection.py).
        canonical_url=settings.internal_url or None,
        web_in_thread=False,
        web_application_options={"client_max_size": settings.elevenlabs_max_body_bytes + 1},
        # Faust's built-in pages would show table contents to anyone: off. Inspection is
        # served by app/operations/routes.py behind the admin token.
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
        # TLS and SASL for every aiokafka client Faust creates (app/streaming/kafka_config.py).
        **kafka_config.faust_options(settings),
    )


def build_topics(app: faust.App, settings: Settings) -> Topics:
    """Faust handles for every topic of the catalogue (app/streaming/topics.py)."""
    return Topics(
        **{spec.attribute: _topic(app, settings, spec.name) for spec in names.topic_specs(settings)}
    )


def build_tables(app: faust.App, settings: Settings) -> Tables:
    """Every table of the catalogue (realgeeks_sync/tables/catalog.py)."""
    table_codec.install()
    return Tables(
        **{
            spec.attribute: _table(
                app,
                settings,
                spec.name,
                ttl_days=names.table_ttl_days(settings, spec.ttl, spec.ttl_days),
            )
            for spec in TABLES
        }
    )
