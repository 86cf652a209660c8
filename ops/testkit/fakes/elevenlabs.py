"""A fake ElevenLabs API: outbound calls in, signed post-call webhooks out, and the
conversation history and pre-call webhook of inbound calls, as the API notes document them.

- ``POST /v1/convai/twilio/outbound-call`` places a call (a conversation "in-progress").
- ``send_post_call`` finishes a call and POSTs its signed webhook; ``drop_next_post_calls``
  makes deliveries never arrive (ElevenLabs may dispatch a webhook once and never retry
  it), and ``finish_call`` finishes one without any delivery.
- ``GET /v1/convai/conversations`` (``agent_id``, ``call_start_after_unix``,
  ``call_start_before_unix``, ``user_id``, ``call_successful``, ``page_size`` <= 100,
  ``cursor``) lists conversations newest first; ``GET /v1/convai/conversations/{id}``
  answers a finished one's detail, which is its webhook's ``data``.
- ``inbound_call`` plays a call to the agent's number: it POSTs the pre-call webhook
  (``caller_id``, ``agent_id``, ``called_number``, ``call_sid``, with the configured
  request headers) and fails the call, as ElevenLabs does, when the answer is not
  ``conversation_initiation_client_data`` with every variable the agent defines.

Payloads: ops/testkit/fakes/elevenlabs_payloads.py. Run ``python -m
ops.testkit.fakes.elevenlabs --port 8082`` for a demo server; with
``--webhook-url``/``--webhook-secret`` it completes each call by webhook after a pause.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hmac
import json
import logging
import secrets
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from ops.testkit.fakes.elevenlabs_payloads import (
    OUTCOMES,
    Direction,
    Outcome,
    build_post_call_payload,
    conversation_summary,
    sign_post_call,
)
from ops.testkit.fakes.realgeeks import (
    CONTROL_PREFIX,
    RECORD_KEY,
    FakeServer,
    RecordedRequest,
    serve_forever,
)

__all__ = [
    "CONVERSATIONS_PATH",
    "OUTBOUND_CALL_PATH",
    "FakeElevenLabs",
    "InboundCall",
    "Outcome",
    "RecordedCall",
    "RecordedRequest",
    "WebhookDelivery",
    "build_post_call_payload",
    "sign_post_call",
]

log = logging.getLogger(__name__)

OUTBOUND_CALL_PATH = "/v1/convai/twilio/outbound-call"
CONVERSATIONS_PATH = "/v1/convai/conversations"
INITIATION_TYPE = "conversation_initiation_client_data"
MAX_PAGE_SIZE = 100  # the API refuses more (422)


@dataclass
class RecordedCall:
    """One conversation: an outbound call the fake accepted or an inbound call it played,
    with when it started (monotonic and wall clock) and, once finished, its detail."""

    conversation_id: str
    call_sid: str
    agent_id: str
    agent_phone_number_id: str
    to_number: str
    dynamic_variables: dict[str, Any]
    user_id: str | None
    body: dict[str, Any]
    received_monotonic: float
    received_wall: float
    completed: bool = False
    direction: Direction = "outbound"
    # GET /v1/convai/conversations/{id}: the webhook's ``data``, once the call finished.
    detail: dict[str, Any] | None = None


@dataclass
class InboundCall:
    """An inbound call the fake played: what its pre-call webhook answered and how it went."""

    conversation_id: str
    call_sid: str
    caller_id: str
    request: dict[str, Any]
    status: int | None  # the pre-call webhook's HTTP status (None: no answer)
    seconds: float  # how long the webhook took to answer
    dynamic_variables: dict[str, Any]
    accepted: bool  # False: ElevenLabs fails the call
    reason: str | None = None


@dataclass
class WebhookDelivery:
    """What ``send_post_call`` sent and what the receiver answered (status 0: dropped, never
    sent, as ElevenLabs may do)."""

    status: int
    text: str
    payload: dict[str, Any]
    body: bytes
    signature: str
    headers: dict[str, str] = field(default_factory=dict)


def _validation_error(loc: list[str | int], msg: str, kind: str, value: Any) -> dict[str, Any]:
    return {"type": kind, "loc": ["body", *loc], "msg": msg, "input": value}


def _check_outbound_call(body: Any) -> list[dict[str, Any]]:
    """Return FastAPI-style validation problems for an outbound-call body (empty: valid)."""
    if not isinstance(body, dict):
        return [_validation_error([], "Input should be a valid dictionary", "dict_type", body)]
    problems = []
    for name in ("agent_id", "agent_phone_number_id", "to_number"):
        if name not in body:
            problems.append(_validation_error([name], "Field required", "missing", body))
        elif not isinstance(body[name], str):
            problems.append(
                _validation_error(
                    [name], "Input should be a valid string", "string_type", body[name]
                )
            )
    client_data = body.get("conversation_initiation_client_data")
    if client_data is None:
        return problems
    if not isinstance(client_data, dict):
        loc: list[str | int] = ["conversation_initiation_client_data"]
        return [
            *problems,
            _validation_error(loc, "Input should be a valid dictionary", "dict_type", client_data),
        ]
    user_id = client_data.get("user_id")
    if user_id is not None and not isinstance(user_id, str):
        problems.append(
            _validation_error(
                ["conversation_initiation_client_data", "user_id"],
                "Input should be a valid string",
                "string_type",
                user_id,
            )
        )
    variables = client_data.get("dynamic_variables")
    if variables is None:
        return problems
    if not isinstance(variables, dict):
        problems.append(
            _validation_error(
                ["conversation_initiation_client_data", "dynamic_variables"],
                "Input should be a valid dictionary",
                "dict_type",
                variables,
            )
        )
        return problems
    for name, value in variables.items():
        if value is not None and not isinstance(value, str | int | float | bool):
            problems.append(
                _validation_error(
                    ["conversation_initiation_client_data", "dynamic_variables", name],
                    "Input should be a valid string, number or boolean",
                    "scalar_type",
                    value,
                )
            )
    return problems


class FakeElevenLabs(FakeServer):
    """Fake ElevenLabs API at ``url`` (the origin; routes start with /v1).

    ``max_concurrent_calls`` makes it answer 429 ``too_many_concurrent_requests`` while
    that many calls are not yet completed (by ``send_post_call`` or ``complete_call``).
    ``initiation_url`` and ``initiation_headers`` are the agent's pre-call webhook
    (``conversation_initiation_client_data_webhook``); ``agent_variables`` the dynamic
    variables its prompt uses, each of which an inbound call must be given.
    """

    name = "fake-elevenlabs"

    def __init__(
        self,
        *,
        api_key: str = "el-test-key",
        host: str = "127.0.0.1",
        port: int = 0,
        latency: float = 0.0,
        max_concurrent_calls: int | None = None,
        control: bool = False,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
        complete_after_s: float | None = None,
        auto_outcome: Outcome = "success",
        initiation_url: str | None = None,
        initiation_headers: Mapping[str, str] | None = None,
        agent_variables: Collection[str] = (),
        auto_outcomes: tuple[Outcome, ...] = (),
        agents: frozenset[str] | None = None,
        phone_numbers: frozenset[str] | None = None,
    ) -> None:
        super().__init__(host=host, port=port, latency=latency, control=control)
        self.api_key = api_key
        # Ids GET /v1/convai/agents/{id} and /phone-numbers/{id} know (None: any id).
        self.agents = agents
        self.phone_numbers = phone_numbers
        # A mix of outcomes for automatic completions, drawn in turn (the demo's).
        self._mix = auto_outcomes
        self._turn = 0
        self.max_concurrent_calls = max_concurrent_calls
        self.calls: list[RecordedCall] = []
        self.deliveries: list[WebhookDelivery] = []
        self.inbound: list[InboundCall] = []
        self.initiation_url = initiation_url
        self.initiation_headers = dict(initiation_headers or {})
        self.agent_variables = frozenset(agent_variables)
        self._drops = 0
        self._auto = (
            (webhook_url, webhook_secret, complete_after_s, auto_outcome)
            if webhook_url and webhook_secret and complete_after_s is not None
            else None
        )
        self._tasks: set[asyncio.Task[None]] = set()
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        """Cancel pending automatic completions, then stop the server."""
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()
        await super().close()

    def error_body(self, status: int, error: str | None) -> Any:
        """Return ElevenLabs' ``{"detail": ...}`` error shape; ``error`` is its status code."""
        if status == 422:
            return {
                "detail": [_validation_error([], error or "Invalid request", "value_error", None)]
            }
        defaults = {
            401: ("invalid_api_key", "Invalid API key"),
            404: ("not_found", "Not found."),
            429: ("too_many_concurrent_requests", "Too many concurrent requests for your plan."),
        }
        code, message = defaults.get(status, ("internal_server_error", "Something went wrong."))
        if error == "system_busy":
            message = "The system is busy, please try again later."
        return {"detail": {"status": error or code, "message": message}}

    @property
    def active_calls(self) -> int:
        """Return how many accepted calls have not been completed."""
        return sum(not call.completed for call in self.calls)

    def call(self, conversation_id: str) -> RecordedCall:
        """Return the recorded call with this conversation id.

        Raises:
            KeyError: no such call.
        """
        for recorded in self.calls:
            if recorded.conversation_id == conversation_id:
                return recorded
        raise KeyError(conversation_id)

    def complete_call(self, conversation_id: str) -> None:
        """Mark a call finished (frees a concurrency slot) without sending a webhook."""
        for recorded in self.calls:
            if recorded.conversation_id == conversation_id:
                recorded.completed = True

    def drop_next_post_calls(self, times: int = 1) -> None:
        """The next ``times`` post-call webhooks are never delivered (the conversation still
        finishes and is listed): ElevenLabs may dispatch a webhook once, or not at all."""
        self._drops += times

    def reset(self) -> None:
        """Forget requests, faults, calls, deliveries and pending drops."""
        super().reset()
        self.calls.clear()
        self.deliveries.clear()
        self.inbound.clear()
        self._drops = 0

    def state(self) -> dict[str, Any]:
        """Return requests plus calls (without phone numbers) for ``GET /_fake/state``."""
        summary = super().state()
        summary["calls"] = [
            {
                "conversation_id": c.conversation_id,
                "user_id": c.user_id,
                "completed": c.completed,
                "direction": c.direction,
                "received_wall": c.received_wall,
            }
            for c in self.calls
        ]
        return summary

    def add_routes(self, app: web.Application) -> None:
        """Register the outbound-call and conversation routes, and the read-only agent and
        number routes."""
        app.router.add_post(OUTBOUND_CALL_PATH, self._outbound_call)
        app.router.add_get(CONVERSATIONS_PATH, self._list_conversations)
        app.router.add_get(CONVERSATIONS_PATH + "/{conversation_id}", self._get_conversation)
        app.router.add_get("/v1/convai/agents/{agent_id}", self._get_agent)
        app.router.add_get("/v1/convai/phone-numbers/{phone_number_id}", self._get_phone_number)

    async def _get_agent(self, request: web.Request) -> web.Response:
        if (denied := self._auth_error(request)) is not None:
            return denied
        agent_id = request.match_info["agent_id"]
        if self.agents is not None and agent_id not in self.agents:
            detail = {"status": "agent_not_found", "message": f"Agent {agent_id} not found"}
            return web.json_response({"detail": detail}, status=404)
        return web.json_response({"agent_id": agent_id, "name": "Ava (fake)"})

    async def _get_phone_number(self, request: web.Request) -> web.Response:
        if (denied := self._auth_error(request)) is not None:
            return denied
        number_id = request.match_info["phone_number_id"]
        if self.phone_numbers is not None and number_id not in self.phone_numbers:
            detail = {"status": "phone_number_not_found", "message": "Phone number not found"}
            return web.json_response({"detail": detail}, status=404)
        return web.json_response(
            {"phone_number_id": number_id, "phone_number": "+15555550199", "provider": "twilio"}
        )

    # -- the API ---------------------------------------------------------------------------

    def _auth_error(self, request: web.Request) -> web.Response | None:
        key = request.headers.get("xi-api-key")
        if key is None:
            return web.json_response(
                {"detail": {"status": "needs_authorization", "message": "Missing xi-api-key."}},
                status=401,
            )
        if not hmac.compare_digest(key.encode(), self.api_key.encode()):
            return web.json_response(self.error_body(401, None), status=401)
        return None

    async def _outbound_call(self, request: web.Request) -> web.Response:
        if (denied := self._auth_error(request)) is not None:
            return denied
        try:
            body = json.loads(await request.read())
        except ValueError:
            problem = _validation_error([0], "JSON decode error", "json_invalid", {})
            return web.json_response({"detail": [problem]}, status=422)
        problems = _check_outbound_call(body)
        if problems:
            return web.json_response({"detail": problems}, status=422)
        if self.max_concurrent_calls is not None and self.active_calls >= self.max_concurrent_calls:
            return web.json_response(self.error_body(429, None), status=429)
        record = request[RECORD_KEY]
        client_data = body.get("conversation_initiation_client_data") or {}
        call = RecordedCall(
            conversation_id="conv_" + secrets.token_hex(12),
            call_sid="CA" + secrets.token_hex(16),
            agent_id=body["agent_id"],
            agent_phone_number_id=body["agent_phone_number_id"],
            to_number=body["to_number"],
            dynamic_variables=dict(client_data.get("dynamic_variables") or {}),
            user_id=client_data.get("user_id"),
            body=body,
            received_monotonic=record.time,
            received_wall=record.wall_time,
        )
        self.calls.append(call)
        if self._auto is not None:
            task = asyncio.get_running_loop().create_task(self._auto_complete(call))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return web.json_response(
            {
                "success": True,
                "message": "Success",
                "conversation_id": call.conversation_id,
                "callSid": call.call_sid,
            }
        )

    async def _list_conversations(self, request: web.Request) -> web.Response:
        if (denied := self._auth_error(request)) is not None:
            return denied
        query = request.query
        try:
            after = _optional_int(query, "call_start_after_unix")
            before = _optional_int(query, "call_start_before_unix")
            size = _optional_int(query, "page_size") or 30
            offset = _cursor_offset(query.get("cursor"))
        except ValueError as exc:
            problem = _validation_error([], str(exc), "int_parsing", None)
            return web.json_response({"detail": [problem]}, status=422)
        if not 1 <= size <= MAX_PAGE_SIZE:
            problem = _validation_error(
                ["page_size"], "Can not exceed 100", "less_than_equal", size
            )
            return web.json_response({"detail": [problem]}, status=422)
        summaries = []
        for call in self.calls:
            summary = conversation_summary(self._detail(call))
            started = summary["start_time_unix_secs"]
            if (
                ("agent_id" in query and call.agent_id != query["agent_id"])
                or ("user_id" in query and call.user_id != query["user_id"])
                or (
                    "call_successful" in query
                    and summary["call_successful"] != query["call_successful"]
                )
                or (after is not None and started <= after)
                or (before is not None and started >= before)
            ):
                continue
            summaries.append(summary)
        summaries.sort(
            key=lambda c: (c["start_time_unix_secs"], c["conversation_id"]), reverse=True
        )
        page = summaries[offset : offset + size]
        more = offset + size < len(summaries)
        return web.json_response(
            {
                "conversations": page,
                "has_more": more,
                "next_cursor": _cursor(offset + size) if more else None,
            }
        )

    async def _get_conversation(self, request: web.Request) -> web.Response:
        if (denied := self._auth_error(request)) is not None:
            return denied
        wanted = request.match_info["conversation_id"]
        for call in self.calls:
            if call.conversation_id == wanted:
                return web.json_response(
                    {
                        **self._detail(call),
                        "has_audio": False,
                        "has_user_audio": False,
                        "has_response_audio": False,
                    }
                )
        return web.json_response(
            {"detail": {"status": "conversation_not_found", "message": "Conversation not found"}},
            status=404,
        )

    def _detail(self, call: RecordedCall) -> dict[str, Any]:
        """The conversation's detail: the finished call's webhook data, else in progress."""
        if call.detail is not None:
            return call.detail
        return {
            "agent_id": call.agent_id,
            "conversation_id": call.conversation_id,
            "status": "in-progress",
            "user_id": call.user_id,
            "transcript": [],
            "metadata": {
                "start_time_unix_secs": int(call.received_wall),
                "call_duration_secs": 0,
                "phone_call": {"type": "twilio", "direction": call.direction},
            },
            "analysis": None,
            "conversation_initiation_client_data": {
                "dynamic_variables": dict(call.dynamic_variables)
            },
        }

    # -- finishing calls -------------------------------------------------------------------

    async def _auto_complete(self, call: RecordedCall) -> None:
        if self._auto is None:
            return
        url, secret, after_s, outcome = self._auto
        if self._mix:
            outcome = self._mix[self._turn % len(self._mix)]
            self._turn += 1
        await asyncio.sleep(after_s or 0.0)
        if self._session is None:
            self._session = aiohttp.ClientSession()
        extra: dict[str, Any] = {}
        if outcome == "tour":  # the demo's: a conversation that books a viewing
            outcome, extra["viewing_date"] = (
                "success",
                time.strftime("%Y-%m-%dT14:00:00", time.gmtime(time.time() + 86400)),
            )
        elif outcome == "opt-out":  # the demo's: the lead asks not to be called again
            outcome, extra["opt_out_requested"] = "success", True
        try:
            delivery = await self.send_post_call(
                url or "",
                secret or "",
                call.conversation_id,
                outcome,  # type: ignore[arg-type]
                session=self._session,
                **extra,
            )
        except aiohttp.ClientError as exc:
            log.warning("post-call webhook not delivered: %s", type(exc).__name__)
        else:
            log.info("post-call webhook %s -> %s", call.conversation_id, delivery.status)

    def finish_call(
        self, conversation_id: str, outcome: Outcome = "success", **details: Any
    ) -> dict[str, Any]:
        """Finish a call without any webhook (one that never arrives); returns the payload
        ElevenLabs would have sent. ``details``: ``build_post_call_payload``'s keywords."""
        payload = self._payload(conversation_id, outcome, **details)
        self._record_finished(conversation_id, payload)
        return payload

    async def send_post_call(
        self,
        webhook_url: str,
        secret: str,
        conversation_id: str,
        outcome: Outcome = "success",
        *,
        timestamp: int | None = None,
        session: aiohttp.ClientSession | None = None,
        **details: Any,
    ) -> WebhookDelivery:
        """POST a signed webhook for a call's outcome to ``webhook_url`` and mark it completed.

        Agent, number, user id, direction and dynamic variables come from the recorded call
        when the fake placed it (``dynamic_variables`` overrides); ``details`` are
        ``build_post_call_payload``'s keywords. ``timestamp`` sets both the signature's
        ``t`` and ``event_timestamp`` (to test stale signatures). After
        ``drop_next_post_calls`` nothing is sent and the delivery's status is 0.

        Raises:
            aiohttp.ClientError: the receiver could not be reached.
        """
        payload = self._payload(conversation_id, outcome, event_timestamp=timestamp, **details)
        raw = json.dumps(payload).encode("utf-8")
        signature = sign_post_call(
            secret, raw, timestamp if timestamp is not None else int(time.time())
        )
        headers = {
            "Content-Type": "application/json",
            "ElevenLabs-Signature": signature,
            "User-Agent": "ElevenLabs/1.0",
        }
        self._record_finished(conversation_id, payload)
        if self._drops > 0:
            self._drops -= 1
            delivery = WebhookDelivery(0, "dropped", payload, raw, signature, headers)
            self.deliveries.append(delivery)
            return delivery
        own_session = session is None
        client = session or aiohttp.ClientSession()
        try:
            async with client.post(webhook_url, data=raw, headers=headers) as response:
                delivery = WebhookDelivery(
                    status=response.status,
                    text=await response.text(),
                    payload=payload,
                    body=raw,
                    signature=signature,
                    headers=headers,
                )
        finally:
            if own_session:
                await client.close()
        self.deliveries.append(delivery)
        return delivery

    def _payload(self, conversation_id: str, outcome: Outcome, **details: Any) -> dict[str, Any]:
        known = next((c for c in self.calls if c.conversation_id == conversation_id), None)
        if known is not None:
            defaults: dict[str, Any] = {
                "agent_id": known.agent_id,
                "dynamic_variables": known.dynamic_variables,
                "user_id": known.user_id,
                "to_number": known.to_number,
                "call_sid": known.call_sid,
                "direction": known.direction,
                "start_time_unix_secs": int(known.received_wall),
            }
            details = {**defaults, **{k: v for k, v in details.items() if v is not None}}
        return build_post_call_payload(conversation_id, outcome, **details)

    def _record_finished(self, conversation_id: str, payload: dict[str, Any]) -> None:
        """Keep the finished conversation's detail (listed, answered by GET)."""
        data = dict(payload["data"])
        if payload["type"] == "call_initiation_failure":
            # The conversation API shows a call that never connected as failed.
            data = {
                "agent_id": data["agent_id"],
                "conversation_id": conversation_id,
                "status": "failed",
                "user_id": None,
                "transcript": [],
                "metadata": {
                    "start_time_unix_secs": int(payload["event_timestamp"]),
                    "call_duration_secs": 0,
                    "termination_reason": f"Call failed: {data['failure_reason']}",
                    "error": {"code": 486, "reason": data["failure_reason"]},
                },
                "analysis": None,
                "conversation_initiation_client_data": None,
            }
        known = next((c for c in self.calls if c.conversation_id == conversation_id), None)
        if known is None:
            metadata = data.get("metadata") or {}
            known = RecordedCall(
                conversation_id=conversation_id,
                call_sid=str((metadata.get("phone_call") or {}).get("call_sid") or ""),
                agent_id=str(data.get("agent_id") or "agent_fake"),
                agent_phone_number_id="phnum_fake",
                to_number="",
                dynamic_variables={},
                user_id=data.get("user_id"),
                body={},
                received_monotonic=time.monotonic(),
                received_wall=float(metadata.get("start_time_unix_secs") or time.time()),
            )
            self.calls.append(known)
        known.detail = data
        known.completed = True

    # -- inbound calls ---------------------------------------------------------------------

    async def inbound_call(
        self,
        caller_id: str,
        *,
        called_number: str = "+15555550199",
        agent_id: str = "agent_fake",
        timeout_s: float = 5.0,
        with_conversation_id: bool = False,
    ) -> InboundCall:
        """A call from ``caller_id`` to the agent's number: the pre-call webhook, then the
        conversation (in progress when the webhook's answer was usable, failed otherwise).

        ``with_conversation_id`` adds ``conversation_id`` to the webhook's request (the API
        notes mark it unverified).

        Raises:
            RuntimeError: no ``initiation_url`` is configured.
        """
        if not self.initiation_url:
            raise RuntimeError("no pre-call webhook configured (initiation_url)")
        conversation_id = "conv_" + secrets.token_hex(12)
        call_sid = "CA" + secrets.token_hex(16)
        request = {
            "caller_id": caller_id,
            "agent_id": agent_id,
            "called_number": called_number,
            "call_sid": call_sid,
        }
        if with_conversation_id:
            request["conversation_id"] = conversation_id
        started = time.monotonic()
        status, answer, reason = await self._ask_initiation(request, timeout_s)
        seconds = time.monotonic() - started
        variables, reason = _initiation_variables(answer, reason, self.agent_variables)
        call = InboundCall(
            conversation_id=conversation_id,
            call_sid=call_sid,
            caller_id=caller_id,
            request=request,
            status=status,
            seconds=seconds,
            dynamic_variables=variables,
            accepted=reason is None,
            reason=reason,
        )
        self.inbound.append(call)
        recorded = RecordedCall(
            conversation_id=conversation_id,
            call_sid=call_sid,
            agent_id=agent_id,
            agent_phone_number_id="phnum_fake",
            to_number=caller_id,
            dynamic_variables=variables,
            user_id=None,
            body=request,
            received_monotonic=started,
            received_wall=time.time(),
            direction="inbound",
        )
        self.calls.append(recorded)
        if reason is not None:
            recorded.completed = True
            recorded.detail = {
                **self._detail(recorded),
                "status": "failed",
                "metadata": {
                    "start_time_unix_secs": int(recorded.received_wall),
                    "call_duration_secs": 0,
                    "error": {"code": 1008, "reason": reason},
                    "phone_call": {"type": "twilio", "direction": "inbound"},
                },
            }
        return call

    async def _ask_initiation(
        self, request: dict[str, Any], timeout_s: float
    ) -> tuple[int | None, Any, str | None]:
        """POST the pre-call webhook; (status, parsed answer, why it is unusable)."""
        if self._session is None:
            self._session = aiohttp.ClientSession()
        headers = {"Content-Type": "application/json", **self.initiation_headers}
        try:
            async with self._session.post(
                self.initiation_url or "",
                data=json.dumps(request).encode(),
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=timeout_s),
            ) as response:
                text = await response.text()
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            return None, None, f"pre-call webhook failed: {type(exc).__name__}"
        if status != 200:
            return status, None, f"pre-call webhook answered {status}"
        try:
            return status, json.loads(text), None
        except ValueError:
            return status, None, "pre-call webhook answer is not JSON"


