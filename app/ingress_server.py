"""The webhook ingress as a process of its own (``realgeeks-sync ingress``).

The worker serves webhooks too, but Faust starts its web server only after table recovery
(a restarting worker refuses webhooks) and its handlers share one event loop with the
agents. This process holds no tables and joins no consumer group: it verifies, publishes
to the raw topics and answers, so N of them can run in front of M workers.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from app.errors import ConfigError
from app.ingress import Ingress, standalone_app
from app.logs import configure_logging
from app.metrics import Metrics
from app.publisher import KafkaPublisher
from app.settings import Settings
from app.topics import ensure_topics

__all__ = ["KafkaProbe", "build_ingress_app", "run_ingress"]

log = logging.getLogger(__name__)

_METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _metadata_check(bootstrap_servers: str, timeout_s: float) -> Callable[[], int]:
    """A blocking metadata request; returns how many brokers the cluster metadata lists."""
    admin: AdminClient | None = None

    def check() -> int:
        nonlocal admin
        if admin is None:  # created on first use: building the app opens no connection
            # log_level 0: a down broker is reported by /health, not by a log line a second.
            admin = AdminClient({"bootstrap.servers": bootstrap_servers, "log_level": 0})
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
        return cls(_metadata_check(settings.bootstrap_servers, timeout_s))

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


def build_ingress_app(
    settings: Settings, *, kafka_probe: KafkaProbe | None = None
) -> tuple[web.Application, KafkaPublisher]:
    """The ingress app (webhooks, /health, /metrics) and its publisher, which the caller closes."""
    publisher = KafkaPublisher(
        settings.bootstrap_servers,
        timeout_s=settings.publish_timeout_s,
        client_id=f"{settings.app_id}-ingress",
    )
    metrics = Metrics()
    probe = kafka_probe or KafkaProbe.for_settings(settings)
    app = standalone_app(Ingress(settings, publisher, metrics))

    async def health(_request: web.Request) -> web.Response:
        kafka = await probe.status()
        ok = kafka["status"] == "ok"
        report = {
            "status": "ok" if ok else "down",
            "reasons": [] if ok else ["Kafka is unreachable: webhooks are answered 503"],
            "checks": {"kafka": kafka},
            "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        }
        return web.json_response(report, status=200 if ok else 503)

    async def render_metrics(_request: web.Request) -> web.Response:
        return web.Response(body=metrics.render(), headers={"Content-Type": _METRICS_CONTENT_TYPE})

    app.router.add_get("/health", health)
    app.router.add_get("/metrics", render_metrics)
    return app, publisher


async def _serve(settings: Settings) -> None:
    app, publisher = build_ingress_app(settings)
    # In-flight requests end within the publish bound; a little more for the answer.
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=settings.publish_timeout_s + 5.0)
    await runner.setup()
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    try:
        site = web.TCPSite(runner, settings.web_host, settings.ingress_port)
        try:
            await site.start()
        except OSError as exc:  # port taken or host not ours: a setting to change
            raise ConfigError(
                f"cannot listen on {settings.web_host}:{settings.ingress_port} "
                f"(RGSYNC_WEB_HOST, RGSYNC_INGRESS_PORT): {exc.strerror or exc}"
            ) from None
        log.info(
            "ingress listening",
            extra={"host": settings.web_host, "port": settings.ingress_port},
        )
        await stopping.wait()
        log.info("ingress stopping")
    finally:
        # Stop accepting and let the requests in flight get their answers first; then
        # flush, so the exit drops nothing librdkafka still holds.
        await runner.cleanup()
        await asyncio.to_thread(publisher.close)
    log.info("ingress stopped")


def run_ingress(settings: Settings) -> None:
    """Create the topics, then serve the ingress until SIGTERM or SIGINT.

    Raises:
        KafkaException: the broker did not answer (or refused the topics) at start.
        ConfigError: the host and port cannot be bound.
    """
    configure_logging(settings.log_level, settings.log_format)
    # Before the first publish: a topic the broker auto-created would get the broker's
    # default partition count, not ours, and sites would land on the wrong partitions.
    ensure_topics(settings)
    asyncio.run(_serve(settings))
