"""How often the worker's consumer asks the broker for records.

Faust's consumer asks with ``fetch_max_wait_ms=1500`` and aiokafka's ``fetch_min_bytes=1``:
the broker answers as soon as one record is there. A worker reads about sixty partitions
(every agent topic), and aiokafka encodes each fetch request and decodes each answer for
all of them in Python, so at a steady 150 webhooks/s that consumer thread took a third of
the worker's CPU (py-spy, issue 13), one fetch per record or two. Asking for at least
``min_bytes`` but waiting no more than ``max_wait_ms`` bounds the fetches to a few hundred
a second whatever the rate, for at most ``max_wait_ms`` more latency per hop when traffic
is light.

The default wait is 50 ms (RGSYNC_FETCH_MAX_WAIT_MS). At 5 ms the fetches themselves and
the batches of one they hand over were most of a worker's CPU at a steady rate: at
100 webhooks/s, 6.4 ms of worker CPU per webhook against 3.7 ms at 50 ms, and at 200/s
the worker kept up only with 50 ms (ops/bench_e2e_latency.py, ops/bench_worker_rate.py).
Tens of milliseconds per hop are nothing against the minutes that speed to lead counts.
"""

from __future__ import annotations

from typing import Any

from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

__all__ = ["install"]

_settings: dict[str, int] = {}
_original: Any = None


def install(*, min_bytes: int, max_wait_ms: int) -> None:
    """Make every worker consumer Faust creates fetch with these bounds (idempotent)."""
    global _original
    _settings.update(min_bytes=min_bytes, max_wait_ms=max_wait_ms)
    if _original is not None:
        return
    _original = AIOKafkaConsumerThread._create_worker_consumer

    def create(self: Any, *args: Any, **kwargs: Any) -> Any:
        consumer = _original(self, *args, **kwargs)
        # Read by aiokafka when the consumer starts and makes its Fetcher.
        consumer._fetch_min_bytes = _settings["min_bytes"]
        consumer._fetch_max_wait_ms = _settings["max_wait_ms"]
        return consumer

    AIOKafkaConsumerThread._create_worker_consumer = create  # type: ignore[method-assign]
