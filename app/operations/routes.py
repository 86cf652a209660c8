"""The worker's HTTP routes: webhooks, health, metrics, table inspection and the /ui/ pages."""

from __future__ import annotations

from aiohttp import web
from faust.web import View

from realgeeks_sync.app.core.metrics import METRICS_CONTENT_TYPE
from realgeeks_sync.app.ingress.handlers import Ingress
from realgeeks_sync.app.operations.health import health_report, refresh_lag_metrics
from realgeeks_sync.app.operations.inspection import register_inspection
from realgeeks_sync.app.operations.ui import register_ui
from realgeeks_sync.app.streaming.pipeline import Pipeline

__all__ = ["register_views"]


def register_views(p: Pipeline, ingress: Ingress) -> None:
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

    @app.page("/metrics")
    class MetricsView(View):
        async def get(self, request: web.Request) -> web.Response:
            refresh_lag_metrics(p)
            return web.Response(
                body=p.metrics.render(),
                headers={"Content-Type": METRICS_CONTENT_TYPE},
            )

    async def health(request: web.Request) -> web.Response:
        report = await health_report(p)
        status = 200 if report["status"] == "healthy" else 503
        return web.json_response(report, status=status)

    @app.page("/health")
    class HealthView(View):
        async def get(self, request: web.Request) -> web.Response:
            return await health(request)

    @app.page("/health/realgeeks")
    class RealGeeksHealthView(View):
        async def get(self, request: web.Request) -> web.Response:
            return await health(request)

    register_inspection(p)
    register_ui(p)
