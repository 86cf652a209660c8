"""A fake ElevenLabs API: outbound calls in, signed post-call webhooks out.

``build_post_call_payload`` returns a webhook body without HTTP, for mapping tests.
Run ``python -m ops.testkit.fakes.elevenlabs --port 8082`` for a demo server; with
``--webhook-url``/``--webhook-secret`` it completes each call by webhook after a pause.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import aiohttp
from aiohttp import web

from ops.testkit.fakes.realgeeks import (
    CONTROL_PREFIX,
    RECORD_KEY,
    FakeServer,
    RecordedRequest,
    serve_forever,
)

__all__ = [
    "OUTBOUND_CALL_PATH",
    "FakeElevenLabs",
    "Outcome",
    "RecordedCall",
    "RecordedRequest",
    "WebhookDelivery",
    "build_post_call_payload",
    "sign_post_call",
]

log = logging.getLogger(__name__)

OUTBOUND_CALL_PATH = "/v1/convai/twilio/outbound-call"

Outcome = Literal[
    "success",  # post_call_transcription, analysis.call_successful "success"
    "failure",  # the lead talked but the goal was not met
    "unknown",  # call_successful "unknown"
    "voicemail",  # transcription with a voicemail_detection tool result
    "error",  # transcription with status "failed" and metadata.error
    "busy",  # call_initiation_failure, failure_reason "busy"
    "no-answer",  # call_initiation_failure, failure_reason "no-answer"
    "initiation-failure",  # call_initiation_failure, failure_reason "unknown"
]
OUTCOMES: tuple[str, ...] = get_args(Outcome)

Scalar = str | int | float | bool

_INITIATION_FAILURES = {
    "busy": ("busy", "busy", "486"),
    "no-answer": ("no-answer", "no-answer", "487"),
    "initiation-failure": ("unknown", "failed", "500"),
}


def sign_post_call(secret: str, raw_body: bytes, timestamp: int) -> str:
    """Return an ``ElevenLabs-Signature`` value: ``t=<unix>,v0=<hex HMAC-SHA256>``."""
    signed = f"{timestamp}.".encode() + raw_body
    digest = hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v0={digest}"


def _data_item(item_id: str, value: Any, schema_type: str, description: str) -> dict[str, Any]:
    return {
        "data_collection_id": item_id,
        "value": value,
        "json_schema": {"type": schema_type, "description": description},
        "rationale": "Not mentioned in the call." if value is None else "Stated by the caller.",
    }


def _transcript(
    outcome: str, first_name: str, opt_out: bool | None, viewing: bool | None
) -> list[dict[str, Any]]:
    def turn(role: str, message: str, at: int, **extra: Any) -> dict[str, Any]:
        return {
            "role": role,
            "message": message,
            "time_in_call_secs": at,
            "tool_calls": extra.get("tool_calls", []),
            "tool_results": extra.get("tool_results", []),
        }

    if outcome == "voicemail":
        voicemail_result = {
            "result_type": "voicemail_detection_success",
            "status": "success",
            "voicemail_message": None,
            "reason": "Reached the voicemail greeting.",
        }
        return [
            turn(
                "agent",
                f"Hi {first_name}, this is Ava from the realty team.",
                0,
                tool_calls=[
                    {
                        "request_id": "voicemail_detection_1",
                        "tool_name": "voicemail_detection",
                        "params_as_json": "{}",
                        "tool_has_been_called": True,
                        "type": "system",
                    }
                ],
                tool_results=[
                    {
                        "request_id": "voicemail_detection_1",
                        "tool_name": "voicemail_detection",
                        "result_value": json.dumps(voicemail_result),
                        "result": voicemail_result,
                        "is_error": False,
                        "tool_has_been_called": True,
                        "type": "system",
                    }
                ],
            )
        ]
    turns = [
        turn("agent", f"Hi {first_name}, this is Ava from the realty team. Is now a good time?", 0),
        turn("user", "Sure, I have a minute.", 4),
    ]
    if opt_out:
        turns += [
            turn("user", "Actually, please stop calling me.", 9),
            turn("agent", "Understood, we won't call again. Have a good day.", 12),
        ]
    elif viewing:
        turns += [
            turn("agent", "Would you like to see the home you saved?", 8),
            turn("user", "Yes, Saturday afternoon works.", 12),
            turn("agent", "Great, you're booked. Our agent will confirm by text.", 16),
        ]
    else:
        turns += [turn("user", "I'm just browsing for now.", 10)]
    return turns


def build_post_call_payload(
    conversation_id: str,
    outcome: Outcome = "success",
    *,
    agent_id: str = "agent_fake",
    dynamic_variables: Mapping[str, Scalar] | None = None,
    user_id: str | None = None,
    to_number: str = "+15555550100",
    agent_number: str = "+15555550199",
    call_sid: str | None = None,
    opt_out_requested: bool | None = None,
    viewing_scheduled: bool | None = None,
    viewing_date: str | None = None,
    event_timestamp: int | None = None,
    call_duration_secs: int | None = None,
    transcript_summary: str | None = None,
) -> dict[str, Any]:
    """Return a realistic ElevenLabs webhook body for one call's ``outcome``.

    Transcription outcomes echo ``dynamic_variables`` (plus ``system__*`` values) in
    ``conversation_initiation_client_data`` and carry ``data_collection_results`` with
    ``opt_out_requested`` (bool), ``viewing_scheduled`` (bool; true when ``viewing_date``
    is given) and ``viewing_date`` (text, e.g. ISO 8601), each null when not given; the
    initiation failures (busy, no-answer, initiation-failure) carry neither.

    Raises:
        ValueError: ``outcome`` is not one of ``OUTCOMES``.
    """
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown outcome {outcome!r}; expected one of {OUTCOMES}")
    now = int(time.time()) if event_timestamp is None else event_timestamp
    sid = call_sid or "CA" + secrets.token_hex(16)
    if outcome in _INITIATION_FAILURES:
        reason, twilio_status, sip_code = _INITIATION_FAILURES[outcome]
        return {
            "type": "call_initiation_failure",
            "event_timestamp": now,
            "data": {
                "agent_id": agent_id,
                "conversation_id": conversation_id,
                "failure_reason": reason,
                "metadata": {
                    "type": "twilio",
                    "body": {
                        "CallSid": sid,
                        "CallStatus": twilio_status,
                        "Direction": "outbound-api",
                        "From": agent_number,
                        "To": to_number,
                        "SipResponseCode": sip_code,
                        "Timestamp": time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime(now)),
                    },
                },
            },
        }

    if viewing_scheduled is None and viewing_date is not None:
        viewing_scheduled = True
    variables: dict[str, Scalar] = dict(dynamic_variables or {})
    first_name = str(variables.get("lead_first_name") or variables.get("first_name") or "there")
    default_duration = {"voicemail": 18, "error": 0, "success": 95}.get(outcome, 41)
    duration = default_duration if call_duration_secs is None else call_duration_secs
    successful = {"success": "success", "unknown": "unknown"}.get(outcome, "failure")
    if transcript_summary is None:
        transcript_summary = {
            "success": "The agent reached the lead and answered their questions.",
            "voicemail": "The call reached voicemail; the agent left no message.",
            "error": "The call failed before the conversation started.",
        }.get(outcome, "The agent reached the lead, who is not ready to move forward.")
        if viewing_scheduled:
            transcript_summary = "The agent reached the lead, who agreed to a viewing."
        if opt_out_requested:
            transcript_summary = "The lead asked not to be called again."
    termination = {
        "voicemail": "voicemail_detection tool was called.",
        "error": "Call failed.",
    }.get(outcome, "end_call tool was called.")

    echoed: dict[str, Scalar] = {
        **variables,
        "system__agent_id": agent_id,
        "system__conversation_id": conversation_id,
        "system__call_sid": sid,
        "system__called_number": to_number,
        "system__caller_id": agent_number,
        "system__call_duration_secs": duration,
        "system__time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - duration)),
    }
    metadata: dict[str, Any] = {
        "start_time_unix_secs": now - duration - 5,
        "call_duration_secs": duration,
        "cost": duration * 10,
        "termination_reason": termination,
        "error": None,
        "features_usage": {
            "voicemail_detection": {"enabled": True, "used": outcome == "voicemail"}
        },
        "phone_call": {
            "type": "twilio",
            "direction": "outbound",
            "phone_number_id": "phnum_fake",
            "agent_number": agent_number,
            "external_number": to_number,
            "call_sid": sid,
        },
    }
    if outcome == "error":
        metadata["error"] = {"code": 500, "reason": "Twilio call could not be connected."}
    data: dict[str, Any] = {
        "agent_id": agent_id,
        "conversation_id": conversation_id,
        "status": "failed" if outcome == "error" else "done",
        "user_id": user_id,
        "transcript": []
        if outcome == "error"
        else _transcript(outcome, first_name, opt_out_requested, viewing_scheduled),
        "metadata": metadata,
        "analysis": {
            "call_successful": successful,
            "transcript_summary": transcript_summary,
            "evaluation_criteria_results": {},
            "data_collection_results": {
                "opt_out_requested": _data_item(
                    "opt_out_requested",
                    opt_out_requested,
                    "boolean",
                    "True if the lead asked not to be called or contacted again.",
                ),
                "viewing_scheduled": _data_item(
                    "viewing_scheduled",
                    viewing_scheduled,
                    "boolean",
                    "True if the lead agreed to a property viewing.",
                ),
                "viewing_date": _data_item(
                    "viewing_date",
                    viewing_date,
                    "string",
                    "ISO 8601 date and time of the viewing the lead agreed to, if any.",
                ),
            },
        },
        "conversation_initiation_client_data": {
            "conversation_config_override": {},
            "dynamic_variables": echoed,
        },
    }
    return {"type": "post_call_transcription", "event_timestamp": now, "data": data}


@dataclass
class RecordedCall:
    """One outbound call the fake accepted, with when it arrived (monotonic and wall clock)."""

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


@dataclass
class WebhookDelivery:
    """What ``send_post_call`` sent and what the receiver answered."""

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

    def reset(self) -> None:
        """Forget requests, faults, calls and deliveries."""
        super().reset()
        self.calls.clear()
        self.deliveries.clear()

    def state(self) -> dict[str, Any]:
        """Return requests plus calls (without phone numbers) for ``GET /_fake/state``."""
        summary = super().state()
        summary["calls"] = [
            {
                "conversation_id": c.conversation_id,
                "user_id": c.user_id,
                "completed": c.completed,
                "received_wall": c.received_wall,
            }
            for c in self.calls
        ]
        return summary

    def add_routes(self, app: web.Application) -> None:
        """Register the outbound-call route and the read-only agent and number routes."""
        app.router.add_post(OUTBOUND_CALL_PATH, self._outbound_call)
        app.router.add_get("/v1/convai/agents/{agent_id}", self._get_agent)
        app.router.add_get("/v1/convai/phone-numbers/{phone_number_id}", self._get_phone_number)

    def _key_error(self, request: web.Request) -> web.Response | None:
        key = request.headers.get("xi-api-key")
        if key is None or not hmac.compare_digest(key.encode(), self.api_key.encode()):
            return web.json_response(self.error_body(401, None), status=401)
        return None

    async def _get_agent(self, request: web.Request) -> web.Response:
        if (denied := self._key_error(request)) is not None:
            return denied
        agent_id = request.match_info["agent_id"]
        if self.agents is not None and agent_id not in self.agents:
            detail = {"status": "agent_not_found", "message": f"Agent {agent_id} not found"}
            return web.json_response({"detail": detail}, status=404)
        return web.json_response({"agent_id": agent_id, "name": "Ava (fake)"})

    async def _get_phone_number(self, request: web.Request) -> web.Response:
        if (denied := self._key_error(request)) is not None:
            return denied
        number_id = request.match_info["phone_number_id"]
        if self.phone_numbers is not None and number_id not in self.phone_numbers:
            detail = {"status": "phone_number_not_found", "message": "Phone number not found"}
            return web.json_response({"detail": detail}, status=404)
        return web.json_response(
            {"phone_number_id": number_id, "phone_number": "+15555550199", "provider": "twilio"}
        )

    async def _outbound_call(self, request: web.Request) -> web.Response:
        key = request.headers.get("xi-api-key")
        if key is None:
            return web.json_response(
                {"detail": {"status": "needs_authorization", "message": "Missing xi-api-key."}},
                status=401,
            )
        if not hmac.compare_digest(key.encode(), self.api_key.encode()):
            return web.json_response(self.error_body(401, None), status=401)
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

    async def send_post_call(
        self,
        webhook_url: str,
        secret: str,
        conversation_id: str,
        outcome: Outcome = "success",
        *,
        opt_out_requested: bool | None = None,
        viewing_scheduled: bool | None = None,
        viewing_date: str | None = None,
        call_duration_secs: int | None = None,
        transcript_summary: str | None = None,
        dynamic_variables: Mapping[str, Scalar] | None = None,
        timestamp: int | None = None,
        session: aiohttp.ClientSession | None = None,
    ) -> WebhookDelivery:
        """POST a signed webhook for a call's outcome to ``webhook_url`` and mark it completed.

        Agent, number, user id and dynamic variables come from the recorded call when the
        fake placed it (``dynamic_variables`` overrides). ``timestamp`` sets both the
        signature's ``t`` and ``event_timestamp`` (to test stale signatures).

        Raises:
            aiohttp.ClientError: the receiver could not be reached.
        """
        known = next((c for c in self.calls if c.conversation_id == conversation_id), None)
        payload = build_post_call_payload(
            conversation_id,
            outcome,
            agent_id=known.agent_id if known else "agent_fake",
            dynamic_variables=dynamic_variables
            if dynamic_variables is not None
            else (known.dynamic_variables if known else {}),
            user_id=known.user_id if known else None,
            to_number=known.to_number if known else "+15555550100",
            call_sid=known.call_sid if known else None,
            opt_out_requested=opt_out_requested,
            viewing_scheduled=viewing_scheduled,
            viewing_date=viewing_date,
            event_timestamp=timestamp,
            call_duration_secs=call_duration_secs,
            transcript_summary=transcript_summary,
        )
        raw = json.dumps(payload).encode("utf-8")
        signature = sign_post_call(
            secret, raw, timestamp if timestamp is not None else int(time.time())
        )
        headers = {
            "Content-Type": "application/json",
            "ElevenLabs-Signature": signature,
            "User-Agent": "ElevenLabs/1.0",
        }
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
        if known is not None:
            known.completed = True
        self.deliveries.append(delivery)
        return delivery


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
