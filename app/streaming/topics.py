"""The topics of the contract, with their partition counts, and their creation."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewTopic,
    ResourceType,
)

from realgeeks_sync.app.core.errors import ConfigError
from realgeeks_sync.app.core.settings import Settings
from realgeeks_sync.app.core.sizes import max_message_bytes
from realgeeks_sync.app.streaming.kafka_config import admin_client, list_topics_or_explain
from realgeeks_sync.tables.catalog import TABLES

__all__ = [
    "SITE_PARTITIONED",
    "TopicSpec",
    "changelog_config",
    "changelog_topics",
    "ensure_topics",
    "table_name",
    "table_retention_s",
    "table_ttl_days",
    "topic_specs",
]

log = logging.getLogger(__name__)

RAW_REALGEEKS = "realgeeks.webhooks.raw"
RAW_ELEVENLABS = "elevenlabs.webhooks.raw"
LEADS = "leads.normalized"
ACTIVITIES = "activities.normalized"
CALLS_CONTEXT = "calls.context"
ACTIVITIES_OUTBOUND = "realgeeks.activities.outbound"
DEADLETTER = "sync.deadletter"
# Every opt-out and opt-in (optout.v1), kept forever: the do-not-call list of record.
OPTOUTS = "sync.optouts"
# Internal: the conversation -> lead map (keyed by conversation id, like the raw topic),
# and the dialer's own events (call answers, call outcomes, timer ticks), by site.
CONVERSATIONS = "sync.conversations"
DIALER_EVENTS = "sync.dialer-events"
# Lead-field updates for Real Geeks (PATCH), written once each like the activities.
LEADS_OUTBOUND = "realgeeks.leads.outbound"
# How each AI call ended, for the lead's call history (its context counts them).
CALL_OUTCOMES = "sync.call-outcomes"
# Every lead's numbers and call variables, compacted: each worker keeps a copy to answer
# the pre-call webhook of an inbound call (app/streaming/caller_directory.py).
CALLERS = "sync.callers"

_WEEK_MS = 7 * 24 * 3600 * 1000

# Topic -> the attribute of Pipeline.topics (app/streaming/pipeline.py) that holds it.
ATTRIBUTES = {
    RAW_REALGEEKS: "raw_realgeeks",
    RAW_ELEVENLABS: "raw_elevenlabs",
    LEADS: "leads",
    ACTIVITIES: "activities",
    CALLS_CONTEXT: "calls_context",
    ACTIVITIES_OUTBOUND: "activities_outbound",
    DEADLETTER: "deadletter",
    OPTOUTS: "optouts",
    CONVERSATIONS: "conversations",
    DIALER_EVENTS: "dialer_events",
    LEADS_OUTBOUND: "leads_outbound",
    CALL_OUTCOMES: "call_outcomes",
    CALLERS: "callers",
}


@dataclass(frozen=True)
class TopicSpec:
    """A topic name (unprefixed), its partitions, its broker-side config, and whether its
    records go to their site's partition (app/streaming/partitioning.py) rather than the key's."""

    name: str
    partitions: int
    config: tuple[tuple[str, str], ...] = ()
    by_site: bool = False
    # The attribute of app/streaming/pipeline.py's Topics that holds its Faust handle.
    attribute: str = ""


# Topics keyed <site_uuid>:<...> whose records go to the site's partition.
# Dead letters too: one keyed <site>:<lead> joins its lead's story (agents/record_stories.py);
# a raw webhook's, keyed by its site, already was there.
SITE_PARTITIONED = frozenset(
    {
        LEADS,
        ACTIVITIES,
        CALLS_CONTEXT,
        ACTIVITIES_OUTBOUND,
        OPTOUTS,
        DIALER_EVENTS,
        LEADS_OUTBOUND,
        CALL_OUTCOMES,
        CALLERS,
        DEADLETTER,
    }
)


def topic_specs(settings: Settings) -> list[TopicSpec]:
    """Every topic the service reads or writes."""
    n = settings.partitions
    # Every topic takes the largest record any client may write (app/core/sizes.py): a body at
    # the ingress's limit must fit in its envelope, its outputs and its dead letter.
    size = (("max.message.bytes", str(max_message_bytes(settings.max_body_bytes))),)
    # Raw topics keep two weeks: Real Geeks ignores messages older than 7 days, and
    # a rebuilt worker may need to re-read a full dedup window.
    raw = (("retention.ms", str(2 * _WEEK_MS)), *size)
    out = (("retention.ms", str(_WEEK_MS)), *size)
    # Opt-outs are few and must outlive every table: kept forever, never compacted (the
    # history of who opted out, when and how is the record a complaint asks for).
    forever = (("retention.ms", "-1"), ("cleanup.policy", "delete"), *size)
    # One record per lead is what a directory needs: compaction keeps the latest.
    latest = (("cleanup.policy", "compact"), *size)
    specs = [
        TopicSpec(RAW_REALGEEKS, n, raw),
        TopicSpec(RAW_ELEVENLABS, n, raw),
        TopicSpec(LEADS, n, out),
        TopicSpec(ACTIVITIES, n, out),
        TopicSpec(CALLS_CONTEXT, n, out),
        TopicSpec(ACTIVITIES_OUTBOUND, n, out),
        TopicSpec(DEADLETTER, n, (("retention.ms", str(4 * _WEEK_MS)), *size)),
        TopicSpec(OPTOUTS, n, forever),
        TopicSpec(CONVERSATIONS, n, out),
        TopicSpec(DIALER_EVENTS, n, out),
        TopicSpec(LEADS_OUTBOUND, n, out),
        TopicSpec(CALL_OUTCOMES, n, out),
        TopicSpec(CALLERS, n, latest),
    ]
    return [
        replace(spec, by_site=spec.name in SITE_PARTITIONED, attribute=ATTRIBUTES[spec.name])
        for spec in specs
    ]


def table_name(settings: Settings, name: str) -> str:
    """The Faust name of a catalogue table (its changelog is ``<app id>-<this>-changelog``)."""
    return settings.topic(name).replace(".", "-")


def table_retention_s(ttl_days: int) -> int:
    """How long a table with a ttl keeps an entry, locally and in its changelog: a day more
    than its ttl, so that an entry is never gone before its window is."""
    return (ttl_days + 1) * 24 * 3600


def changelog_config(settings: Settings, ttl_days: int | None) -> dict[str, str]:
    """A table changelog's broker-side config beyond Faust's own ``cleanup.policy=compact``."""
    # A changelog record holds a table value: as large as any record (app/core/sizes.py).
    config = {"max.message.bytes": str(max_message_bytes(settings.max_body_bytes))}
    if ttl_days is not None:
        # Bounded changelog: compaction keeps one record per key, deletion drops records
        # older than the window (the table's RocksDB ttl drops the local copies).
        config |= {
            "cleanup.policy": "compact,delete",
            "retention.ms": str(table_retention_s(ttl_days) * 1000),
        }
    return config


def table_ttl_days(settings: Settings, ttl: str | None, ttl_days: int | None) -> int | None:
    """A catalogue table's retention in days: its own, or the dedup window's."""
    return settings.dedup_retention_days if ttl == "dedup" else ttl_days


def changelog_topics(settings: Settings) -> dict[str, dict[str, str]]:
    """Every table's changelog topic, by full name, with the config Faust would create it with."""
    return {
        f"{settings.app_id}-{table_name(settings, spec.name)}-changelog": {
            "cleanup.policy": "compact",
            **changelog_config(settings, table_ttl_days(settings, spec.ttl, spec.ttl_days)),
        }
        for spec in TABLES
    }


