"""Committed offsets on the real broker: every agent marks what it finished, so the
consumer group's position reaches the end of each topic it consumes (the offset guard
would otherwise hold commits back, and a restart would reread everything)."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from confluent_kafka import Consumer, KafkaException, TopicPartition

from ops.testkit.fakes.elevenlabs import FakeElevenLabs
from ops.testkit.support import Worker, unique
from tests.integration.helpers import send_realgeeks

pytestmark = pytest.mark.integration

CONSUMED = (
    "realgeeks.webhooks.raw",
    "elevenlabs.webhooks.raw",
    "calls.context",
    "sync.conversations",
)


def _lag(bootstrap: str, group: str, topics: list[str]) -> dict[str, int]:
    """Records between the group's committed position and the end, per topic (-1: the
    broker did not say this time, as a busy single broker sometimes answers "not leader")."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "log_level": 0})
    try:
        lag: dict[str, int] = {}
        for topic in topics:
            try:
                parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
                tps = [TopicPartition(topic, p) for p in parts]
                committed = {tp.partition: tp.offset for tp in consumer.committed(tps, timeout=10)}
                total = 0
                for p in parts:
                    low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
                    position = committed[p] if committed[p] >= 0 else low
                    total += high - position
            except KafkaException:
                total = -1
            lag[topic] = total
        return lag
    finally:
        consumer.close()


async def test_commits_reach_the_end_of_every_consumed_topic(
    start_worker: Callable[..., Worker], kafka_bootstrap: str
) -> None:
    import asyncio

    w = await asyncio.to_thread(start_worker)
    prefix = w.env["RGSYNC_TOPIC_PREFIX"]
    site = unique("site")
    for i in range(20):
        body = {"site_uuid": site, "id": unique("l"), "email": f"o{i}@example.com"}
        status = await asyncio.to_thread(send_realgeeks, w, body, action="created")
        assert status == 200
    # A poison message too: dead-lettered is finished, its offset must be committed.
    assert await asyncio.to_thread(send_realgeeks, w, {"site_uuid": site}, action="created") == 200
    async with FakeElevenLabs() as el:
        for _ in range(3):
            delivery = await el.send_post_call(
                f"{w.url}/webhooks/elevenlabs",
                "el-secret",
                unique("conv"),
                "success",
                dynamic_variables={"lead_id": unique("l"), "site_uuid": site},
            )
            assert delivery.status == 200
    topics = [prefix + t for t in CONSUMED]
    deadline = time.monotonic() + 90
    lag = await asyncio.to_thread(_lag, kafka_bootstrap, w.env["RGSYNC_APP_ID"], topics)
    while time.monotonic() < deadline and any(lag.values()):
        await asyncio.sleep(1)
        lag = await asyncio.to_thread(_lag, kafka_bootstrap, w.env["RGSYNC_APP_ID"], topics)
    assert lag == dict.fromkeys(topics, 0)
