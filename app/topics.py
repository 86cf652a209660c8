"""The topics of the contract, with their partition counts, and their creation."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from confluent_kafka import KafkaException
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewTopic,
    ResourceType,
)

from app.kafka_config import admin_client, list_topics_or_explain
from app.settings import Settings
from app.sizes import max_message_bytes

__all__ = ["TopicSpec", "ensure_topics", "topic_specs"]

log = logging.getLogger(__name__)

RAW_REALGEEKS = "realgeeks.webhooks.raw"
RAW_ELEVENLABS = "elevenlabs.webhooks.raw"
LEADS = "leads.normalized"
ACTIVITIES = "activities.normalized"
CALLS_CONTEXT = "calls.context"
ACTIVITIES_OUTBOUND = "realgeeks.activities.outbound"
DEADLETTER = "sync.deadletter"
# Internal: re-keyed records so tables read and written by different agents share
# partitions (Faust tables live on the partition of the event being processed).
OPTOUTS = "sync.optouts"
CONVERSATIONS = "sync.conversations"
DIALER_WAKEUPS = "sync.dialer-wakeups"

_WEEK_MS = 7 * 24 * 3600 * 1000


@dataclass(frozen=True)
class TopicSpec:
    """A topic name (unprefixed), its partitions and its broker-side config."""

    name: str
    partitions: int
    config: tuple[tuple[str, str], ...] = ()


def topic_specs(settings: Settings) -> list[TopicSpec]:
    """Every topic the service reads or writes."""
    n = settings.partitions
    # Every topic takes the largest record any client may write (app/sizes.py): a body at
    # the ingress's limit must fit in its envelope, its outputs and its dead letter.
    size = (("max.message.bytes", str(max_message_bytes(settings.max_body_bytes))),)
    # Raw topics keep two weeks: Real Geeks ignores messages older than 7 days, and
    # a rebuilt worker may need to re-read a full dedup window.
    raw = (("retention.ms", str(2 * _WEEK_MS)), *size)
    out = (("retention.ms", str(_WEEK_MS)), *size)
    return [
        TopicSpec(RAW_REALGEEKS, n, raw),
        TopicSpec(RAW_ELEVENLABS, n, raw),
        TopicSpec(LEADS, n, out),
        TopicSpec(ACTIVITIES, n, out),
        TopicSpec(CALLS_CONTEXT, n, out),
        TopicSpec(ACTIVITIES_OUTBOUND, n, out),
        TopicSpec(DEADLETTER, n, (("retention.ms", str(4 * _WEEK_MS)), *size)),
        TopicSpec(OPTOUTS, n, out),
        TopicSpec(CONVERSATIONS, n, out),
        TopicSpec(DIALER_WAKEUPS, n, out),
    ]


def ensure_topics(settings: Settings, timeout_s: float = 30.0) -> list[str]:
    """Create missing topics; returns the created names.

    Existing topics keep their partitions and retention; only a max.message.bytes below
    what the body limit needs is raised (``raise_message_limits``).

    Raises:
        KafkaAccessError: the broker refused our credentials or TLS handshake.
        KafkaException: the broker did not answer or refused a creation.
    """
    # The first request of a worker or an ingress: a refused login fails here, in one line.
    admin, errors = admin_client(settings)
    existing = set(list_topics_or_explain(settings, admin, errors, timeout_s).topics)
    ours = [settings.topic(s.name) for s in topic_specs(settings)]
    raise_message_limits(
        admin,
        [name for name in ours if name in existing],
        max_message_bytes(settings.max_body_bytes),
        timeout_s,
    )
    wanted = [
        NewTopic(
            settings.topic(s.name),
            num_partitions=s.partitions,
            replication_factor=settings.replication_factor,
            config=dict(s.config),
        )
        for s in topic_specs(settings)
        if settings.topic(s.name) not in existing
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
    log.info("topics created", extra={"count": len(created)})
    return created


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
