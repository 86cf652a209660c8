"""The worker's HTTP routes: webhooks, health, metrics and authenticated table inspection."""

from __future__ import annotations

import hmac
from typing import Any

from aiohttp import web
from faust.web import View

from app.main import Pipeline
from app.metrics import METRICS_CONTENT_TYPE

__all__ = ["register_views"]


def register_views(p: Pipeline) -> None:
    """Mount every route on the Faust web server."""
    app = p.app

    @app.page("/webhooks/realgeeks")
    class RealGeeksWebhook(View):
        async def post(self, request: web.Request) -> web.Response:
            return await p.ingress.realgeeks(request)

    @app.page("/webhooks/elevenlabs")
    class ElevenLabsWebhook(View):
        async def post(self, request: web.Request) -> web.Response:
            return await p.ingress.elevenlabs(request)

    @app.page("/metrics")
    class MetricsView(View):
        async def get(self, request: web.Request) -> web.Response:
            from app.health import refresh_lag_metrics

            refresh_lag_metrics(p)
            return web.Response(
                body=p.metrics.render(),
                headers={"Content-Type": METRICS_CONTENT_TYPE},
            )

    async def health(request: web.Request) -> web.Response:
        from app.health import health_report

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

    from app.inspection import register_inspection

    register_inspection(p)


def authorized(p: Pipeline, request: Any) -> bool:
    """Bearer-token check in constant time; False when no token is configured."""
    token = p.settings.admin_token
    if token is None:
        return False
    header = request.headers.get("Authorization", "")
    scheme, _, supplied = header.partition(" ")
    if scheme.lower() != "bearer" or not supplied:
        return False
    # aiohttp keeps header bytes that are not UTF-8 as lone surrogates; encoded back as
    # they came, such a header is simply a wrong token (it once made a 500).
    given = supplied.strip().encode("utf-8", "surrogateescape")
    return hmac.compare_digest(given, token.reveal().encode("utf-8"))
