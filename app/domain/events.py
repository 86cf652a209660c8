"""Every event shape the service writes, in one place (the README's tables follow these).

Events are plain JSON objects with a ``schema`` field; builders are pure functions.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

__all__ = [
    "ACTIVITY_V1_FIELDS",
    "CALLER_V1_FIELDS",
    "CALL_CONTEXT_V1_FIELDS",
    "CALL_OUTCOME_V1_FIELDS",
    "DEADLETTER_FIELDS",
    "LEAD_UPDATE_V1_FIELDS",
    "LEAD_V1_FIELDS",
    "OPTOUT_V1_FIELDS",
    "OUTBOUND_ACTIVITY_V1_FIELDS",
    "activity_event",
    "call_outcome_event",
    "derive_event_id",
    "lead_key",
    "lead_update_record",
    "outbound_activity",
]

LEAD_V1_FIELDS = (
    "schema",
    "event_id",
    "site_uuid",
    "lead_id",
    "source_lead_id",
    "op",
    "match",
    "lead",
    "changed",
    "cleared",
    "source_timestamp",
    "processed_at",
)
ACTIVITY_V1_FIELDS = (
    "schema",
    "event_id",
    "site_uuid",
    "lead_id",
    "direction",
    "type",
    "source",
    "description",
    "created",
    "property",
    "user",
)
CALL_CONTEXT_V1_FIELDS = (
    "schema",
    "event_id",
    "site_uuid",
    "lead_id",
    "lead",
    "property_interests",
    "previous_interactions",
    "strategy",
    "dynamic_variables",
    "eligible",
    "reason",
    "opt_out",
)
OUTBOUND_ACTIVITY_V1_FIELDS = ("schema", "activity_id", "site_uuid", "lead_id", "activity")
# Built by app/domain/dialing/optouts.py (optout_event).
OPTOUT_V1_FIELDS = (
    "schema",
    "event_id",
    "site_uuid",
    "subject",
    "lead_id",
    "phone",
    "action",
    "source",
    "reason",
    "by",
    "at",
)
# realgeeks.leads.outbound: fields and tags to PATCH onto a lead, once per conversation.
LEAD_UPDATE_V1_FIELDS = (
    "schema",
    "update_id",
    "site_uuid",
    "lead_id",
    "conversation_id",
    "fields",
    "tags",
)
# sync.call-outcomes: how one AI call ended, for the lead's call history.
CALL_OUTCOME_V1_FIELDS = (
    "schema",
    "event_id",
    "site_uuid",
    "lead_id",
    "conversation_id",
    "direction",
    "outcome",
    "opted_out",
    "kinds",
    "occurred_at",
    "reconciled",
)
# sync.callers (compacted): a lead's numbers and call variables, for inbound calls.
# Built by app/domain/callers.py (caller_record).
CALLER_V1_FIELDS = (
    "schema",
    "site_uuid",
    "lead_id",
    "phones",
    "dynamic_variables",
    "eligible",
    "as_of",
    "last_ai_call_at",
)
DEADLETTER_FIELDS = ("topic", "key", "value", "error", "error_type", "attempts", "first_failed_at")


def derive_event_id(message_id: str, *parts: str) -> str:
    """A deterministic event id from the message id (and which output of it this is)."""
    raw = "\x1f".join((message_id, *parts))
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()[:32]


def lead_key(site_uuid: str, lead_id: str) -> str:
    """The key of every per-lead topic: ``<site_uuid>:<lead_id>``."""
    return f"{site_uuid}:{lead_id}"


def activity_event(
    *,
    event_id: str,
    site_uuid: str,
    lead_id: str,
    direction: str,
    activity: Mapping[str, Any],
    own: bool = False,
) -> dict[str, Any]:
    """An ``activity.v1`` event from a Real Geeks-shaped activity.

    ``own`` marks activities this service wrote itself, echoed back by Real Geeks: they are
    published for completeness but never fed to the AI path.
    """
    event: dict[str, Any] = {
        "schema": "activity.v1",
        "event_id": event_id,
        "site_uuid": site_uuid,
        "lead_id": lead_id,
        "direction": direction,
        "type": activity.get("type"),
        "source": activity.get("source"),
        "description": activity.get("description"),
        "created": activity.get("created"),
        "property": activity.get("property"),
        "user": activity.get("user"),
    }
    if own:
        event["own_writeback"] = True
    return event


def outbound_activity(
    *, activity_id: str, site_uuid: str, lead_id: str, activity: Mapping[str, Any]
) -> dict[str, Any]:
    """A ``realgeeks.activities.outbound`` record: the activity and its idempotency key."""
    body = {k: v for k, v in activity.items() if k != "activity_id" and v is not None}
    return {
        "schema": "outbound_activity.v1",
        "activity_id": activity_id,
        "site_uuid": site_uuid,
        "lead_id": lead_id,
        "activity": body,
    }


def lead_update_record(
    *,
    update_id: str,
    site_uuid: str,
    lead_id: str,
    conversation_id: str,
    fields: Mapping[str, str],
    tags: tuple[str, ...] | list[str],
) -> dict[str, Any]:
    """A ``realgeeks.leads.outbound`` record: the lead's new fields and tags, and the
    idempotency key of their one PATCH."""
    return {
        "schema": "lead_update.v1",
        "update_id": update_id,
        "site_uuid": site_uuid,
        "lead_id": lead_id,
        "conversation_id": conversation_id,
        "fields": dict(fields),
        "tags": list(tags),
    }


def call_outcome_event(
    *,
    site_uuid: str,
    lead_id: str,
    conversation_id: str,
    direction: str | None,
    outcome: str,
    opted_out: bool,
    kinds: tuple[str, ...] | list[str],
    occurred_at: str,
    reconciled: bool = False,
) -> dict[str, Any]:
    """A ``call_outcome.v1`` event; its id depends on the conversation only, so the
    webhook and a reconciliation of one call give one event."""
    return {
        "schema": "call_outcome.v1",
        "event_id": derive_event_id(f"elevenlabs|{conversation_id}", "call_outcome"),
        "site_uuid": site_uuid,
        "lead_id": lead_id,
        "conversation_id": conversation_id,
        "direction": direction or "outbound",
        "outcome": outcome,
        "opted_out": opted_out,
        "kinds": list(kinds),
        "occurred_at": occurred_at,
        "reconciled": reconciled,
    }