def _initiation_variables(
    answer: Any, reason: str | None, required: frozenset[str]
) -> tuple[dict[str, Any], str | None]:
    """The variables of a pre-call answer, and why ElevenLabs would fail the call (None: ok)."""
    if reason is not None:
        return {}, reason
    if not isinstance(answer, dict) or answer.get("type") != INITIATION_TYPE:
        return {}, f"answer type is not {INITIATION_TYPE}"
    variables = answer.get("dynamic_variables")
    if not isinstance(variables, dict):
        return {}, "answer has no dynamic_variables object"
    bad = sorted(k for k, v in variables.items() if not isinstance(v, str | int | float | bool))
    if bad:
        return {}, f"dynamic variables that are not scalars: {bad}"
    missing = sorted(required - set(variables))
    if missing:
        # ElevenLabs' own words when a prompt's variable is not given.
        return {}, f"Missing required dynamic variables in first message: {set(missing)}"
    return dict(variables), None


def _optional_int(query: Mapping[str, str], name: str) -> int | None:
    """A query parameter as an integer (None when absent).

    Raises:
        ValueError: present but not an integer.
    """
    raw = query.get(name)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name}: Input should be a valid integer") from None


def _cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode()


def _cursor_offset(cursor: str | None) -> int:
    """The list offset an opaque cursor stands for (0 without one).

    Raises:
        ValueError: a cursor this fake did not hand out.
    """
    if not cursor:
        return 0
    try:
        text = base64.urlsafe_b64decode(cursor.encode()).decode()
        return int(text.removeprefix("offset:"))
    except (ValueError, UnicodeDecodeError):
        raise ValueError("cursor: invalid cursor") from None


