"""The worker's HTTP routes: webhooks, health, metrics, table inspection and the /ui/ pages."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aiohttp import web
from faust.web import View

from realgeeks_sync.app.core.metrics import METRICS_CONTENT_TYPE
from realgeeks_sync.app.ingress.handlers import Ingress
from realgeeks_sync.app.ingress.initiation import Initiation
from realgeeks_sync.app.ingress.server import runner_start
from realgeeks_sync.app.operations.health import health_report, refresh_lag_metrics
from realgeeks_sync.app.operations.inspection import register_inspection
from realgeeks_sync.app.operations.ui import register_ui
from realgeeks_sync.app.streaming.pipeline import Pipeline

__all__ = ["register_views"]

Handler = Callable[[web.Request], Awaitable[web.Response]]


def register_views(p: Pipeline, ingress: Ingress, initiation: Initiation) -> None:
    """Mount every route on the Faust web server."""
    app = p.app

    @app.page("/webhooks/realgeeks")
    class RealGeeksWebhook(View):
        async def post(self, request: web.Request) -> web.Response:
            return await ingress.realgeeks(request)

    @app.page("/webhooks/elevenlabs")
    class ElevenLabsWebhook(View):
        async def post(self, request: web.Request) -> web.Response:
            return await ingress.elevenlabs(request)

    @app.page("/webhooks/elevenlabs/initiation")
    class InitiationWebhook(View):
        async def post(self, request: web.Request) -> web.Response:
            return await initiation.handle(request)

    async def metrics(_request: web.Request) -> web.Response:
        refresh_lag_metrics(p)
        return web.Response(body=p.metrics.render(), headers={"Content-Type": METRICS_CONTENT_TYPE})

    async def health(_request: web.Request) -> web.Response:
        report = await health_report(p)
        status = 200 if report["status"] == "healthy" else 503
        return web.json_response(report, status=status)

    if p.settings.ops_port:
        # On a port of their own (RGSYNC_OPS_PORT), kept off the webhook port.
        _serve_operations(p, {"/metrics": metrics, "/health": health, "/health/realgeeks": health})
    else:
        for path, handler in (
            ("/metrics", metrics),
            ("/health", health),
            ("/health/realgeeks", health),
        ):
            app.page(path)(_get_view(path, handler))

    register_inspection(p)
    register_ui(p)


def _get_view(path: str, handler: Handler) -> type[View]:
    """A Faust view answering GET with ``handler``."""

    class GetView(View):
        async def get(self, request: web.Request) -> web.Response:
            return await handler(request)

    # Faust names routes after their view class: one name per handler.
    name = "".join(part.title() for part in path.split("/") if part) + "View"
    GetView.__name__ = GetView.__qualname__ = name
    return GetView


def _serve_operations(p: Pipeline, routes: dict[str, Handler]) -> None:
    """Serve ``routes`` on RGSYNC_OPS_HOST:RGSYNC_OPS_PORT while the worker runs."""
    ops_app = web.Application()
    for path, handler in routes.items():
        ops_app.router.add_get(path, handler)

    @p.app.task
    async def serve_operations() -> None:
        runner = web.AppRunner(ops_app, access_log=None)
        await runner_start(runner, p.settings.ops_host, p.settings.ops_port)
        try:
            await asyncio.Event().wait()  # until the worker stops and cancels this task
        finally:
            await runner.cleanup()
