"""Client for the Real Geeks Incoming Leads API: activities, leads, users."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import aiohttp

from realgeeks_sync.app.clients.http import error_for, exchange
from realgeeks_sync.app.core.errors import PermanentApiError

__all__ = ["OnRequest", "RealGeeksClient"]

log = logging.getLogger(__name__)

OnRequest = Callable[[str, str, float], None]
"""Metrics hook: (operation, status, seconds); status is the HTTP code, "timeout" or "network"."""

# Enough of an error body to explain a failure without dragging a whole page into a dead letter.
_MAX_BODY_CHARS = 2000

_JSON_CONTENT_TYPE = "application/json; charset=utf-8"


def _segment(value: str) -> str:
    """Quote one path segment so an id can never change the path it is sent to."""
    return quote(value, safe="")


def _error_text(status: int, raw: str) -> str:
    """Return Real Geeks' ``{"error": "..."}`` text, else the (truncated) body."""
    try:
        parsed = json.loads(raw)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict) and isinstance(parsed.get("error"), str):
        return str(parsed["error"])
    return raw[:200].strip() or f"HTTP {status}"


class RealGeeksClient:
    """Calls the Real Geeks Incoming Leads API with HTTP Basic auth on a shared session.

    Every failure is translated here: network errors, timeouts, 5xx and 429 become
    ``TransientApiError``; 400/401/403/404/422 (and any other refusal) ``PermanentApiError``.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        user: str,
        password: str,
        *,
        timeout_s: float = 10.0,
        on_request: OnRequest | None = None,
    ) -> None:
        """Bind the client to a session and one Real Geeks login (never logged).

        Raises:
            ValueError: the user name contains ':', which Basic auth cannot carry.
        """
        self._session = session
        self._base_url = base_url.rstrip("/")
        if ":" in user:
            raise ValueError("a Basic auth user name cannot contain ':'")
        credentials = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
        # Built by hand: aiohttp.BasicAuth is deprecated from aiohttp 3.14 on.
        self._authorization = f"Basic {credentials}"
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.on_request = on_request

    def __repr__(self) -> str:
        return f"RealGeeksClient(base_url={self._base_url!r})"

    async def post_activities(
        self, site_uuid: str, lead_id: str, activities: list[dict[str, Any]]
    ) -> None:
        """Add activities to a lead (``POST /sites/{site}/leads/{lead}/activities``).

        An empty list sends nothing.

        Raises:
            TransientApiError: network error, timeout, 5xx or 429.
            PermanentApiError: Real Geeks refused the request (400/401/403/404/422...).
        """
        if not activities:
            return
        path = f"/sites/{_segment(site_uuid)}/leads/{_segment(lead_id)}/activities"
        await self._request("post_activities", "POST", path, activities)

    async def create_lead(self, site_uuid: str, lead: dict[str, Any]) -> dict[str, Any]:
        """Create a lead (``POST /sites/{site}/leads``); Real Geeks answers 201 ``{}``.

        Raises:
            TransientApiError: network error, timeout, 5xx or 429.
            PermanentApiError: Real Geeks refused the request.
        """
        body = await self._request(
            "create_lead", "POST", f"/sites/{_segment(site_uuid)}/leads", lead
        )
        return body if isinstance(body, dict) else {}

    async def update_lead(self, site_uuid: str, lead_id: str, fields: dict[str, Any]) -> None:
        """Change only the given fields of a lead (``PATCH /sites/{site}/leads/{lead}``).

        Raises:
            TransientApiError: network error, timeout, 5xx or 429.
            PermanentApiError: Real Geeks refused the request.
        """
        path = f"/sites/{_segment(site_uuid)}/leads/{_segment(lead_id)}"
        await self._request("update_lead", "PATCH", path, fields)

    async def list_users(self, site_uuid: str) -> list[dict[str, Any]]:
        """List a site's agents and lenders (``GET /sites/{site}/users``); also a health check.

        Raises:
            TransientApiError: network error, timeout, 5xx or 429.
            PermanentApiError: Real Geeks refused the request or did not answer with a list.
        """
        body = await self._request("list_users", "GET", f"/sites/{_segment(site_uuid)}/users")
        if not isinstance(body, list):
            raise PermanentApiError(
                "Real Geeks list_users: expected a JSON array", status=200, body=None
            )
        return [user for user in body if isinstance(user, dict)]

    async def _request(self, operation: str, method: str, path: str, payload: object = None) -> Any:
        """Send one request and return its parsed JSON body (None when empty or not JSON).

        Raises:
            TransientApiError: network error, timeout, 5xx or 429.
            PermanentApiError: any other non-2xx answer.
        """
        headers = {"Accept": "application/json", "Authorization": self._authorization}
        data: bytes | None = None
        if payload is not None:
            data = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
            headers["Content-Type"] = _JSON_CONTENT_TYPE
        answer = await exchange(
            self._session,
            method,
            self._base_url + path,
            api="Real Geeks",
            operation=operation,
            data=data,
            headers=headers,
            timeout=self._timeout,
            report=self._report,
        )
        raw, status = answer.text, answer.status
        if 200 <= status <= 299:
            try:
                return json.loads(raw)
            except ValueError:
                # The write happened; failing here would make the caller post it again.
                return None
        raise error_for(
            "Real Geeks", operation, answer, _error_text(status, raw), raw[:_MAX_BODY_CHARS]
        )

    def _report(self, operation: str, status: str, seconds: float) -> None:
        """Pass one request's outcome to the metrics hook, never failing the request."""
        if self.on_request is None:
            return
        try:
            self.on_request(operation, status, seconds)
        except Exception:
            # A broken metrics hook must not turn a write that succeeded into an error:
            # the caller would retry it and post the activity twice.
            log.exception("on_request hook failed", extra={"operation": operation})
