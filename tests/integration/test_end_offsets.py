"""The end offsets the dialer's ticks carry come from the broker, as of the moment asked
(app/streaming/end_offsets.py), not from a consumer's last fetch."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from ops.testkit.support import PREFIXES_IN_USE, unique
from realgeeks_sync.app.core.settings import Settings
from realgeeks_sync.app.streaming.end_offsets import EndOffsets, EndOffsetsError

pytestmark = pytest.mark.integration


def _settings(bootstrap: str, prefix: str) -> Settings:
    return Settings.from_env(
        {
            "RGSYNC_REALGEEKS_SECRETS": "s",
            "RGSYNC_KAFKA_URL": f"kafka://{bootstrap}",
            "RGSYNC_TOPIC_PREFIX": prefix,
        }
    )


async def test_the_end_is_the_brokers_at_the_time_asked(kafka_bootstrap: str) -> None:
    prefix = unique("t") + "."
    PREFIXES_IN_USE.append(prefix)
    settings = _settings(kafka_bootstrap, prefix)
    topic = settings.topic("end-offsets-probe")  # not an event topic: no schema applies
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    for future in admin.create_topics([NewTopic(topic, 2, 1)]).values():
        future.result(30)
    ends = EndOffsets(settings)
    try:
        deadline = time.monotonic() + 20
        while True:  # a new topic's leaders take a moment to be known
            try:
                assert await ends.ask(topic, [0, 1]) == {0: 0, 1: 0}
                break
            except EndOffsetsError:
                if time.monotonic() > deadline:
                    raise
        producer = Producer({"bootstrap.servers": kafka_bootstrap})
        for n in range(7):
            producer.produce(topic, b"x", partition=n % 2)
        assert producer.flush(30) == 0
        # Asked again on the same handle: the new records count at once.
        assert await ends.ask(topic, [1, 0, 1]) == {0: 4, 1: 3}
    finally:
        await ends.close()


async def test_an_unreachable_broker_is_a_specific_error_within_the_timeout() -> None:
    settings = _settings("127.0.0.1:1", unique("t") + ".")
    ends = EndOffsets(settings, timeout_s=1.0)
    started = time.monotonic()
    try:
        with pytest.raises(EndOffsetsError):
            await ends.ask(settings.topic("sync.optouts"), [0])
    finally:
        await ends.close()
    assert time.monotonic() - started < 30
