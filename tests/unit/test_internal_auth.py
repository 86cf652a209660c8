"""Inspection routed between workers: signed, and never with the admin token."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

from realgeeks_sync.app.core.settings import Secret
from realgeeks_sync.app.operations.inspection import forward
from realgeeks_sync.app.operations.internal_auth import (
    FORWARDED_HEADER,
    MAX_AGE_S,
    SIGNATURE_HEADER,
    forwarding_key,
    sign_forwarded,
    verify_forwarded,
)

NOW = 1_800_000_000.0
PATH = "/tables/identity/site-1?email=a%40b.co"
TOKEN = Secret("the-admin-token")


def test_a_signed_request_verifies_for_its_path_and_time_only() -> None:
    key = forwarding_key(None, TOKEN)
    assert key is not None
    headers = sign_forwarded(key, "GET", PATH, "http://w1:6066", NOW)
    assert "Authorization" not in headers and "the-admin-token" not in str(headers)
    assert verify_forwarded(key, headers, "GET", PATH, NOW + MAX_AGE_S)
    assert not verify_forwarded(key, headers, "GET", PATH, NOW + MAX_AGE_S + 1)  # too old
    assert not verify_forwarded(key, headers, "GET", PATH.replace("a%40", "b%40"), NOW)
    assert not verify_forwarded(key, headers, "POST", PATH, NOW)
    other = forwarding_key(None, Secret("another-token"))
    assert not verify_forwarded(other, headers, "GET", PATH, NOW)
    assert not verify_forwarded(None, headers, "GET", PATH, NOW)
    for forged in (
        {},
        {**headers, SIGNATURE_HEADER: "0" * 64},
        {**headers, "X-Realgeeks-Sync-Timestamp": "x"},
    ):
        assert not verify_forwarded(key, forged, "GET", PATH, NOW)


def test_the_key_is_the_internal_secret_or_one_derived_from_the_token() -> None:
    derived = forwarding_key(None, TOKEN)
    assert derived is not None and b"the-admin-token" not in derived
    assert forwarding_key(Secret("shared"), TOKEN) == b"shared"
    assert forwarding_key(None, None) is None


async def test_forward_sends_a_signature_and_no_authorization_header() -> None:
    seen: list[dict[str, Any]] = []

    async def owner(request: web.Request) -> web.Response:
        seen.append({"headers": dict(request.headers), "path_qs": request.raw_path})
        return web.json_response({"lead_id": "l1"})

    app = web.Application()
    app.router.add_get("/tables/identity/{site}", owner)
    key = forwarding_key(None, TOKEN)
    assert key is not None
    async with TestServer(app) as server:
        owner_url = f"http://{server.host}:{server.port}"
        resp = await forward(owner_url, PATH, key, "http://me:6066", now=NOW)
    assert resp.status == 200 and resp.body == b'{"lead_id": "l1"}'
    (request,) = seen
    assert "Authorization" not in request["headers"]
    assert request["headers"][FORWARDED_HEADER] == "http://me:6066"
    assert verify_forwarded(key, request["headers"], "GET", request["path_qs"], NOW)


async def test_forward_answers_503_when_the_owner_does_not() -> None:
    key = b"k"
    resp = await forward("http://127.0.0.1:9", PATH, key, "http://me", now=NOW)
    assert resp.status == 503


async def test_forward_keeps_the_owner_s_cache_and_framing_rules() -> None:
    rules = {
        "Cache-Control": "no-store",
        "Content-Security-Policy": "frame-ancestors 'none'",
        "X-Frame-Options": "DENY",
    }

    async def owner(request: web.Request) -> web.Response:
        headers = {**rules, "Set-Cookie": "theirs=1"}
        return web.Response(text="<h1>Pat</h1>", content_type="text/html", headers=headers)

    app = web.Application()
    app.router.add_get("/ui/leads/{site}/{lead}", owner)
    async with TestServer(app) as server:
        owner_url = f"http://{server.host}:{server.port}"
        resp = await forward(owner_url, "/ui/leads/s/l", b"k", "http://me", now=NOW)
    assert resp.status == 200 and resp.content_type == "text/html"
    assert {k: resp.headers.get(k) for k in rules} == rules
    assert "Set-Cookie" not in resp.headers  # the owner's, not the caller's, business
