"""The event contracts on a real broker: the consumer example validates what a worker wrote,
and the harness's schema check names a record that breaks its contract."""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from ops.testkit.contracts import ContractError, check_topics, read_to_end
from ops.testkit.support import PYTHON, ROOT, Worker, delete_topics_with_prefixes, unique
from tests.integration.helpers import outputs, send_realgeeks

pytestmark = pytest.mark.integration


def test_consumer_example_validates_the_leads_a_worker_wrote(
    start_worker: Callable[..., Worker], kafka_bootstrap: str
) -> None:
    w = start_worker()
    site = unique("site")
    bodies: list[dict[str, Any]] = [
        {"site_uuid": site, "id": unique("lead"), "source": "Web", "first_name": "Kai",
         "last_name": "Akana", "email": "kai@example.com", "phone": "808-817-2382"},
        # The same person registering again: a merge onto the first lead's key.
        {"site_uuid": site, "id": unique("lead"), "source": "Web", "first_name": "Kai",
         "last_name": "Akana", "email": "kai@example.com"},
        {"site_uuid": site, "id": unique("lead"), "source": "Web", "first_name": "Noe",
         "email": "noe@example.com", "zip": 2134, "phone": [1, 2]},
    ]  # fmt: skip
    for body in bodies:
        assert send_realgeeks(w, body, action="created") == 200
    events = outputs(kafka_bootstrap, w, "leads.normalized", count=3, timeout=40)
    assert sorted(e["op"] for e in events) == ["created", "created", "merged"]

    result = subprocess.run(
        [PYTHON, "ops/consumer_example.py", "--from-beginning", "--idle-exit", "4",
         "--group", unique("example")],
        cwd=ROOT, env=w.env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    # One line per event, saying it is valid and naming it (the partition and offset aside).
    lines = result.stdout.splitlines()
    assert Counter(line.split(" partition=")[0] for line in lines) == Counter(
        f"lead.v1 valid site={e['site_uuid']} lead={e['lead_id']} op={e['op']}" for e in events
    ), lines
    assert f"{w.env['RGSYNC_TOPIC_PREFIX']}leads.normalized: 3 records, 0 invalid" in result.stderr


def test_the_harness_names_a_record_that_breaks_its_contract(kafka_bootstrap: str) -> None:
    prefix = unique("c") + "."
    topic = f"{prefix}leads.normalized"
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])[topic].result(30)
    try:
        producer = Producer({"bootstrap.servers": kafka_bootstrap})
        lead = {
            "schema": "lead.v1", "event_id": "0f8fad5b-d9cb-469f-a165-70867728950e",
            "site_uuid": "s", "lead_id": "l1", "source_lead_id": "l1", "op": "created",
            "match": {"rule": None, "score": None, "lead_id": None},
            "lead": {"emails": [], "phones": [], "source_lead_ids": ["l1"]},
            "changed": [], "cleared": [], "conflicts": [], "source_timestamp": None,
            "processed_at": "2026-11-27T10:00:00Z",
        }  # fmt: skip
        records = [
            {"schema": "activity.v1"},  # valid or not, it is not this topic's event
            lead,
            {**lead, "event_id": "not-a-uuid"},
            {k: v for k, v in lead.items() if k != "site_uuid"},
        ]
        for n, value in enumerate(records):
            producer.produce(topic, key=f"s:{n}".encode(), value=json.dumps(value).encode())
        assert producer.flush(30) == 0
        with pytest.raises(ContractError) as caught:
            check_topics(kafka_bootstrap, [prefix])
        assert str(caught.value) == (
            "3 violation(s) of docs/schemas in 4 records:\n"
            f"  {topic} [0] @0 key 's:0': schema 'activity.v1' is not one of ['lead.v1']\n"
            f"  {topic} [0] @2 key 's:2': lead.v1: at /event_id: 'not-a-uuid' is not a 'uuid'\n"
            f"  {topic} [0] @3 key 's:3': lead.v1: at /: 'site_uuid' is a required property"
        )
    finally:
        delete_topics_with_prefixes(kafka_bootstrap, [prefix])


def test_the_harness_reads_past_transactions_to_the_end(kafka_bootstrap: str) -> None:
    # read_to_end raises UnreadError for a partition it cannot read to its end: transactions
    # are no such case. An open one's records are past the end (the last stable offset) a
    # read-committed consumer is given; aborted ones and the markers are skipped.
    prefix = unique("c") + "."
    topic = f"{prefix}leads.normalized"
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])[topic].result(30)
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "transactional.id": unique("tx")})
    try:
        producer.init_transactions(30)
        producer.begin_transaction()
        producer.produce(topic, key=b"s:0", value=b"open")
        assert producer.flush(30) == 0
        assert read_to_end(kafka_bootstrap, [topic], stall_s=5) == {topic: []}
        producer.abort_transaction(30)
        producer.begin_transaction()
        producer.produce(topic, key=b"s:1", value=b"committed")
        producer.commit_transaction(30)
        producer.begin_transaction()
        producer.produce(topic, key=b"s:2", value=b"aborted")
        producer.abort_transaction(30)
        records = read_to_end(kafka_bootstrap, [topic], stall_s=5)
        assert [m.value() for m in records[topic]] == [b"committed"]
    finally:
        delete_topics_with_prefixes(kafka_bootstrap, [prefix])
