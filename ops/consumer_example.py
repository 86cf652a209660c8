"""A downstream consumer of leads.normalized: read with confluent-kafka, validate, print.

    .venv/bin/python ops/consumer_example.py [--from-beginning] [--idle-exit SECONDS]
                                             [--group NAME]

Kafka settings are the worker's own (RGSYNC_KAFKA_URL, RGSYNC_TOPIC_PREFIX, RGSYNC_KAFKA_*
for TLS and SASL), read from the environment and turned into a client configuration by
app/streaming/kafka_config.py, so a secured cluster is reached as the worker reaches it.
Every record is validated against docs/schemas/lead.v1.json (needs jsonschema, a test
dependency); a line per lead says whether it is valid, with its site, lead id and op (no
personal data). Exits 1 when a record did not validate, 0 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, TopicPartition
from jsonschema import Draft202012Validator, FormatChecker

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from realgeeks_sync.app.core.settings import Settings  # noqa: E402
from realgeeks_sync.app.streaming import topics  # noqa: E402
from realgeeks_sync.app.streaming.kafka_config import librdkafka_config  # noqa: E402

SCHEMA = ROOT / "docs" / "schemas" / "lead.v1.json"

__all__ = ["check_record", "main"]


def check_record(value: bytes | None, validator: Draft202012Validator) -> tuple[str, list[str]]:
    """A record's ids for its line (site, lead, op: no personal data) and what is wrong with it.

    Any value is answered, never raised on: none (a tombstone), not JSON, JSON but no object.
    """
    event: Any = None
    if value is None:
        errors = ["no value (a tombstone)"]
    else:
        try:
            event = json.loads(value)
        except ValueError:  # UnicodeDecodeError included
            errors = ["not JSON"]
        else:
            errors = [e.message for e in validator.iter_errors(event)]
    fields = event if isinstance(event, dict) else {}
    ids = f"site={fields.get('site_uuid')} lead={fields.get('lead_id')} op={fields.get('op')}"
    return ids, errors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--group", default="lead-consumer-example", help="consumer group id")
    parser.add_argument(
        "--from-beginning",
        action="store_true",
        help="a new group starts at the oldest record (else at the newest)",
    )
    parser.add_argument(
        "--idle-exit",
        type=float,
        default=None,
        metavar="SECONDS",
        help="stop after this long without a record (default: run until ^C)",
    )
    args = parser.parse_args(argv)

    # The worker's settings need its webhook secret; a consumer has none and uses none.
    settings = Settings.from_env({"RGSYNC_REALGEEKS_SECRETS": "unused", **os.environ})
    validator = Draft202012Validator(json.loads(SCHEMA.read_text()), format_checker=FormatChecker())
    consumer = Consumer(
        librdkafka_config(
            settings,
            **{
                "group.id": args.group,
                "auto.offset.reset": "earliest" if args.from_beginning else "latest",
                "enable.auto.commit": True,
            },
        )
    )
    topic = settings.topic(topics.LEADS)
    last = time.monotonic()

    def assigned(_consumer: Consumer, _partitions: list[TopicPartition]) -> None:
        # --idle-exit counts from when the group hands out partitions: joining it takes
        # seconds (the broker's initial rebalance delay) and says nothing about the topic.
        nonlocal last
        last = time.monotonic()

    consumer.subscribe([topic], on_assign=assigned)
    seen = invalid = 0
    try:
        while args.idle_exit is None or time.monotonic() - last < args.idle_exit:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                print(f"kafka error: {msg.error()}", file=sys.stderr)
                continue
            last = time.monotonic()
            seen += 1
            ids, errors = check_record(msg.value(), validator)
            where = f"partition={msg.partition()} offset={msg.offset()}"
            if errors:
                invalid += 1
                print(f"lead.v1 INVALID {ids} {where}: {errors[0][:300]}", flush=True)
            else:
                print(f"lead.v1 valid {ids} {where}", flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        consumer.close()
    print(f"{topic}: {seen} records, {invalid} invalid", file=sys.stderr)
    return 1 if invalid else 0


if __name__ == "__main__":
    sys.exit(main())
