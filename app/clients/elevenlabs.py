"""Client for the ElevenLabs Agents Platform: start an outbound AI phone call over Twilio."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp

from realgeeks_sync.app.clients.http import error_for, exchange
from realgeeks_sync.app.core.errors import PermanentApiError

__all__ = ["ElevenLabsClient", "OnRequest", "OutboundCallResult"]

log = logging.getLogger(__name__)

OnRequest = Callable[[str, str, float], None]
"""Metrics hook: (operation, status, seconds); status is the HTTP code, "timeout" or "network"."""

OUTBOUND_CALL_PATH = "/v1/convai/twilio/outbound-call"

_MAX_BODY_CHARS = 2000


def _segment(value: str) -> str:
    """Quote one path segment so an id can never change the path it is sent to."""
    return quote(value, safe="")


@dataclass(frozen=True, slots=True)
class OutboundCallResult:
    """A call ElevenLabs accepted; its outcome arrives later by post-call webhook."""

    conversation_id: str
    call_sid: str | None


def _without_inputs(detail: Any) -> Any:
    """Drop pydantic's echoed ``input`` values: they hold the phone number and lead data."""
    if isinstance(detail, list):
        return [_without_inputs(item) for item in detail]
    if isinstance(detail, dict):
        return {k: _without_inputs(v) for k, v in detail.items() if k not in {"input", "ctx"}}
    return detail


def _describe(detail: Any) -> str:
    """Turn ElevenLabs' ``detail`` (status dict, validation list or text) into one line."""
    if isinstance(detail, dict):
        status = detail.get("status")
        message = detail.get("message")
        return ": ".join(str(part) for part in (status, message) if part) or "error"
    if isinstance(detail, list):
        problems = []
        for item in detail:
            if isinstance(item, dict):
                loc = ".".join(str(part) for part in item.get("loc", ()))
                problems.append(f"{loc}: {item.get('msg', 'invalid')}")
        return "; ".join(problems) or "validation error"
    return str(detail)


def _parse_error(status: int, raw: str) -> tuple[str, str]:
    """Return (one-line reason, body safe to keep in a dead letter) for an error answer."""
    try:
        parsed = json.loads(raw)
    except ValueError:
        return (raw[:200].strip() or f"HTTP {status}", raw[:_MAX_BODY_CHARS])
    if isinstance(parsed, dict) and "detail" in parsed:
        safe = _without_inputs(parsed)
        return (_describe(parsed["detail"]), json.dumps(safe)[:_MAX_BODY_CHARS])
    return (f"HTTP {status}", json.dumps(_without_inputs(parsed))[:_MAX_BODY_CHARS])


