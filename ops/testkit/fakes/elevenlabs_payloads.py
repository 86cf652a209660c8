"""ElevenLabs webhook bodies as the fake sends them: post-call payloads and signatures.

``build_post_call_payload`` returns a webhook body without HTTP, for mapping tests; the fake
server (ops/testkit/fakes/elevenlabs.py) stores the same ``data`` as the conversation's
detail (``GET /v1/convai/conversations/{id}``), as ElevenLabs documents it (section 2.4
of the API notes: the detail is the webhook's ``data``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Mapping
from typing import Any, Literal, get_args

__all__ = [
    "OUTCOMES",
    "Direction",
    "Outcome",
    "Scalar",
    "build_post_call_payload",
    "conversation_summary",
    "sign_post_call",
]

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
Direction = Literal["outbound", "inbound"]

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
    direction: Direction = "outbound",
    start_time_unix_secs: int | None = None,
    collected: Mapping[str, Scalar | None] | None = None,
    criteria: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Return a realistic ElevenLabs webhook body for one call's ``outcome``.

    Transcription outcomes echo ``dynamic_variables`` (plus ``system__*`` values) in
    ``conversation_initiation_client_data`` and carry ``data_collection_results`` with
    ``opt_out_requested`` (bool), ``viewing_scheduled`` (bool; true when ``viewing_date``
    is given) and ``viewing_date`` (text, e.g. ISO 8601), each null when not given, plus
    any ``collected`` items (id -> value) and ``criteria`` results (id -> success, failure
    or unknown); the initiation failures (busy, no-answer, initiation-failure) carry
    neither. ``to_number`` is the lead's number: the one dialed, or for an ``inbound`` call
    the caller's (``metadata.phone_call.external_number``, ``system__caller_id``).

    Raises:
        ValueError: ``outcome`` is not one of ``OUTCOMES``.
    """
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown outcome {outcome!r}; expected one of {OUTCOMES}")
    now = int(time.time()) if event_timestamp is None else event_timestamp
    sid = call_sid or "CA" + secrets.token_hex(16)
    inbound = direction == "inbound"
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

    # The system variables as ElevenLabs fills them: the caller and the called number swap
    # places between an outbound and an inbound call.
    caller, called = (to_number, agent_number) if inbound else (agent_number, to_number)
    echoed: dict[str, Scalar] = {
        **variables,
        "system__agent_id": agent_id,
        "system__conversation_id": conversation_id,
        "system__call_sid": sid,
        "system__called_number": called,
        "system__caller_id": caller,
        "system__call_duration_secs": duration,
        "system__time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - duration)),
    }
    started = now - duration - 5 if start_time_unix_secs is None else start_time_unix_secs
    metadata: dict[str, Any] = {
        "start_time_unix_secs": started,
        "call_duration_secs": duration,
        "cost": duration * 10,
        "termination_reason": termination,
        "error": None,
        "features_usage": {
            "voicemail_detection": {"enabled": True, "used": outcome == "voicemail"}
        },
        "phone_call": {
            "type": "twilio",
            "direction": direction,
            "phone_number_id": "phnum_fake",
            "agent_number": agent_number,
            "external_number": to_number,
            "call_sid": sid,
        },
    }
    if outcome == "error":
        metadata["error"] = {"code": 500, "reason": "Twilio call could not be connected."}
    results = {
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
    }
    for item_id, value in (collected or {}).items():
        results[item_id] = _data_item(item_id, value, _schema_type(value), f"The {item_id}.")
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
            "evaluation_criteria_results": {
                criterion: {
                    "criteria_id": criterion,
                    "result": result,
                    "rationale": "Judged from the transcript.",
                }
                for criterion, result in (criteria or {}).items()
            },
            "data_collection_results": results,
        },
        "conversation_initiation_client_data": {
            "conversation_config_override": {},
            "dynamic_variables": echoed,
        },
    }
    return {"type": "post_call_transcription", "event_timestamp": now, "data": data}


def _schema_type(value: Any) -> str:
    """The JSON schema type ElevenLabs shows for a data-collection item's value."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    return "string"


def conversation_summary(
    detail: Mapping[str, Any], agent_name: str = "Fake agent"
) -> dict[str, Any]:
    """One entry of ``GET /v1/convai/conversations`` for a conversation's detail.

    The fields of the official SDK's ``ConversationSummaryResponseModel`` that a list page
    carries without ``summary_mode``.
    """
    metadata = detail.get("metadata") or {}
    analysis = detail.get("analysis") or {}
    phone_call = metadata.get("phone_call") or {}
    transcript = detail.get("transcript") or []
    return {
        "agent_id": detail.get("agent_id"),
        "agent_name": agent_name,
        "conversation_id": detail.get("conversation_id"),
        "start_time_unix_secs": int(metadata.get("start_time_unix_secs") or 0),
        "call_duration_secs": int(metadata.get("call_duration_secs") or 0),
        "message_count": len(transcript),
        "status": detail.get("status"),
        "termination_reason": metadata.get("termination_reason"),
        "call_successful": analysis.get("call_successful") or "unknown",
        "transcript_summary": analysis.get("transcript_summary"),
        "call_summary_title": None,
        "direction": phone_call.get("direction"),
    }
