"""KafkaPublisher replaces a producer that failed fatally, and the records of the failed
one are refused at once (librdkafka's idempotent producer, confluentinc/librdkafka#3584)."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from confluent_kafka import KafkaError

from realgeeks_sync.app.core.errors import PublishError
from realgeeks_sync.app.streaming.publisher import KafkaPublisher


class FakeProducer:
    """librdkafka's Producer as the publisher uses it: produce, poll (which runs the
    error and delivery callbacks), purge, flush. `fail_fatally` makes the next poll report
    a fatal error, and every later produce raise, as librdkafka does."""

    made: list[FakeProducer] = []

    def __init__(self, config: dict[str, Any], logger: Any = None) -> None:
        self.config = config
        self.lock = threading.Lock()
        self.queued: list[Any] = []
        self.delivered: list[tuple[str, bytes]] = []
        self.fatal = False
        self.report_fatal = False
        self.acking = True
        self.purged = False
        FakeProducer.made.append(self)

    def produce(self, topic: str, value: bytes, key: bytes, on_delivery: Any) -> None:
        if self.fatal:
            from confluent_kafka import KafkaException

            raise KafkaException(KafkaError(KafkaError._FATAL, "fatal", fatal=True))
        with self.lock:
            self.queued.append((topic, value, on_delivery))

    def fail_fatally(self) -> None:
        self.fatal = self.report_fatal = True
        self.acking = False

    def poll(self, timeout: float) -> int:
        if self.report_fatal:
            self.report_fatal = False
            self.config["error_cb"](
                KafkaError(KafkaError._FATAL, "out of order sequence number", fatal=True)
            )
        if not self.acking:
            threading.Event().wait(min(timeout, 0.01))
            return 0
        with self.lock:
            queued, self.queued = self.queued, []
        for topic, value, on_delivery in queued:
            self.delivered.append((topic, value))
            on_delivery(None, None)
        threading.Event().wait(min(timeout, 0.01))
        return len(queued)

    def purge(self) -> None:
        self.purged = True
        with self.lock:
            queued, self.queued = self.queued, []
        for _topic, _value, on_delivery in queued:
            on_delivery(KafkaError(KafkaError._PURGE_QUEUE, "purged"), None)

    def flush(self, timeout: float) -> int:
        return len(self.queued)


@pytest.fixture(autouse=True)
def _fresh_fakes() -> None:
    FakeProducer.made = []


def test_a_fatal_error_replaces_the_producer_and_its_waiting_records_are_refused_at_once() -> None:
    publisher = KafkaPublisher("127.0.0.1:1", timeout_s=30, producer_factory=FakeProducer)

    async def scenario() -> None:
        await publisher.publish("raw", "site", b"before")
        first = FakeProducer.made[0]
        first.acking = False  # a record waits in the producer when it fails
        waiting = asyncio.ensure_future(publisher.publish("raw", "site", b"waiting"))
        await asyncio.sleep(0.05)
        first.fail_fatally()
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(PublishError, match="purged"):
            await waiting
        assert loop.time() - started < 5  # not its 30 s timeout
        await publisher.publish("raw", "site", b"after")

    try:
        asyncio.run(scenario())
    finally:
        publisher.close(timeout_s=0)
    first, second = FakeProducer.made
    assert first.purged and publisher.replacements == 1
    assert first.delivered == [("raw", b"before")]
    assert second.delivered == [("raw", b"after")]
    assert second.config is first.config  # same settings, error callback included


def test_transient_errors_keep_the_producer() -> None:
    publisher = KafkaPublisher("127.0.0.1:1", timeout_s=30, producer_factory=FakeProducer)
    try:
        FakeProducer.made[0].config["error_cb"](
            KafkaError(KafkaError._ALL_BROKERS_DOWN, "all brokers down")
        )

        async def one() -> None:
            await publisher.publish("raw", "site", b"x")

        asyncio.run(one())
    finally:
        publisher.close(timeout_s=0)
    assert len(FakeProducer.made) == 1 and publisher.replacements == 0


def _stopped_poll_thread() -> KafkaPublisher:
    """A publisher whose replacements the test makes itself, one at a time."""
    publisher = KafkaPublisher("127.0.0.1:1", timeout_s=30, producer_factory=FakeProducer)
    publisher._stopping.set()
    publisher._thread.join()
    return publisher


def test_replacements_that_keep_failing_are_spaced_further_apart_until_one_delivers() -> None:
    publisher = _stopped_poll_thread()
    fatal = KafkaError(KafkaError._FATAL, "cluster authorization failed", fatal=True)
    pauses = []
    for _ in range(8):
        publisher._fatal = fatal
        publisher._replace()
        pauses.append(publisher._replace_pause)
    assert pauses == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
    assert publisher.replacements == 8
    publisher._delivered = True  # the last new producer delivered a record
    publisher._fatal = fatal
    publisher._replace()
    assert publisher._replace_pause == 1.0


def test_a_new_producer_that_cannot_be_made_is_tried_again_and_the_old_one_kept_meanwhile() -> None:
    publisher = _stopped_poll_thread()
    failing = [True]

    def factory(config: dict[str, Any], logger: Any = None) -> FakeProducer:
        if failing[0]:
            raise RuntimeError("ssl.ca.location: No such file or directory")
        return FakeProducer(config, logger)

    publisher._new_producer = factory
    old = publisher._producer
    publisher._fatal = KafkaError(KafkaError._FATAL, "fatal", fatal=True)
    publisher._replace()  # logged, not raised: the poll thread lives on
    assert publisher._producer is old and publisher._fatal is not None
    assert publisher.replacements == 0
    failing[0] = False
    publisher._replace()
    assert publisher._producer is not old and publisher._fatal is None
    assert publisher.replacements == 1
