"""Is the broker there? A metadata request, cached, shared by concurrent /health calls.

The worker's /health and the standalone ingress's both ask it; one AdminClient is kept
for the process's life instead of a new connection per probe.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from realgeeks_sync.app.core.settings import Settings
from realgeeks_sync.app.streaming.kafka_config import librdkafka_config

__all__ = ["KafkaProbe"]


def _metadata_check(config: dict[str, Any], timeout_s: float) -> Callable[[], int]:
    """A blocking metadata request; returns how many brokers the cluster metadata lists."""
    admin: AdminClient | None = None

    def check() -> int:
        nonlocal admin
        if admin is None:  # created on first use: building the app opens no connection
            admin = AdminClient(config)
        return len(admin.list_topics(timeout=timeout_s).brokers)

    return check


class KafkaProbe:
    """Whether the broker answers a metadata request, asked at most once per ``ttl_s``."""

    def __init__(
        self,
        check: Callable[[], int],
        *,
        ttl_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._check = check
        self._ttl_s = ttl_s
        self._clock = clock
        self._lock = asyncio.Lock()
        self._result: dict[str, Any] | None = None
        self._checked_at = 0.0

    @classmethod
    def for_settings(cls, settings: Settings, timeout_s: float = 2.0) -> KafkaProbe:
        """A probe of the brokers named in the settings."""
        # log_level 0: a down broker is reported by /health, not by a log line a second.
        return cls(_metadata_check(librdkafka_config(settings, log_level=0), timeout_s))

    async def status(self) -> dict[str, Any]:
        """``{"status": "ok", "brokers": n}`` or ``{"status": "down", "error": name}``."""
        # One probe at a time: a burst of /health requests shares one metadata request.
        async with self._lock:
            if self._result is not None and self._clock() - self._checked_at < self._ttl_s:
                return self._result
            try:
                brokers = await asyncio.to_thread(self._check)
                result: dict[str, Any] = {"status": "ok", "brokers": brokers}
            except KafkaException as exc:
                result = {"status": "down", "error": type(exc).__name__}
            self._result, self._checked_at = result, self._clock()
            return result