def ensure_topics(
    settings: Settings, timeout_s: float = 30.0, *, changelogs: bool = False
) -> list[str]:
    """Create missing topics (and, with ``changelogs``, the tables' changelog topics); returns
    the created names once the broker's metadata lists every one of them.

    Existing topics keep their partitions and retention; only a max.message.bytes below
    what the body limit needs is raised (``raise_message_limits``).

    Raises:
        KafkaAccessError: the broker refused our credentials or TLS handshake.
        KafkaException: the broker did not answer or refused a creation.
        ConfigError: an existing topic's partition count differs from RGSYNC_PARTITIONS.
    """
    # The first request of a worker or an ingress: a refused login fails here, in one line.
    admin, errors = admin_client(settings)
    metadata = list_topics_or_explain(settings, admin, errors, timeout_s).topics
    # Full name -> (partitions, config): the contract's topics, then the changelogs.
    specs = {settings.topic(s.name): (s.partitions, dict(s.config)) for s in topic_specs(settings)}
    if changelogs:
        # Faust would create these itself, but its first assignment can run before the
        # broker's metadata lists them: it then ignores them ("Ignoring missing topic") and
        # a fresh deployment's worker leaves those tables' partitions unassigned.
        specs |= {
            name: (settings.partitions, config)
            for name, config in changelog_topics(settings).items()
        }
    for name, (partitions, _config) in specs.items():
        topic = metadata.get(name)
        if topic is not None and topic.partitions and len(topic.partitions) != partitions:
            # Records are placed by site with RGSYNC_PARTITIONS; another count would put a
            # site's records where its tables are not.
            raise ConfigError(
                f"topic {name} has {len(topic.partitions)} partitions, "
                f"RGSYNC_PARTITIONS is {partitions}: they must agree"
            )
    raise_message_limits(
        admin,
        [name for name in specs if name in metadata],
        max_message_bytes(settings.max_body_bytes),
        timeout_s,
    )
    wanted = [
        NewTopic(
            name,
            num_partitions=partitions,
            replication_factor=settings.replication_factor,
            config=config,
        )
        for name, (partitions, config) in specs.items()
        if name not in metadata
    ]
    if not wanted:
        return []
    created: list[str] = []
    for name, future in admin.create_topics(wanted, operation_timeout=timeout_s).items():
        try:
            future.result(timeout=timeout_s)
            created.append(name)
        except KafkaException as exc:
            if exc.args and exc.args[0].code() == 36:  # TOPIC_ALREADY_EXISTS: a race, fine
                continue
            raise
    _await_listed(admin, {t.topic: t.num_partitions for t in wanted}, timeout_s)
    log.info("topics created", extra={"count": len(created)})
    return created


