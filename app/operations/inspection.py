"""Table inspection pages (/tables/*): bearer token required, answered by the key's owner.

Every table the raw-topic agent writes lives on the partition of its site, so the site
names the worker that can answer. The owner comes from Faust's own assignment (the
changelog distribution every member receives); the partition is computed here with
Kafka's murmur2, as the ingress producer partitions records, rather than through Faust's
table routes, whose producer-metadata lookup fails on a worker that never wrote the
changelog (it answered 503 on the second of two workers).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp import web
from faust.types import TP
from faust.web import View
from yarl import URL

from realgeeks_sync.app.operations.admin_auth import authorized
from realgeeks_sync.app.operations.internal_auth import (
    SIGNATURE_HEADER,
    forwarding_key,
    sign_forwarded,
    verify_forwarded,
)
from realgeeks_sync.app.streaming.partitioning import site_partition
from realgeeks_sync.app.streaming.pipeline import Pipeline

__all__ = ["answer_at_owner", "forward", "owner_url", "partition_for", "register_inspection"]


partition_for = site_partition

# Headers of the owner's answer that forward() passes on to the caller.
_PASSED_ON = (
    "Cache-Control",
    "Content-Security-Policy",
    "Referrer-Policy",
    "X-Content-Type-Options",
    "X-Frame-Options",
)


def owner_url(p: Pipeline, table: Any, site_uuid: str) -> str | None:
    """The web URL of the worker holding ``site_uuid``'s partition of ``table``, if known."""
    topic = table.changelog_topic.get_topic_name()
    tp = TP(topic, partition_for(site_uuid, p.settings.partitions))
    distribution = getattr(p.app.assignor, "_tps_url", {})
    url = distribution.get(tp)
    return str(url) if url else None


def _denied(p: Pipeline) -> web.Response:
    if p.settings.admin_token is None:
        return web.json_response(
            {"error": "inspection disabled: set RGSYNC_ADMIN_TOKEN"}, status=404
        )
    return web.json_response(
        {"error": "missing or wrong bearer token"},
        status=401,
        headers={"WWW-Authenticate": "Bearer"},
    )


async def forward(
    owner: str, path_qs: str, key: bytes, origin: str, *, now: float | None = None
) -> web.Response:
    """Ask the owning worker, signing the request instead of passing the caller's token."""
    headers = sign_forwarded(key, "GET", path_qs, origin, time.time() if now is None else now)
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.get(
                # encoded: the path goes out byte for byte as signed (no re-quoting)
                URL(owner.rstrip("/") + path_qs, encoded=True),
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=10),
                allow_redirects=False,
            ) as resp,
        ):
            return web.Response(
                body=await resp.read(),
                status=resp.status,
                content_type=resp.content_type,
                # The owner's cache and framing rules hold for its page wherever it is shown
                # (a forwarded /ui/ page lost its no-store and frame-ancestors, clickjackable).
                headers={h: resp.headers[h] for h in _PASSED_ON if h in resp.headers},
            )
    except (aiohttp.ClientError, TimeoutError):
        return web.json_response({"error": "the owning worker did not answer"}, status=503)


async def answer_at_owner(
    p: Pipeline,
    request: Any,
    site_uuid: str,
    table: Any,
    local: Callable[[], Awaitable[web.Response]],
    *,
    allowed: Callable[[Any], bool] | None = None,
    denied: Callable[[], web.Response] | None = None,
    forward_query: str = "",
) -> web.Response:
    """Answer here when this worker holds the site's partition of ``table``, else forward the
    request, signed, to the worker that does (``allowed``: who may ask; the bearer token by
    default, the /ui/ pages also take their login cookie; ``forward_query``: parameters the
    owner needs that the caller's cookie carried, added to the signed path)."""
    me = str(p.app.conf.canonical_url).rstrip("/")
    key = forwarding_key(p.settings.internal_secret, p.settings.admin_token)
    refuse = denied or (lambda: _denied(p))
    path_qs = request.raw_path  # as sent: what the signature covers
    if SIGNATURE_HEADER in request.headers:
        # Forwarded by another worker: signed, no token; answered here, never again
        # forwarded (a stale assignment cannot make two workers bounce a request).
        if p.settings.admin_token is None or not verify_forwarded(
            key, request.headers, request.method, path_qs, time.time()
        ):
            return refuse()
        return await local()
    if not (allowed or (lambda r: authorized(p.settings, r)))(request):
        return refuse()
    owner = owner_url(p, table, site_uuid)
    if owner is None:
        # No assignment known yet (joining, rebalancing): answer only what we hold.
        tp = TP(
            table.changelog_topic.get_topic_name(),
            partition_for(site_uuid, p.settings.partitions),
        )
        if tp not in p.app.assignor.assigned_actives():
            return web.json_response(
                {"error": "partitions are being assigned; retry"},
                status=503,
                headers={"Retry-After": "2"},
            )
        return await local()
    if owner.rstrip("/") == me or key is None:
        return await local()
    if forward_query:
        path_qs += ("&" if "?" in path_qs else "?") + forward_query
    return await forward(owner, path_qs, key, me)


