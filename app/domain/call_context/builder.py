"""``build_call_context``: the pieces of a call context assembled into one calls.context value."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from realgeeks_sync.app.domain.call_context.codes import SCHEMA
from realgeeks_sync.app.domain.call_context.eligibility import (
    EligibilityFacts,
    ineligible_reasons,
)
from realgeeks_sync.app.domain.call_context.fingerprint import changed_fields
from realgeeks_sync.app.domain.call_context.history import parse_history, previous_interactions
from realgeeks_sync.app.domain.call_context.interests import property_interests
from realgeeks_sync.app.domain.call_context.lead_view import lead_view
from realgeeks_sync.app.domain.call_context.policy import DEFAULT_POLICY, ContextPolicy
from realgeeks_sync.app.domain.call_context.strategy import strategy
from realgeeks_sync.app.domain.call_context.variables import dynamic_variables

__all__ = ["build_call_context"]


def build_call_context(
    *,
    site_uuid: str,
    lead_id: str,
    lead: Mapping[str, Any],
    activities: Sequence[Mapping[str, Any]],
    do_not_call: bool,
    now: datetime,
    event_id: str,
    previous_context: Mapping[str, Any] | None = None,
    policy: ContextPolicy = DEFAULT_POLICY,
) -> dict[str, Any]:
    """Return the ``calls.context`` value (schema call_context.v1) for one lead.

    Raises:
        ValueError: ``now`` is naive, or site_uuid/lead_id/event_id is empty.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    for name, value in (("site_uuid", site_uuid), ("lead_id", lead_id), ("event_id", event_id)):
        if not isinstance(value, str) or not value:
            raise ValueError(f"{name} must be a non-empty string")
    now = now.astimezone(UTC)
    if not isinstance(lead, Mapping):
        lead = {}
    history = parse_history(activities, policy)
    view = lead_view(lead, history)
    interests = property_interests(history, policy)
    interactions = previous_interactions(history, policy)
    plan = strategy(view, interests, history, now, policy)
    facts = EligibilityFacts(lead, view, history, do_not_call, now, policy)
    reasons = ineligible_reasons(facts)
    context: dict[str, Any] = {
        "schema": SCHEMA,
        "event_id": event_id,
        "site_uuid": site_uuid,
        "lead_id": lead_id,
        "as_of": now.isoformat(),
        "lead": view,
        "property_interests": interests,
        "previous_interactions": interactions,
        "strategy": plan,
        "eligible": not reasons,
        "reason": reasons[0] if reasons else None,
        "reasons": reasons,
    }
    context["dynamic_variables"] = dynamic_variables(context, policy)
    if previous_context is not None and previous_context.get("event_id") == event_id:
        # A replay of this very event: keep what the first run decided.
        context["supersedes_event_id"] = previous_context.get("supersedes_event_id")
        context["changed_fields"] = list(previous_context.get("changed_fields") or [])
    elif previous_context is not None:
        previous_id = previous_context.get("event_id")
        context["supersedes_event_id"] = previous_id if isinstance(previous_id, str) else None
        context["changed_fields"] = changed_fields(previous_context, context)
    else:
        context["supersedes_event_id"] = None
        context["changed_fields"] = changed_fields(None, context)
    return context
