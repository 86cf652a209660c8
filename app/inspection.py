"""Table inspection pages (/tables/*): bearer token required, answered by the key's owner.

Routed with Faust table routes on the site uuid: every table the raw-topic agent writes
lives on the partition of its site, so the site names the worker that can answer.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from faust.web import View

from app.main import Pipeline

__all__ = ["register_inspection"]


def _denied(p: Pipeline) -> Any:
    if p.settings.admin_token is None:
        return web.json_response(
            {"error": "inspection disabled: set RGSYNC_ADMIN_TOKEN"}, status=404
        )
    return web.json_response(
        {"error": "missing or wrong bearer token"},
        status=401,
        headers={"WWW-Authenticate": "Bearer"},
    )


def register_inspection(p: Pipeline) -> None:
    """Mount /tables/leads, /tables/identity and /tables/processed."""
    from app.web import authorized
    from tables.inspect import find_lead, lookup_identity, processed_entry

    app, t = p.app, p.tables

    def json(data: Any, status: int = 200) -> Any:
        return web.json_response(data, status=status)

    @app.page("/tables/leads/{site_uuid}/{lead_id}")
    class LeadView(View):
        async def get(self, request: Any, site_uuid: str, lead_id: str) -> Any:
            if not authorized(p, request):
                return _denied(p)
            return await self.routed(request, site_uuid=site_uuid, lead_id=lead_id)  # type: ignore[call-arg]

        @app.table_route(table=t.lead_snapshots, match_info="site_uuid")  # type: ignore[arg-type]
        async def routed(self, request: Any, site_uuid: str, lead_id: str) -> Any:
            lead = find_lead(t.identity_index, t.lead_snapshots, site_uuid, lead_id)
            return json(lead) if lead else json({"error": "no such lead"}, 404)

    @app.page("/tables/identity/{site_uuid}")
    class IdentityView(View):
        async def get(self, request: Any, site_uuid: str) -> Any:
            if not authorized(p, request):
                return _denied(p)
            return await self.routed(request, site_uuid=site_uuid)  # type: ignore[call-arg]

        @app.table_route(table=t.identity_index, match_info="site_uuid")  # type: ignore[arg-type]
        async def routed(self, request: Any, site_uuid: str) -> Any:
            email, phone = request.query.get("email"), request.query.get("phone")
            if not email and not phone:
                return json({"error": "give ?email= or ?phone="}, 400)
            result = lookup_identity(
                t.identity_index,
                site_uuid,
                email=email,
                phone=phone,
                region=p.settings.default_region,
            )
            return json(result) if result else json({"error": "no lead with that identifier"}, 404)

    @app.page("/tables/processed/{site_uuid}/{message_id}")
    class ProcessedView(View):
        async def get(self, request: Any, site_uuid: str, message_id: str) -> Any:
            if not authorized(p, request):
                return _denied(p)
            return await self.routed(request, site_uuid=site_uuid, message_id=message_id)  # type: ignore[call-arg]

        @app.table_route(table=t.processed_messages, match_info="site_uuid")  # type: ignore[arg-type]
        async def routed(self, request: Any, site_uuid: str, message_id: str) -> Any:
            entry = processed_entry(t.processed_messages, site_uuid, message_id)
            return json(entry) if entry else json({"error": "message id not seen"}, 404)