def main(argv: list[str] | None = None) -> None:
    """Run the fake ElevenLabs API for a demo."""
    parser = argparse.ArgumentParser(description="Fake ElevenLabs outbound-call API")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8082)
    parser.add_argument("--api-key", default="el-test-key")
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--max-concurrent-calls", type=int, default=None)
    parser.add_argument("--webhook-url", help="where to send post-call webhooks")
    parser.add_argument("--webhook-secret", help="ElevenLabs webhook secret to sign them with")
    parser.add_argument("--complete-after", type=float, default=3.0, help="seconds per call")
    parser.add_argument("--outcome", choices=OUTCOMES, default="success")
    parser.add_argument(
        "--outcomes",
        help="comma-separated outcomes to use in turn (overrides --outcome); also tour "
        "(a conversation that books a viewing) and opt-out",
    )
    args = parser.parse_args(argv)
    mix = tuple(o.strip() for o in (args.outcomes or "").split(",") if o.strip())
    for outcome in mix:
        if outcome not in (*OUTCOMES, "tour", "opt-out"):
            parser.error(f"unknown outcome {outcome!r}; expected some of {', '.join(OUTCOMES)}")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    fake = FakeElevenLabs(
        api_key=args.api_key,
        host=args.host,
        port=args.port,
        latency=args.latency,
        max_concurrent_calls=args.max_concurrent_calls,
        control=True,
        webhook_url=args.webhook_url,
        webhook_secret=args.webhook_secret,
        complete_after_s=args.complete_after,
        auto_outcome=args.outcome,
        auto_outcomes=mix,  # type: ignore[arg-type]
    )
    banner = f"fake ElevenLabs API at {{url}}; faults: POST {CONTROL_PREFIX}fail-next"
    if args.webhook_url and args.webhook_secret:
        banner += f"; completes calls after {args.complete_after:g}s ({args.outcome})"
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_forever(fake, banner))


if __name__ == "__main__":
    main()