class ElevenLabsClient:
    """Calls the ElevenLabs API with an ``xi-api-key`` on a shared session.

    Network errors, timeouts, 5xx and 429 (``too_many_concurrent_requests``,
    ``system_busy``) become ``TransientApiError``; other refusals ``PermanentApiError``.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        api_key: str,
        *,
        timeout_s: float = 10.0,
        connect_timeout_s: float = 5.0,
        on_request: OnRequest | None = None,
    ) -> None:
        """Bind the client to a session and an API key (never logged).

        ``connect_timeout_s`` bounds the connection on its own, so that a request that
        never left (``cause`` "not_connected") is told apart from one left unanswered.
        """
        self._session = session
        self._base_url = base_url.rstrip("/")
        self._api_key = api_key
        connect = min(connect_timeout_s, timeout_s)
        self._timeout = aiohttp.ClientTimeout(
            total=timeout_s + connect, sock_connect=connect, sock_read=timeout_s
        )
        self.on_request = on_request

    def __repr__(self) -> str:
        return f"ElevenLabsClient(base_url={self._base_url!r})"

    async def start_outbound_call(
        self,
        agent_id: str,
        agent_phone_number_id: str,
        to_number: str,
        dynamic_variables: dict[str, str | int | float | bool],
        user_id: str | None = None,
    ) -> OutboundCallResult:
        """Ask ElevenLabs to dial ``to_number`` (E.164) with the agent and its variables.

        A 200 with ``success: false`` is permanent: the call may have been partly placed,
        and ringing a lead twice is worse than a dead letter.

        A ``TransientApiError`` without ``http_status`` (timeout, dropped connection) is
        ambiguous: the call may have been placed, so retry it only with that in mind.

        Raises:
            TransientApiError: network error, timeout, 5xx or 429.
            PermanentApiError: ElevenLabs refused the call (401, 422...), or said it failed.
        """
        client_data: dict[str, Any] = {"dynamic_variables": dict(dynamic_variables)}
        if user_id is not None:
            client_data["user_id"] = user_id
        payload = {
            "agent_id": agent_id,
            "agent_phone_number_id": agent_phone_number_id,
            "to_number": to_number,
            "conversation_initiation_client_data": client_data,
        }
        body = await self._post("start_outbound_call", OUTBOUND_CALL_PATH, payload)
        if not isinstance(body, dict):
            raise PermanentApiError(
                "ElevenLabs start_outbound_call: answer is not a JSON object", status=200
            )
        conversation_id = body.get("conversation_id")
        if (
            body.get("success") is False
            or not isinstance(conversation_id, str)
            or not conversation_id
        ):
            reason = str(body.get("message") or "no conversation_id")[:200]
            raise PermanentApiError(
                f"ElevenLabs start_outbound_call: call not placed: {reason}",
                status=200,
                body=json.dumps(_without_inputs(body))[:_MAX_BODY_CHARS],
            )
        call_sid = body.get("callSid")
        return OutboundCallResult(
            conversation_id=conversation_id,
            call_sid=call_sid if isinstance(call_sid, str) and call_sid else None,
        )

    async def get_agent(self, agent_id: str) -> dict[str, Any]:
        """Read an agent's settings (``GET /v1/convai/agents/{id}``): read-only, for doctor.

        Raises:
            TransientApiError: network error, timeout, 5xx or 429.
            PermanentApiError: 401 (the key), 404 (no such agent) and other refusals.
        """
        body = await self._send("get_agent", "GET", f"/v1/convai/agents/{_segment(agent_id)}")
        return body if isinstance(body, dict) else {}

    async def get_phone_number(self, phone_number_id: str) -> dict[str, Any]:
        """Read a phone number (``GET /v1/convai/phone-numbers/{id}``): read-only, for doctor.

        Raises:
            TransientApiError: network error, timeout, 5xx or 429.
            PermanentApiError: 401 (the key), 404 (no such number) and other refusals.
        """
        path = f"/v1/convai/phone-numbers/{_segment(phone_number_id)}"
        body = await self._send("get_phone_number", "GET", path)
        return body if isinstance(body, dict) else {}

    async def _post(self, operation: str, path: str, payload: object) -> Any:
        """POST JSON and return the parsed answer.

        Raises:
            TransientApiError: network error, timeout, 5xx or 429.
            PermanentApiError: any other non-2xx answer, or a 2xx body that is not JSON.
        """
        return await self._send(operation, "POST", path, payload)

    async def _send(
        self, operation: str, method: str, path: str, payload: object | None = None
    ) -> Any:
        """Send one request (JSON body when ``payload`` is given); return the parsed answer.

        Raises:
            TransientApiError: network error, timeout, 5xx or 429.
            PermanentApiError: any other non-2xx answer, or a 2xx body that is not JSON.
        """
        headers = {"xi-api-key": self._api_key, "Accept": "application/json"}
        data = None
        if payload is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        answer = await exchange(
            self._session,
            method,
            self._base_url + path,
            api="ElevenLabs",
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
            except ValueError as exc:
                raise PermanentApiError(
                    f"ElevenLabs {operation}: HTTP {status} with a body that is not JSON",
                    status=status,
                ) from exc
        reason, safe_body = _parse_error(status, raw)
        raise error_for("ElevenLabs", operation, answer, reason, safe_body)

    def _report(self, operation: str, status: str, seconds: float) -> None:
        """Pass one request's outcome to the metrics hook, never failing the request."""
        if self.on_request is None:
            return
        try:
            self.on_request(operation, status, seconds)
        except Exception:
            # A broken metrics hook must not fail a call that was placed: a retry would
            # ring the lead a second time.
            log.exception("on_request hook failed", extra={"operation": operation})
