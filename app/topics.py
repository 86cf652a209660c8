"""The topics of the contract, with their partition counts, and their creation."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from app.errors import ConfigError
from app.settings import Settings

__all__ = ["SITE_PARTITIONED", "TopicSpec", "ensure_topics", "topic_specs"]

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

_WEEK_MS = 7 * 24 * 3600 * 1000


@dataclass(frozen=True)
class TopicSpec:
    """A topic name (unprefixed), its partitions, its broker-side config, and whether its
    records go to their site's partition (app/partitioning.py) rather than the key's."""

    name: str
    partitions: int
    config: tuple[tuple[str, str], ...] = ()
    by_site: bool = False


# Topics keyed <site_uuid>:<...> whose records go to the site's partition.
SITE_PARTITIONED = frozenset(
    {LEADS, ACTIVITIES, CALLS_CONTEXT, ACTIVITIES_OUTBOUND, OPTOUTS, DIALER_EVENTS}
)


def topic_specs(settings: Settings) -> list[TopicSpec]:
    """Every topic the service reads or writes."""
    n = settings.partitions
    # Raw topics keep two weeks: Real Geeks ignores messages older than 7 days, and
    # a rebuilt worker may need to re-read a full dedup window.
    raw = (("retention.ms", str(2 * _WEEK_MS)), ("max.message.bytes", str(2 * 1024 * 1024)))
    out = (("retention.ms", str(_WEEK_MS)),)
    # Opt-outs are few and must outlive every table: kept forever, never compacted (the
    # history of who opted out, when and how is the record a complaint asks for).
    forever = (("retention.ms", "-1"), ("cleanup.policy", "delete"))
    specs = [
        TopicSpec(RAW_REALGEEKS, n, raw),
        TopicSpec(RAW_ELEVENLABS, n, raw),
        TopicSpec(LEADS, n, out),
        TopicSpec(ACTIVITIES, n, out),
        TopicSpec(CALLS_CONTEXT, n, out),
        TopicSpec(ACTIVITIES_OUTBOUND, n, out),
        TopicSpec(DEADLETTER, n, (("retention.ms", str(4 * _WEEK_MS)),)),
        TopicSpec(OPTOUTS, n, forever),
        TopicSpec(CONVERSATIONS, n, out),
        TopicSpec(DIALER_EVENTS, n, out),
    ]
    return [replace(spec, by_site=spec.name in SITE_PARTITIONED) for spec in specs]


def ensure_topics(settings: Settings, timeout_s: float = 30.0) -> list[str]:
    """Create missing topics (existing ones are left as they are); returns the created names.

    Raises:
        KafkaException: the broker did not answer or refused a creation.
        ConfigError: an existing topic's partition count differs from RGSYNC_PARTITIONS.
    """
    # log_level 0: an unreachable broker raises below; librdkafka would also print a line
    # per connection attempt, burying the one line the command prints.
    admin = AdminClient({"bootstrap.servers": settings.bootstrap_servers, "log_level": 0})
    metadata = admin.list_topics(timeout=timeout_s).topics
    existing = set(metadata)
    for spec in topic_specs(settings):
        topic = metadata.get(settings.topic(spec.name))
        if topic is not None and topic.partitions and len(topic.partitions) != spec.partitions:
            # Records are placed by site with RGSYNC_PARTITIONS; another count would put a
            # site's records where its tables are not.
            raise ConfigError(
                f"topic {settings.topic(spec.name)} has {len(topic.partitions)} partitions, "
                f"RGSYNC_PARTITIONS is {spec.partitions}: they must agree"
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
