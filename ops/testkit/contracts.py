"""The event contracts (docs/schemas) as validators, and the check of what a test's worker wrote.

Every topic of the catalogue has its event types here. A record of a topic whose events
carry a ``schema`` field is validated against the schema that field names, which must be
one the topic carries; a record of a raw or internal topic (no such field) against its
topic's. `check_topics` reads every topic of some topic prefixes to its end (the
end offsets of now: no waiting for more); tests/conftest.py runs it after every
integration test, before the test's topics are deleted (`check_and_delete`).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from typing import Any

from confluent_kafka import KafkaError, KafkaException, TopicPartition
from jsonschema import Draft202012Validator, FormatChecker

from ops.testkit.support import ROOT, delete_topics_with_prefixes, reader
from realgeeks_sync.app.domain.events import UNTAGGED
from realgeeks_sync.app.streaming import topics

__all__ = [
    "SCHEMAS",
    "TOPIC_SCHEMAS",
    "ContractError",
    "UnreadError",
    "check_and_delete",
    "check_topics",
    "read_to_end",
    "validator",
    "violations",
]

SCHEMAS = ROOT / "docs" / "schemas"
# Each topic and the event types it carries (tests/unit/test_contracts.py: every topic of
# the catalogue, every event type of app/domain/events.py).
TOPIC_SCHEMAS: Mapping[str, frozenset[str]] = {
    topics.RAW_REALGEEKS: frozenset({"webhook_envelope.v1"}),
    topics.RAW_ELEVENLABS: frozenset({"webhook_envelope.v1"}),
    topics.LEADS: frozenset({"lead.v1"}),
    topics.ACTIVITIES: frozenset({"activity.v1"}),
    topics.CALLS_CONTEXT: frozenset({"call_context.v1"}),
    topics.ACTIVITIES_OUTBOUND: frozenset({"outbound_activity.v1"}),
    topics.OPTOUTS: frozenset({"optout.v1"}),
    topics.DEADLETTER: frozenset({"deadletter.v1"}),
    topics.CONVERSATIONS: frozenset({"conversation.v1"}),
    topics.DIALER_EVENTS: frozenset({"dialer_event.v1"}),
    topics.LEADS_OUTBOUND: frozenset({"lead_update.v1"}),
    topics.CALL_OUTCOMES: frozenset({"call_outcome.v1"}),
    topics.CALLERS: frozenset({"caller.v1"}),
}
_SHOWN = 5  # violations named in a failure, the rest counted


class ContractError(AssertionError):
    """Records of a topic that do not validate against their schema."""


class UnreadError(AssertionError):
    """Partitions whose records could not be read to their end, so were not checked."""


@cache
def validator(schema: str) -> Draft202012Validator:
    """The validator of docs/schemas/<schema>.json, formats (date-time, uuid) checked."""
    document = json.loads((SCHEMAS / f"{schema}.json").read_text())
    Draft202012Validator.check_schema(document)
    return Draft202012Validator(document, format_checker=FormatChecker())


def violations(topic: str, value: bytes | None) -> list[str]:
    """What is wrong with one record of a topic (unprefixed name); [] when valid."""
    try:
        event = json.loads(value or b"")
    except ValueError:
        return ["not JSON"]
    allowed = TOPIC_SCHEMAS[topic]
    if allowed <= UNTAGGED:  # one type, named by the topic
        (name,) = allowed
    else:
        name = event.get("schema") if isinstance(event, dict) else None
    if name not in allowed:
        return [f"schema {name!r} is not one of {sorted(allowed)}"]
    return [
        f"{name}: at /{'/'.join(map(str, error.absolute_path))}: {error.message[:300]}"
        for error in validator(name).iter_errors(event)
    ]


# A topic a test just created may not have its leader yet (seen in the container tier):
# the broker answers these until it has, so ask again for a while.
_LEADER_MOVING = frozenset({KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE})


def _watermarks(consumer: Any, tp: TopicPartition, *, within_s: float = 15.0) -> tuple[int, int]:
    """A partition's (low, high) offsets, asked again while its leader is being elected."""
    deadline = time.monotonic() + within_s
    while True:
        try:
            low, high = consumer.get_watermark_offsets(tp, timeout=10, cached=False)
            return int(low), int(high)
        except KafkaException as exc:
            error = exc.args[0] if exc.args else None
            code = error.code() if isinstance(error, KafkaError) else None
            if code not in _LEADER_MOVING or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def read_to_end(
    bootstrap: str,
    names: Iterable[str],
    config: Mapping[str, Any] | None = None,
    *,
    stall_s: float = 30.0,
) -> dict[str, list[Any]]:
    """Every record of the named topics up to their end offsets now; topics absent are skipped.

    Returns confluent-kafka Messages per topic name. One consumer, no group, no waiting
    for records past the end.

    Raises:
        UnreadError: ``stall_s`` seconds passed without a record while partitions were not
            read to their end; it names them (their records were not checked).
    """
    consumer = reader(bootstrap, "contracts", config)
    try:
        metadata = consumer.list_topics(timeout=10).topics
        ends: dict[tuple[str, int], int] = {}
        for name in names:
            topic = metadata.get(name)
            if topic is None or topic.error is not None:
                continue
            for partition in topic.partitions:
                low, high = _watermarks(consumer, TopicPartition(name, partition))
                if high > low:
                    ends[(name, partition)] = high
        found: dict[str, list[Any]] = {name: [] for name in names}
        if not ends:
            return found
        consumer.assign([TopicPartition(t, p, 0) for t, p in ends])
        remaining = dict(ends)
        progress_at = time.monotonic()
        while remaining:
            msg = consumer.poll(0.2)
            if msg is None:
                # A partition may end in a control record (a transaction marker), which is
                # never delivered: its position passes the end all the same.
                parts = [TopicPartition(t, p) for t, p in remaining]
                for tp in consumer.position(parts):
                    if tp.offset >= remaining[(tp.topic, tp.partition)]:
                        del remaining[(tp.topic, tp.partition)]
                if remaining and time.monotonic() - progress_at > stall_s:
                    raise UnreadError(_unread(consumer, remaining, stall_s))
                continue
            if msg.error():
                continue
            progress_at = time.monotonic()
            place = (msg.topic(), msg.partition())
            found[msg.topic()].append(msg)
            if place in remaining and msg.offset() + 1 >= remaining[place]:
                del remaining[place]
        return found
    finally:
        consumer.close()


