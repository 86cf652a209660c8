"""The topics of the contract, with their partition counts, and their creation."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from confluent_kafka import KafkaException
from confluent_kafka.admin import NewTopic

from app.kafka_config import admin_client, list_topics_or_explain
from app.settings import Settings

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
    # Raw topics keep two weeks: Real Geeks ignores messages older than 7 days, and
    # a rebuilt worker may need to re-read a full dedup window.
    raw = (("retention.ms", str(2 * _WEEK_MS)), ("max.message.bytes", str(2 * 1024 * 1024)))
    out = (("retention.ms", str(_WEEK_MS)),)
    return [
        TopicSpec(RAW_REALGEEKS, n, raw),
        TopicSpec(RAW_ELEVENLABS, n, raw),
        TopicSpec(LEADS, n, out),
        TopicSpec(ACTIVITIES, n, out),
        TopicSpec(CALLS_CONTEXT, n, out),
        TopicSpec(ACTIVITIES_OUTBOUND, n, out),
        TopicSpec(DEADLETTER, n, (("retention.ms", str(4 * _WEEK_MS)),)),
        TopicSpec(OPTOUTS, n, out),
        TopicSpec(CONVERSATIONS, n, out),
        TopicSpec(DIALER_WAKEUPS, n, out),
    ]


def ensure_topics(settings: Settings, timeout_s: float = 30.0) -> list[str]:
    """Create missing topics (existing ones are left as they are); returns the created names.

    Raises:
        KafkaAccessError: the broker refused our credentials or TLS handshake.
        KafkaException: the broker did not answer or refused a creation.
    """
    # The first request of a worker or an ingress: a refused login fails here, in one line.
    admin, errors = admin_client(settings)
    existing = set(list_topics_or_explain(settings, admin, errors, timeout_s).topics)
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
