"""Sizes agree end to end: a body at the ingress's limit is published, processed and, when it
fails, dead-lettered (Kafka's defaults once made such a webhook a 503 forever)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic, ResourceType

from ops.testkit.support import PREFIXES_IN_USE, Worker, unique
from realgeeks_sync.app.core.settings import Settings
from realgeeks_sync.app.core.sizes import max_message_bytes
from realgeeks_sync.app.streaming.topics import ensure_topics
from tests.integration.helpers import outputs, send_realgeeks

pytestmark = pytest.mark.integration

LIMIT = 1024 * 1024  # the default RGSYNC_MAX_BODY_BYTES


def body_at_the_limit(fields: dict[str, Any]) -> bytes:
    """A JSON object of exactly LIMIT bytes whose text doubles when escaped into the envelope.

    Every padding character is a quote, written \\" in the body and \\\\\\" in the envelope.
    """
    fields = {**fields, "notes": ""}
    base = len(json.dumps(fields).encode())
    quotes, rest = divmod(LIMIT - base, 2)
    fields["notes"] = '"' * quotes + " " * rest
    raw = json.dumps(fields).encode()
    assert len(raw) == LIMIT
    return raw


def test_a_body_at_the_limit_is_published_processed_and_dead_lettered(
    start_worker: Callable[..., Worker], kafka_bootstrap: str
) -> None:
    worker = start_worker()
    site, lead = unique("site"), unique("lead")
    good = body_at_the_limit({"site_uuid": site, "id": lead, "email": "big@example.com"})
    assert send_realgeeks(worker, good, action="created") == 200
    bad = body_at_the_limit({"id": unique("nosite"), "tag": site})  # no site: dead-lettered
    assert send_realgeeks(worker, bad, action="created") == 200
    assert send_realgeeks(worker, good + b" ", action="created") == 413

    raw = outputs(kafka_bootstrap, worker, "realgeeks.webhooks.raw", count=2, timeout=30)
    assert len(raw) == 2 and all(len(json.dumps(r)) > 2 * LIMIT for r in raw)
    assert sorted(r["body"].encode() for r in raw) == sorted([good, bad])  # byte for byte
    events = outputs(
        kafka_bootstrap,
        worker,
        "leads.normalized",
        count=1,
        timeout=60,
        match=lambda e: e["source_lead_id"] == lead,
    )
    assert events and events[0]["op"] == "created"
    dead = outputs(
        kafka_bootstrap,
        worker,
        "sync.deadletter",
        count=1,
        timeout=60,
        match=lambda d: site in (d.get("value") or ""),
    )
    assert dead and json.loads(dead[0]["value"])["body"].encode() == bad


def test_existing_topics_get_a_message_limit_large_enough(kafka_bootstrap: str) -> None:
    prefix = unique("t") + "."
    PREFIXES_IN_USE.append(prefix)
    settings = Settings.from_env(
        {
            "RGSYNC_REALGEEKS_SECRETS": "s",
            "RGSYNC_KAFKA_URL": f"kafka://{kafka_bootstrap}",
            "RGSYNC_TOPIC_PREFIX": prefix,
            "RGSYNC_PARTITIONS": "1",
        }
    )
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    old = settings.topic("leads.normalized")
    # A topic made before the limits followed the body limit: Kafka's default size.
    for future in admin.create_topics(
        [NewTopic(old, 1, 1, config={"max.message.bytes": "1048588"})]
    ).values():
        future.result(30)
    _wait_until_described(admin, old)
    ensure_topics(settings)
    wanted = str(max_message_bytes(settings.max_body_bytes))
    for name in (old, settings.topic("realgeeks.webhooks.raw"), settings.topic("sync.deadletter")):
        described = admin.describe_configs([ConfigResource(ResourceType.TOPIC, name)])
        config = next(iter(described.values())).result(30)
        assert config["max.message.bytes"].value == wanted, name


def _wait_until_described(admin: AdminClient, name: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            described = admin.describe_configs([ConfigResource(ResourceType.TOPIC, name)])
            next(iter(described.values())).result(10)
            return
        except KafkaException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
