"""``realgeeks-sync dlq list | replay``: inspect dead letters and re-drive them.

Replay re-produces each selected dead letter's original value, byte for byte, to its
original topic with its original key. Agents are idempotent (message ids, the outbox of
activity ids), so replaying a letter twice, or one that was already fixed, changes nothing.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from confluent_kafka import Producer

from realgeeks_sync.app.core.settings import Settings
from realgeeks_sync.app.domain.deadletters import decode_original
from realgeeks_sync.app.streaming import topics as names
from realgeeks_sync.app.streaming.kafka_config import producer_config
from realgeeks_sync.app.streaming.partitioning import site_of_key, site_partition
from realgeeks_sync.app.streaming.topic_reader import read_records
from realgeeks_sync.app.streaming.topics import topic_specs

__all__ = ["matches", "parse_since", "read_deadletters", "run_dlq"]

log = logging.getLogger(__name__)


def parse_since(value: str | None, now: datetime | None = None) -> datetime | None:
    """An ISO 8601 time, or a relative age like ``36h`` / ``2d``.

    Raises:
        ValueError: neither form.
    """
    if not value:
        return None
    now = now or datetime.now(UTC)
    units = {"m": 60, "h": 3600, "d": 86400}
    if value[-1:] in units and value[:-1].isdigit():
        return now - timedelta(seconds=int(value[:-1]) * units[value[-1]])
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def matches(
    record: dict[str, Any],
    *,
    topic: str | None,
    error_type: str | None,
    since: datetime | None,
    transient: bool,
) -> bool:
    """Whether a dead letter passes the filters of list/replay."""
    if topic and not str(record.get("topic", "")).endswith(topic):
        return False
    if error_type and record.get("error_type") != error_type:
        return False
    if transient and not record.get("retriable"):
        return False
    if since is not None:
        try:
            failed = datetime.fromisoformat(
                str(record.get("first_failed_at")).replace("Z", "+00:00")
            )
        except ValueError:
            return False
        if failed < since:
            return False
    return True


def read_deadletters(settings: Settings, timeout_s: float = 10.0) -> Iterator[dict[str, Any]]:
    """Every record of sync.deadletter, from the beginning to the current end."""
    return read_records(
        settings, settings.topic(names.DEADLETTER), reader="dlq-reader", timeout_s=timeout_s
    )


def run_dlq(settings: Settings, args: argparse.Namespace) -> int:
    """The ``dlq list`` and ``dlq replay`` commands; returns the exit code."""
    since = parse_since(getattr(args, "since", None))
    selected = [
        r
        for r in read_deadletters(settings)
        if matches(
            r, topic=args.topic, error_type=args.error_type, since=since, transient=args.transient
        )
    ]
    by_kind = Counter((r.get("topic"), r.get("error_type")) for r in selected)
    if args.dlq_command == "list":
        for r in selected:
            print(
                json.dumps(
                    {
                        k: r.get(k)
                        for k in (
                            "first_failed_at",
                            "topic",
                            "key",
                            "error_type",
                            "attempts",
                            "retriable",
                        )
                    }
                    | {"error": str(r.get("error"))[:200]}
                )
            )
        for (topic, kind), n in sorted(by_kind.items(), key=str):
            print(f"# {n:6d}  {topic}  {kind}")
        print(f"# {len(selected)} dead letter(s)")
        return 0
    producer = Producer(producer_config(settings))
    failures: list[str] = []

    def on_delivery(err: Any, _msg: Any) -> None:
        if err is not None:
            failures.append(str(err))

    by_site = {settings.topic(spec.name) for spec in topic_specs(settings) if spec.by_site}
    for r in selected:
        key = r.get("key")
        topic = str(r["topic"])
        extra: dict[str, Any] = {}
        if topic in by_site and isinstance(key, str):
            # Back to the site's partition, where its tables are (app/streaming/partitioning.py).
            extra["partition"] = site_partition(site_of_key(key), settings.partitions)
        producer.produce(
            topic,
            value=decode_original(r),
            key=key.encode() if isinstance(key, str) else None,
            headers={"realgeeks-sync-replay": b"1"},
            on_delivery=on_delivery,
            **extra,
        )
        producer.poll(0)
    undelivered = producer.flush(30)
    replayed = len(selected) - len(failures) - undelivered
    summary = {
        "replayed": replayed,
        "failed": len(failures) + undelivered,
        "by_topic_and_error": {f"{t}:{k}": n for (t, k), n in by_kind.items()},
    }
    print(json.dumps(summary))
    log.info("dead letters replayed", extra=summary)
    return 0 if not failures and not undelivered else 1
