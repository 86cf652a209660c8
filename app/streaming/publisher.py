"""Acknowledged writes to Kafka from asyncio code, on confluent-kafka (librdkafka).

The ingress answers 200 only after ``publish`` returns, i.e. after the broker has the
record with acks=all. librdkafka batches and retries in its own threads; one poll thread
turns its delivery reports into asyncio futures.

Why not Faust's own aiokafka producer: ops/bench_ingest.py measures both side by side.
It now finds this one ahead (1.32-1.37x the requests per second, 68 against 98 us of
CPU per request; early runs had aiokafka ~15 % cheaper), and aiokafka's idempotent
producer wedged for good with OutOfOrderSequenceNumber after a broker restart
(tests/integration/test_broker_outage.py, every webhook answered 503 afterwards), while
librdkafka recovers.

librdkafka's idempotent producer can still fail fatally (an out-of-order sequence after
a cluster outage, confluentinc/librdkafka#3584): from then on every record fails, and
the ingress would answer 503 until restarted. A fatal error replaces the producer with
a new one (a new producer id); records of the old one are answered 503 and re-sent by
their senders, and the idempotent agents drop any that had landed.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from realgeeks_sync.app.core.errors import PublishError
from realgeeks_sync.app.core.settings import Settings
from realgeeks_sync.app.core.sizes import max_message_bytes
from realgeeks_sync.app.streaming.broker_retry import next_pause
from realgeeks_sync.app.streaming.kafka_config import librdkafka_config

__all__ = ["MAX_REPLACE_PAUSE_S", "MIN_REPLACE_PAUSE_S", "KafkaPublisher"]

log = logging.getLogger(__name__)

MIN_REPLACE_PAUSE_S = 1.0
"""The least time between two replacements of a fatally failed producer."""
MAX_REPLACE_PAUSE_S = 30.0
"""The most, while each new producer fails fatally before delivering anything."""


class KafkaPublisher:
    """Produce records and await the broker's acknowledgement within a bound."""

    def __init__(
        self,
        bootstrap_servers: str,
        *,
        timeout_s: float = 5.0,
        client_id: str = "realgeeks-sync-ingress",
        extra_config: dict[str, Any] | None = None,
        producer_factory: Callable[..., Producer] = Producer,
    ) -> None:
        self.timeout_s = timeout_s
        self.replacements = 0  # producers replaced after a fatal error
        config: dict[str, Any] = {
            "bootstrap.servers": bootstrap_servers,
            "client.id": client_id,
            "acks": "all",
            # Broker-side dedup of librdkafka's own retries; ordering kept per partition.
            "enable.idempotence": True,
            # Closed-loop senders wait out the linger on every request: 2 ms held 32
            # connections to 7,900 req/s, 1 ms gave 11,600 and 0 gave 6,100 (a produce
            # request per record; ops/bench_ingest.py, same run as bare aiohttp).
            "linger.ms": 1,
            # librdkafka's backoff grows to 10 s while the broker is down; webhooks answered
            # 503 meanwhile, so come back within a second of the broker's return.
            "reconnect.backoff.max.ms": 1000,
            # The delivery report fails when our bound is over, so a record we answered
            # 503 for is not left queued forever (it may still land: the sender's retry
            # is then a duplicate that the idempotent agents drop).
            "message.timeout.ms": max(1000, int(timeout_s * 1000)),
            # Java/aiokafka's partitioner, so keys land where Faust expects them.
            "partitioner": "murmur2_random",
            # No compression: aiokafka (inside Faust) reads lz4/snappy/zstd only with
            # optional codec packages, and webhook bodies are small.
            "compression.type": "none",
            "log_level": 3,
        }
        config.update(extra_config or {})
        config["error_cb"] = self._on_error
        self._config = config
        self._new_producer = producer_factory
        self._fatal: KafkaError | None = None  # set on the poll thread, by error_cb
        self._replace_after = 0.0  # monotonic time before which no new replacement
        self._replace_pause = 0.0
        self._delivered = False  # a record was acknowledged since the last replacement
        self._producer = producer_factory(config, logger=log)
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._settled: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None], Any]] = []
        self._thread = threading.Thread(target=self._poll_loop, name="kafka-publisher", daemon=True)
        self._thread.start()

    @classmethod
    def for_settings(
        cls, settings: Settings, *, client_id: str = "realgeeks-sync-ingress"
    ) -> KafkaPublisher:
        """A publisher to the settings' brokers, with their security (kafka_config.py)."""
        extra = librdkafka_config(
            settings, **{"message.max.bytes": max_message_bytes(settings.max_body_bytes)}
        )
        bootstrap = extra.pop("bootstrap.servers")
        return cls(
            bootstrap,
            timeout_s=settings.publish_timeout_s,
            client_id=client_id,
            extra_config=extra,
        )

    def _on_error(self, err: KafkaError) -> None:
        # librdkafka's global errors (connection refused, all brokers down) are transient
        # and it retries them itself; only a fatal one needs us.
        if err.fatal():
            self._fatal = err

    def _poll_loop(self) -> None:
        while not self._stopping.is_set():
            self._producer.poll(0.05)
            self._hand_over()
            if self._fatal is not None and time.monotonic() >= self._replace_after:
                self._replace()

    def _replace(self) -> None:
        """A new producer for one that failed fatally (on the poll thread).

        Some fatal errors come back at once (a missing IdempotentWrite ACL): replacements
        are spaced by a pause that doubles to ``MAX_REPLACE_PAUSE_S`` and starts again at
        ``MIN_REPLACE_PAUSE_S`` once a record was delivered in between.
        """
        previous = 0.0 if self._delivered else self._replace_pause
        self._replace_pause = next_pause(previous, MIN_REPLACE_PAUSE_S, MAX_REPLACE_PAUSE_S)
        self._replace_after = time.monotonic() + self._replace_pause
        self._delivered = False
        reason = self._fatal
        try:
            new = self._new_producer(self._config, logger=log)
        except Exception:
            log.exception(
                "Kafka producer failed fatally and a new one could not be made; retrying",
                extra={"retry_in_s": self._replace_pause},
            )
            return  # _fatal stays set: tried again after the pause
        self._fatal = None
        old, self._producer = self._producer, new
        self.replacements += 1
        log.error(
            "Kafka producer failed fatally; replaced by a new one",
            extra={"reason": reason.str() if reason is not None else None},
        )
        # Its queued and in-flight records fail now (their senders are answered 503)
        # rather than at their timeouts; flush serves the reports of in-flight ones,
        # which librdkafka's broker threads purge a moment later.
        try:
            old.purge()
        except (KafkaException, RuntimeError) as exc:  # a fatal producer may refuse
            log.debug("purging the failed producer refused", extra={"reason": str(exc)})
        old.flush(1.0)
        self._hand_over()

    def _hand_over(self) -> None:
        # One wake-up of each event loop per poll batch, not one per record: the
        # per-record call_soon_threadsafe was a visible share of the ingress CPU.
        with self._lock:
            settled, self._settled = self._settled, []
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[None], Any]]] = {}
        for loop, future, err in settled:
            by_loop.setdefault(loop, []).append((future, err))
        for loop, items in by_loop.items():
            try:
                loop.call_soon_threadsafe(_settle_all, items)
            except RuntimeError:  # that loop is closed: nobody is waiting any more
                continue

    async def publish(self, topic: str, key: str, value: bytes) -> None:
        """Write one record and wait for acks=all.

        Raises:
            PublishError: not acknowledged within the bound, queue full, or a broker error.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()

        def on_delivery(err: KafkaError | None, _msg: Message) -> None:
            # Runs on the poll thread (or in flush()); settled in batches by _hand_over.
            if err is None:
                self._delivered = True
            with self._lock:
                self._settled.append((loop, future, err))

        try:
            self._producer.produce(
                topic, value=value, key=key.encode("utf-8"), on_delivery=on_delivery
            )
        except BufferError as exc:
            raise PublishError("producer queue is full") from exc
        except KafkaException as exc:
            raise PublishError(f"produce failed: {exc}") from exc
        # One timer on the future itself: wait_for + shield cost two more futures and their
        # callbacks per request, a visible share of the ingress CPU. A late delivery report
        # finds the future done and is dropped (_settle_all).
        timer = loop.call_later(self.timeout_s, _expire, future, self.timeout_s)
        try:
            await future
        finally:
            timer.cancel()

    def flush(self, timeout_s: float = 10.0) -> int:
        """Wait for queued records; returns how many are still undelivered."""
        remaining = int(self._producer.flush(timeout_s))
        self._hand_over()
        return remaining

    def close(self, timeout_s: float = 10.0) -> None:
        """Flush what is queued and stop the poll thread."""
        remaining = self.flush(timeout_s)
        if remaining:
            log.warning("publisher closed with undelivered records", extra={"count": remaining})
        self._stopping.set()
        self._thread.join(timeout=2)


def _expire(future: asyncio.Future[None], timeout_s: float) -> None:
    if not future.done():
        future.set_exception(PublishError(f"no acknowledgement from Kafka within {timeout_s:g}s"))


def _settle_all(items: list[tuple[asyncio.Future[None], Any]]) -> None:
    for future, err in items:
        if future.done():
            continue
        if err is None:
            future.set_result(None)
        else:
            future.set_exception(PublishError(f"Kafka refused the record: {err.str()}"))
