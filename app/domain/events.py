"""Every event shape the service writes, in one place (the README's tables follow these).

Events are plain JSON objects with a ``schema`` field; builders are pure functions. Each
event type's fields here are exactly the properties of its JSON Schema in docs/schemas
(tests/unit/test_contracts.py), which consumers validate against.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from realgeeks_sync.app.domain.normalize.text import as_text

__all__ = [
    "ACTIVITY_V1_FIELDS",
    "CALLER_V1_FIELDS",
    "CALL_CONTEXT_V1_FIELDS",
    "CALL_OUTCOME_V1_FIELDS",
    "CONVERSATION_FIELDS",
    "DEADLETTER_FIELDS",
    "DIALER_EVENT_FIELDS",
    "EVENT_FIELDS",
    "LEAD_UPDATE_V1_FIELDS",
    "LEAD_V1_FIELDS",
    "OPTIONAL_FIELDS",
    "OPTOUT_V1_FIELDS",
    "OUTBOUND_ACTIVITY_V1_FIELDS",
    "UNTAGGED",
    "WEBHOOK_ENVELOPE_FIELDS",
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
    "conflicts",
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
    "own_writeback",
)
CALL_CONTEXT_V1_FIELDS = (
    "schema",
    "event_id",
    "site_uuid",
    "lead_id",
    "as_of",
    "lead",
    "property_interests",
    "previous_interactions",
    "strategy",
    "eligible",
    "reason",
    "reasons",
    "opt_out",
    "dynamic_variables",
    "supersedes_event_id",
    "changed_fields",
    "trigger",
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
# Built by app/domain/deadletters.py (deadletter_record).
DEADLETTER_FIELDS = (
    "schema",
    "topic",
    "key",
    "value",
    "error",
    "error_type",
    "retriable",
    "attempts",
    "first_failed_at",
    "value_b64",
)
# The records of the raw and internal topics carry no schema field: their type is their
# topic's (docs/asyncapi.yaml). Raw topics: a verified webhook as received
# (app/domain/envelopes.py; app/operations/backfill.py writes the same shape).
WEBHOOK_ENVELOPE_FIELDS = (
    "source",
    "action",
    "message_id",
    "timestamp",
    "received_at",
    "headers",
    "body",
)
# sync.conversations: the conversation -> lead map of a placed call (app/domain/dialing/machine.py)
# or of an inbound call the pre-call webhook placed (app/ingress/initiation.py: direction).
CONVERSATION_FIELDS = (
    "conversation_id",
    "site_uuid",
    "lead_id",
    "attempt_id",
    "started_at",
    "direction",
)
# sync.dialer-events, one shape per kind (app/domain/dialing/events.py; the kinds are the
# variants of docs/schemas/dialer_event.v1.json).
DIALER_EVENT_FIELDS = {
    "answer": (
        "kind",
        "site_uuid",
        "lead_id",
        "attempt_id",
        "result",
        "cause",
        "conversation_id",
        "retriable",
        "retry_after",
        "reason",
    ),
    "outcome": (
        "kind",
        "site_uuid",
        "lead_id",
        "conversation_id",
        "attempt_id",
        "outcome",
        "opted_out",
    ),
    "tick": ("kind", "site_uuid", "optouts_end"),
    "operator": ("kind", "site_uuid", "action", "lead_id", "by", "at", "event_id"),
}
# Event types named by their topic rather than by a schema field.
UNTAGGED = frozenset({"webhook_envelope.v1", "conversation.v1", "dialer_event.v1"})
# Fields an event carries only sometimes; every other field is always there.
OPTIONAL_FIELDS = {
    "activity.v1": frozenset({"own_writeback"}),
    "deadletter.v1": frozenset({"value_b64"}),
    "conversation.v1": frozenset({"direction"}),
}
# Every event type of one shape: its name (the `schema` value of those that carry one) and
# its fields (docs/schemas/<name>.json, checked by tests/unit/test_contracts.py); the
# dialer's events, one type of several shapes, are DIALER_EVENT_FIELDS.
EVENT_FIELDS = {
    "lead.v1": LEAD_V1_FIELDS,
    "activity.v1": ACTIVITY_V1_FIELDS,
    "call_context.v1": CALL_CONTEXT_V1_FIELDS,
    "outbound_activity.v1": OUTBOUND_ACTIVITY_V1_FIELDS,
    "optout.v1": OPTOUT_V1_FIELDS,
    "deadletter.v1": DEADLETTER_FIELDS,
    "webhook_envelope.v1": WEBHOOK_ENVELOPE_FIELDS,
    "conversation.v1": CONVERSATION_FIELDS,
    "lead_update.v1": LEAD_UPDATE_V1_FIELDS,
    "call_outcome.v1": CALL_OUTCOME_V1_FIELDS,
    "caller.v1": CALLER_V1_FIELDS,
}


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
    published for completeness but never fed to the AI path. The contract holds whatever a
    webhook sent: type, source and description are text or null (a number becomes its
    text), property and user objects or null. ``created`` must be normalized already.
    """
    event: dict[str, Any] = {
        "schema": "activity.v1",
        "event_id": event_id,
        "site_uuid": site_uuid,
        "lead_id": lead_id,
        "direction": direction,
        "type": as_text(activity.get("type")),
        "source": as_text(activity.get("source")),
        "description": as_text(activity.get("description")),
        "created": activity.get("created"),
        "property": _object_or_none(activity.get("property")),
        "user": _object_or_none(activity.get("user")),
    }
    if own:
        event["own_writeback"] = True
    return event


def _object_or_none(value: Any) -> dict[str, Any] | None:
    """A JSON object as a dict; anything else (a list, a number) as None."""
    return dict(value) if isinstance(value, Mapping) else None


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
