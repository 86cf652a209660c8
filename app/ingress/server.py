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
from datetime import UTC, datetime

import uvloop
from aiohttp import web

from realgeeks_sync.app.core.clock import business_clock
from realgeeks_sync.app.core.errors import ConfigError
from realgeeks_sync.app.core.logs import configure_logging
from realgeeks_sync.app.core.metrics import METRICS_CONTENT_TYPE, Metrics
from realgeeks_sync.app.core.settings import Settings
from realgeeks_sync.app.core.sites import SiteDirectory, reload_on_sighup
from realgeeks_sync.app.ingress.handlers import Ingress, standalone_app
from realgeeks_sync.app.ingress.initiation import initiation_for
from realgeeks_sync.app.streaming.caller_directory import DirectoryReader
from realgeeks_sync.app.streaming.kafka_probe import KafkaProbe
from realgeeks_sync.app.streaming.publisher import KafkaPublisher
from realgeeks_sync.app.streaming.topics import ensure_topics

__all__ = ["OPS_ROUTES", "build_ingress_app", "run_ingress", "runner_start"]

log = logging.getLogger(__name__)
SITES_KEY = web.AppKey("sites", SiteDirectory)
METRICS_KEY = web.AppKey("metrics", Metrics)

OPS_ROUTES: web.AppKey[list[web.AbstractRouteDef]] = web.AppKey("ops_routes")
"""Where build_ingress_app leaves /health and /metrics when they get a port of their own."""


def build_ingress_app(
    settings: Settings, *, kafka_probe: KafkaProbe | None = None
) -> tuple[web.Application, KafkaPublisher]:
    """The ingress app (webhooks, /health, /metrics) and its publisher, which the caller closes."""
    publisher = KafkaPublisher.for_settings(settings, client_id=f"{settings.app_id}-ingress")
    metrics = Metrics()
    probe = kafka_probe or KafkaProbe.for_settings(settings)
    received = business_clock(settings.clock_file)
    sites = SiteDirectory(settings)
    app = standalone_app(
        Ingress(settings, publisher, metrics, received_clock=received, sites=sites)
    )
    app[SITES_KEY] = sites
    app[METRICS_KEY] = metrics
    if sites.current.initiation_keys()[0]:
        # The pre-call webhook needs no tables: its own copy of the caller directory.
        # Mounted when start-up finds secrets (the environment's or the sites file's).
        initiation, reader = initiation_for(
            settings, metrics, publisher, f"ingress-{settings.ingress_port}", sites=sites
        )
        app.router.add_post("/webhooks/elevenlabs/initiation", initiation.handle)
        app.on_startup.append(lambda _app: _start(reader))
        app.on_cleanup.append(lambda _app: asyncio.to_thread(reader.stop))

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
        return web.Response(body=metrics.render(), headers={"Content-Type": METRICS_CONTENT_TYPE})

    ops: list[web.AbstractRouteDef] = [
        web.get("/health", health),
        web.get("/metrics", render_metrics),
    ]
    if settings.ops_port:
        app[OPS_ROUTES] = ops  # served on their own port by _serve
    else:
        app.add_routes(ops)
    return app, publisher


async def _start(reader: DirectoryReader) -> None:
    reader.start()


async def _serve(settings: Settings) -> None:
    app, publisher = build_ingress_app(settings)
    # Pauses timed, not tuned: ~4 collections per 100,000 webhooks here, and freezing the
    # heap changed nothing measurable under wrk (the worker's heap is what needed it).
    app[METRICS_KEY].gc_pauses.install()
    # In-flight requests end within the publish bound; a little more for the answer.
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=settings.publish_timeout_s + 5.0)
    await runner.setup()
    runners: list[web.AppRunner] = []
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    reload_on_sighup(app[SITES_KEY], log)
    try:
        site = web.TCPSite(runner, settings.web_host, settings.ingress_port)
        try:
            await site.start()
        except OSError as exc:  # port taken or host not ours: a setting to change
            raise ConfigError(
                f"cannot listen on {settings.web_host}:{settings.ingress_port} "
                f"(RGSYNC_WEB_HOST, RGSYNC_INGRESS_PORT): {exc.strerror or exc}"
            ) from None
        if OPS_ROUTES in app:
            ops_app = web.Application()
            routes: list[web.AbstractRouteDef] = app[OPS_ROUTES]
            ops_app.add_routes(routes)
            ops_runner = web.AppRunner(ops_app, access_log=None)
            await runner_start(ops_runner, settings.ops_host, settings.ops_port)
            runners.append(ops_runner)
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
        for extra in runners:
            await extra.cleanup()
        await asyncio.to_thread(publisher.close)
    log.info("ingress stopped")


async def runner_start(runner: web.AppRunner, host: str, port: int) -> None:
    """Start an operations listener (RGSYNC_OPS_PORT).

    Raises:
        ConfigError: the host and port cannot be bound.
    """
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:
        raise ConfigError(
            f"cannot listen on {host}:{port} (RGSYNC_OPS_HOST, RGSYNC_OPS_PORT): "
            f"{exc.strerror or exc}"
        ) from None


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
    # uvloop: the event loop is most of an ingress's CPU per request.
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(_serve(settings))
