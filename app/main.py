"""Wiring only: build the service from settings (no import side effects).

``build(settings)`` creates the Faust app with its topics and tables
(app/streaming/faust_app.py), the pipeline handle agents and routes share, the ingress, and
registers every agent (agents/) and route (app/operations/routes.py). This module is the
one place that shows the whole graph.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

from realgeeks_sync.agents import register_all
from realgeeks_sync.app.core.clock import business_clock
from realgeeks_sync.app.core.errors import ConfigError
from realgeeks_sync.app.core.metrics import Metrics
from realgeeks_sync.app.core.settings import Settings
from realgeeks_sync.app.core.sites import SiteDirectory, load_sites, reload_on_sighup
from realgeeks_sync.app.domain.call_outcomes import outcome_mapping
from realgeeks_sync.app.domain.matching import ModelFileError, default_model
from realgeeks_sync.app.ingress.handlers import Ingress
from realgeeks_sync.app.ingress.initiation import initiation_for
from realgeeks_sync.app.operations.routes import register_views
from realgeeks_sync.app.streaming import (
    changelog_guard,
    fetch_tuning,
    heap_freeze,
    metadata_backoff,
    offset_guard,
    rebalance_gc,
    rocksdb_memory,
    rocksdb_wal,
)
from realgeeks_sync.app.streaming import topics as names
from realgeeks_sync.app.streaming.faust_app import build_tables, build_topics, create_app
from realgeeks_sync.app.streaming.partition_sequence import PartitionSequence
from realgeeks_sync.app.streaming.pipeline import Pipeline
from realgeeks_sync.app.streaming.publisher import KafkaPublisher

__all__ = ["build", "load_settings"]

log = logging.getLogger(__name__)


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """The settings, with what other layers must check at start-up checked now.

    Raises:
        ConfigError: a missing or malformed setting, an identity model file that cannot
            be read (RGSYNC_IDENTITY_MODEL), or lead-field rules or hot outcomes that
            cannot be read, each named in one line.
        SitesFileError: every problem of the sites file (RGSYNC_SITES_FILE), one line each.
    """
    settings = Settings.from_env(environ)
    load_sites(settings)  # checked now: a bad file stops start-up
    outcome_mapping(settings)  # RGSYNC_OUTCOME_LEAD_FIELDS, RGSYNC_HOT_OUTCOMES: read once now
    if settings.identity_model is not None:
        try:
            default_model(settings.identity_model)  # read once now: a bad file stops start-up
        except ModelFileError as exc:
            raise ConfigError(f"RGSYNC_IDENTITY_MODEL: {exc}") from None
    return settings


def build(settings: Settings) -> Pipeline:
    """Wire the whole service: app, topics, tables, ingress, agents, web views."""
    memory = rocksdb_memory.install(settings.rocksdb_cache_mb, settings.rocksdb_memtable_mb)
    rocksdb_wal.install()
    rebalance_gc.install()
    changelog_guard.install()
    fetch_tuning.install(min_bytes=64 * 1024, max_wait_ms=settings.fetch_max_wait_ms)
    metadata_backoff.install()
    app = create_app(settings)
    topics = build_topics(app, settings)
    tables = build_tables(app, settings)
    metrics = Metrics()
    clock = business_clock(settings.clock_file)
    metrics.rocksdb_memory.set_function(memory.usage_bytes)
    metrics.gc_pauses.install()
    if settings.gc_freeze:
        heap_freeze.install(app)
    publisher = KafkaPublisher.for_settings(settings)
    pipeline = Pipeline(
        settings=settings,
        app=app,
        metrics=metrics,
        topics=topics,
        tables=tables,
        publisher=publisher,
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
    pipeline.sites = SiteDirectory(settings)
    initiation, reader = initiation_for(
        settings, metrics, publisher, "worker", sites=pipeline.sites
    )
    pipeline.caller_directory = initiation.directory

    register_all(pipeline)
    ingress = Ingress(settings, publisher, metrics, received_clock=clock, sites=pipeline.sites)
    register_views(pipeline, ingress, initiation)
    # On the loop the worker will run, now: a SIGHUP right after start must not kill it.
    reload_on_sighup(pipeline.sites, log, loop=app.loop)

    @app.task
    async def read_callers() -> None:
        # Its own consumer on a thread: the directory follows sync.callers from start-up on.
        reader.start()

    @app.timer(interval=5.0)
    async def reread_skipped_tails() -> None:
        # A record dropped at the end of a partition leaves no later record to reveal it.
        pipeline.sequence.recheck()

    # Every topic an agent consumes commits only what every agent reading it marked finished.
    offset_guard.install(
        name
        for agent in app.agents.values()
        for name in agent.channel.topics  # type: ignore[attr-defined]
    )
    return pipeline
