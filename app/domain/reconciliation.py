"""Reconciliation: outcomes whose post-call webhook never arrived, found in the history.

ElevenLabs may dispatch a post-call webhook once and never retry it (section 1.3 of the
API notes). So the agent's recent conversations are listed (``GET
/v1/convai/conversations``) every RGSYNC_RECONCILE_INTERVAL_S, and by ``realgeeks-sync
reconcile --since``; each finished one becomes a *reconcile request* on
elevenlabs.webhooks.raw, keyed by its conversation id like its webhook. map_call_outcomes
then fetches the conversation (its detail is the webhook's ``data``) only when no outcome
was mapped for it yet, and maps it like the webhook: one outcome per conversation id,
whichever comes first. A request's message id is fixed by the conversation, so a replayed
reconciliation is all duplicates and writes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

__all__ = [
    "FINISHED",
    "RECONCILE_SOURCE",
    "needs_request",
    "request_envelope",
    "request_message_id",
    "webhook_from_detail",
]

RECONCILE_SOURCE = "reconcile"
FINISHED = frozenset({"done", "failed"})
_DETAIL_ONLY = ("has_audio", "has_user_audio", "has_response_audio")


def request_message_id(conversation_id: str) -> str:
    """The message id of a conversation's reconcile request: one per conversation."""
    return f"reconcile:{conversation_id}"


def needs_request(summary: Mapping[str, Any], now: float, grace_s: float) -> str | None:
    """The conversation id to request, when a listed conversation has finished at least
    ``grace_s`` ago (its webhook had its chance); else None."""
    conversation = summary.get("conversation_id")
    if not isinstance(conversation, str) or not conversation:
        return None
    if summary.get("status") not in FINISHED:
        return None
    started = _number(summary.get("start_time_unix_secs"))
    duration = _number(summary.get("call_duration_secs")) or 0.0
    if started is None or started + duration + grace_s > now:
        return None
    return conversation


def request_envelope(conversation_id: str, agent_id: str, received_at: str) -> dict[str, Any]:
    """The raw-topic envelope of a reconcile request (key: the conversation id)."""
    return {
        "source": RECONCILE_SOURCE,
        "action": RECONCILE_SOURCE,
        "message_id": request_message_id(conversation_id),
        "timestamp": None,
        "received_at": received_at,
        "headers": {},
        "body": json.dumps(
            {"conversation_id": conversation_id, "agent_id": agent_id}, separators=(",", ":")
        ),
    }


def webhook_from_detail(detail: Mapping[str, Any]) -> dict[str, Any]:
    """The post-call webhook a conversation's detail stands for: its ``data``, sent when
    the call ended (start + duration)."""
    data = {k: v for k, v in detail.items() if k not in _DETAIL_ONLY}
    metadata = data.get("metadata")
    metadata = metadata if isinstance(metadata, Mapping) else {}
    started = _number(metadata.get("start_time_unix_secs")) or 0.0
    ended = started + (_number(metadata.get("call_duration_secs")) or 0.0)
    return {"type": "post_call_transcription", "event_timestamp": int(ended), "data": data}


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)