def _unread(consumer: Any, remaining: Mapping[tuple[str, int], int], stall_s: float) -> str:
    """Which partitions were not read to their end, and how far they were read."""
    positions = consumer.position([TopicPartition(t, p) for t, p in sorted(remaining)])
    # A partition nothing was fetched from has no position yet (a negative sentinel): 0.
    where = ", ".join(
        f"{tp.topic} [{tp.partition}] at {max(tp.offset, 0)} of {remaining[tp.topic, tp.partition]}"
        for tp in positions
    )
    return (
        f"{len(remaining)} partition(s) not read to their end after {stall_s:g} s without a "
        f"record, their records not checked: {where}"
    )


def check_topics(
    bootstrap: str, prefixes: Iterable[str], config: Mapping[str, Any] | None = None
) -> int:
    """Validate every record of the topics under the prefixes; returns how many.

    Raises:
        ContractError: naming the topic, partition, offset, key and schema error of the
            first records that do not validate.
        UnreadError: partitions could not be read to their end (read_to_end).
    """
    prefixed = {f"{prefix}{name}": name for prefix in prefixes for name in TOPIC_SCHEMAS}
    records = read_to_end(bootstrap, prefixed, config)
    problems: list[str] = []
    checked = 0
    for full, messages in records.items():
        for msg in messages:
            checked += 1
            for problem in violations(prefixed[full], msg.value()):
                key = (msg.key() or b"").decode("utf-8", "replace")[:80]
                where = f"{full} [{msg.partition()}] @{msg.offset()} key {key!r}"
                problems.append(f"{where}: {problem}")
    if problems:
        shown = "\n  ".join(problems[:_SHOWN])
        more = f"\n  ... and {len(problems) - _SHOWN} more" if len(problems) > _SHOWN else ""
        raise ContractError(
            f"{len(problems)} violation(s) of docs/schemas in {checked} records:\n  {shown}{more}"
        )
    return checked


def check_and_delete(
    prefixes: Sequence[str], brokers: Iterable[tuple[str, Mapping[str, Any] | None]]
) -> None:
    """check_topics on each (bootstrap, client config) broker, then delete the topics anyway.

    RGSYNC_TEST_KEEP_TOPICS=1 keeps them, to look at them afterwards.

    Raises:
        ContractError, UnreadError: as check_topics; the topics are deleted all the same.
    """
    brokers = list(brokers)
    try:
        for bootstrap, config in brokers:
            check_topics(bootstrap, prefixes, config)
    finally:
        if os.environ.get("RGSYNC_TEST_KEEP_TOPICS") != "1":
            for bootstrap, config in brokers:
                delete_topics_with_prefixes(bootstrap, list(prefixes), config)