def _await_listed(admin: AdminClient, partitions: dict[str, int], timeout_s: float) -> None:
    """Wait until the broker's metadata lists every topic with a leader for every partition.

    A created topic reaches the brokers' metadata a moment after the controller answers;
    a consumer group assigned in that moment leaves the topic out until its next rebalance.
    """
    deadline = time.monotonic() + timeout_s
    missing = set(partitions)
    while missing:
        listed = _listed_topics(admin, max(0.1, min(5.0, deadline - time.monotonic())))
        missing = {
            name
            for name in missing
            if name not in listed
            or len(listed[name].partitions) != partitions[name]
            or any(p.leader < 0 for p in listed[name].partitions.values())
        }
        if not missing:
            return
        if time.monotonic() > deadline:
            log.warning(
                "created topics not yet in the broker's metadata; going on",
                extra={"topics": sorted(missing)},
            )
            return
        time.sleep(0.1)


def _listed_topics(admin: AdminClient, timeout_s: float) -> dict[str, Any]:
    """The broker's topic metadata by name; empty when it did not answer in time."""
    try:
        return dict(admin.list_topics(timeout=timeout_s).topics)
    except KafkaException:
        return {}


def raise_message_limits(
    admin: AdminClient, names: list[str], wanted: int, timeout_s: float
) -> list[str]:
    """Raise max.message.bytes to ``wanted`` on the topics where it is lower; returns them.

    Topics made before the limits were derived from the body limit (or by hand) would
    refuse a large webhook's records. Where the cluster does not let us alter topic
    configuration (ACLs), say so once and go on: the rest works, large records are refused.
    """
    if not names:
        return []
    try:
        described = admin.describe_configs([ConfigResource(ResourceType.TOPIC, n) for n in names])
        low = []
        for resource, future in described.items():
            entry = future.result(timeout=timeout_s).get("max.message.bytes")
            if entry is None or int(entry.value or 0) < wanted:
                low.append(resource.name)
        if not low:
            return []
        setting = ConfigEntry(
            "max.message.bytes", str(wanted), incremental_operation=AlterConfigOpType.SET
        )
        altered = admin.incremental_alter_configs(
            [ConfigResource(ResourceType.TOPIC, n, incremental_configs=[setting]) for n in low]
        )
        for future in altered.values():
            future.result(timeout=timeout_s)
    except KafkaException as exc:
        log.warning(
            "cannot raise max.message.bytes of existing topics; large webhooks may be refused",
            extra={"wanted": wanted, "error": str(exc)},
        )
        return []
    log.info("max.message.bytes raised", extra={"topics": len(low), "bytes": wanted})
    return low