def register_inspection(p: Pipeline) -> None:
    """Mount /tables/leads, /tables/identity, /tables/processed and /tables/dialer."""
    from realgeeks_sync.app.operations.lookups import find_lead, lookup_identity, processed_entry

    app, t = p.app, p.tables

    async def answer(
        request: Any, site_uuid: str, table: Any, local: Callable[[], Awaitable[web.Response]]
    ) -> web.Response:
        return await answer_at_owner(p, request, site_uuid, table, local)

    @app.page("/tables/leads/{site_uuid}/{lead_id}")
    class LeadView(View):
        async def get(self, request: Any, site_uuid: str, lead_id: str) -> Any:
            async def local() -> web.Response:
                lead = find_lead(t.identity_index, t.lead_snapshots, site_uuid, lead_id)
                if lead is None:
                    return web.json_response({"error": "no such lead"}, status=404)
                return web.json_response(lead)

            return await answer(request, site_uuid, t.lead_snapshots, local)

    @app.page("/tables/identity/{site_uuid}")
    class IdentityView(View):
        async def get(self, request: Any, site_uuid: str) -> Any:
            async def local() -> web.Response:
                email, phone = request.query.get("email"), request.query.get("phone")
                if not email and not phone:
                    return web.json_response({"error": "give ?email= or ?phone="}, status=400)
                found = lookup_identity(
                    t.identity_index,
                    site_uuid,
                    email=email,
                    phone=phone,
                    region=p.settings.default_region,
                )
                if found is None:
                    return web.json_response({"error": "no lead with that identifier"}, status=404)
                return web.json_response(found)

            return await answer(request, site_uuid, t.identity_index, local)

    @app.page("/tables/processed/{site_uuid}/{message_id}")
    class ProcessedView(View):
        async def get(self, request: Any, site_uuid: str, message_id: str) -> Any:
            async def local() -> web.Response:
                entry = processed_entry(t.processed_messages, site_uuid, message_id)
                if entry is None:
                    return web.json_response({"error": "message id not seen"}, status=404)
                return web.json_response(entry)

            return await answer(request, site_uuid, t.processed_messages, local)

    @app.page("/tables/dialer/{site_uuid}/{lead_id}")
    class DialerView(View):
        async def get(self, request: Any, site_uuid: str, lead_id: str) -> Any:
            async def local() -> web.Response:
                from realgeeks_sync.app.domain.dialing.store import DialerStore

                store = DialerStore(t.dialer_leads, t.dialer_sites, t.do_not_call)
                record = store.lead(site_uuid, lead_id)
                if record is None:
                    return web.json_response({"error": "the dialer has no such lead"}, status=404)
                blocked = {
                    number: entry.to_json()
                    for number in record.phones
                    if (entry := store.dnc(site_uuid, "phone", number)) is not None
                }
                lead_entry = store.dnc(site_uuid, "lead", lead_id)
                return web.json_response(
                    {
                        "lead": record.to_json(),
                        "do_not_call": {
                            "lead": lead_entry.to_json() if lead_entry else None,
                            "phones": blocked,
                        },
                    }
                )

            return await answer(request, site_uuid, t.dialer_leads, local)
