"""Client for the ElevenLabs Agents Platform: start an outbound AI phone call over Twilio,
and read the conversation history (list, detail) that reconciliation polls."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp

from realgeeks_sync.app.clients.http import error_for, exchange
from realgeeks_sync.app.core.errors import PermanentApiError
from realgeeks_sync.app.core.settings import Settings

__all__ = [
    "CONNECT_TIMEOUT_S",
    "ConversationPage",
    "ElevenLabsClient",
    "ElevenLabsClients",
    "OnRequest",
    "OutboundCallResult",
]

log = logging.getLogger(__name__)

OnRequest = Callable[[str, str, float], None]
"""Metrics hook: (operation, status, seconds); status is the HTTP code, "timeout" or "network"."""

OUTBOUND_CALL_PATH = "/v1/convai/twilio/outbound-call"
CONVERSATIONS_PATH = "/v1/convai/conversations"
MAX_PAGE_SIZE = 100  # the API's own limit
CONNECT_TIMEOUT_S = 5.0  # a connection's own bound, within the request's timeout

_MAX_BODY_CHARS = 2000


def _segment(value: str) -> str:
    """Quote one path segment so an id can never change the path it is sent to."""
    return quote(value, safe="")


@dataclass(frozen=True, slots=True)
class OutboundCallResult:
    """A call ElevenLabs accepted; its outcome arrives later by post-call webhook."""

    conversation_id: str
    call_sid: str | None


@dataclass(frozen=True, slots=True)
class ConversationPage:
    """One page of ``GET /v1/convai/conversations``: summaries, newest first."""

    conversations: tuple[dict[str, Any], ...]
    next_cursor: str | None
    has_more: bool


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
        connect_timeout_s: float = CONNECT_TIMEOUT_S,
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

    async def list_conversations(
        self,
        agent_id: str,
        *,
        after_unix: int | None = None,
        cursor: str | None = None,
        page_size: int = MAX_PAGE_SIZE,
    ) -> ConversationPage:
        """One page of the agent's conversations started after ``after_unix`` (newest first).

        Raises:
            TransientApiError: network error, timeout, 5xx or 429.
            PermanentApiError: ElevenLabs refused the request, or the page has no list.
        """
        params: dict[str, str | int] = {"agent_id": agent_id, "page_size": page_size}
        if after_unix is not None:
            params["call_start_after_unix"] = after_unix
        if cursor:
            params["cursor"] = cursor
        body = await self._send(
            "list_conversations", "GET", f"{CONVERSATIONS_PATH}?{urlencode(params)}"
        )
        items = body.get("conversations") if isinstance(body, dict) else None
        if not isinstance(items, list):
            raise PermanentApiError(
                "ElevenLabs list_conversations: answer has no conversations list", status=200
            )
        next_cursor = body.get("next_cursor")
        return ConversationPage(
            conversations=tuple(c for c in items if isinstance(c, dict)),
            next_cursor=next_cursor if isinstance(next_cursor, str) and next_cursor else None,
            has_more=body.get("has_more") is True,
        )

    async def conversations_since(
        self, agent_id: str, after_unix: int, *, max_pages: int = 1000
    ) -> AsyncIterator[dict[str, Any]]:
        """Every conversation of the agent started after ``after_unix``, page by page.

        Raises:
            TransientApiError, PermanentApiError: as ``list_conversations``.
        """
        cursor: str | None = None
        for _ in range(max_pages):
            page = await self.list_conversations(agent_id, after_unix=after_unix, cursor=cursor)
            for conversation in page.conversations:
                yield conversation
            if not page.has_more or not page.next_cursor:
                return
            cursor = page.next_cursor

    async def get_conversation(self, conversation_id: str) -> dict[str, Any]:
        """One conversation's detail: the same ``data`` its post-call webhook carries.

        Raises:
            TransientApiError: network error, timeout, 5xx or 429.
            PermanentApiError: ElevenLabs refused the request (404: no such conversation),
                or answered something that is not an object.
        """
        path = f"{CONVERSATIONS_PATH}/{_segment(conversation_id)}"
        body = await self._send("get_conversation", "GET", path)
        if not isinstance(body, dict):
            raise PermanentApiError(
                "ElevenLabs get_conversation: answer is not a JSON object", status=200
            )
        return body

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
        """POST JSON and return the parsed answer (see ``_send``)."""
        return await self._send(operation, "POST", path, payload)

    async def _send(
        self, operation: str, method: str, path: str, payload: object | None = None
    ) -> Any:
        """Send one request (JSON body when ``payload`` is given) and return the parsed answer.

        Raises:
            TransientApiError: network error, timeout, 5xx or 429.
            PermanentApiError: any other non-2xx answer, or a 2xx body that is not JSON.
        """
        headers = {"xi-api-key": self._api_key, "Accept": "application/json"}
        data: bytes | None = None
        if payload is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
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


class ElevenLabsClients:
    """One ``ElevenLabsClient`` per API key (the sites of one workspace share it), all on one
    session: opened on first use, inside the running loop, and closed by ``close``."""

    def __init__(self, settings: Settings, on_request: OnRequest | None = None) -> None:
        """Clients with the settings' URL and timeout, reporting to ``on_request``."""
        self._settings = settings
        self._on_request = on_request
        self._session: aiohttp.ClientSession | None = None
        self._clients: dict[str, ElevenLabsClient] = {}

    def client(self, api_key: str) -> ElevenLabsClient:
        """The client that calls with ``api_key`` (never logged)."""
        found = self._clients.get(api_key)
        if found is None:
            if self._session is None or self._session.closed:
                self._session = aiohttp.ClientSession()
            found = self._clients[api_key] = ElevenLabsClient(
                self._session,
                self._settings.elevenlabs_api_url,
                api_key,
                timeout_s=self._settings.elevenlabs_timeout_s,
                on_request=self._on_request,
            )
        return found

    async def close(self) -> None:
        """Close the session; the next ``client`` opens a new one."""
        session, self._session = self._session, None
        self._clients.clear()
        if session is not None:
            await session.close()

    async def __aenter__(self) -> ElevenLabsClients:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
