"""The lead fields a call needs, with the phone to dial and the intent read from the role."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from realgeeks_sync.app.domain.call_context.history import Activity
from realgeeks_sync.app.domain.call_context.values import (
    clean_text,
    dialable,
    parse_time,
    role_key,
)

__all__ = ["ROLE_INTENTS", "lead_view"]

# role (case-folded, spaces collapsed) -> intent; any other role is "other" (not callable)
ROLE_INTENTS = {
    "": "unknown",
    "buyer": "buyer",
    "seller": "seller",
    "potential seller": "seller",
    "buyer and seller": "buyer_and_seller",
    "buyer & seller": "buyer_and_seller",
    "buyer/seller": "buyer_and_seller",
    "renter": "renter",
}


def lead_view(lead: Mapping[str, Any], history: Sequence[Activity]) -> dict[str, Any]:
    """Return the lead fields a call needs, with the phone to dial."""
    first, last = clean_text(lead.get("first_name")), clean_text(lead.get("last_name"))
    full = " ".join(p for p in (first, last) if p) or None
    role = clean_text(lead.get("role"))
    agent_name = clean_text(lead.get("agent_name")) or _assigned_agent(history)
    created = parse_time(lead.get("created"))
    if created is None:
        dated = [a.created for a in history if a.created is not None]
        created = min(dated) if dated else None
    return {
        "first_name": first,
        "last_name": last,
        "full_name": full,
        "email": clean_text(lead.get("email")),
        "phone": dialable(lead.get("phone")) or dialable(lead.get("phone2")),
        "phone2": dialable(lead.get("phone2")),
        "role": role,
        "intent": ROLE_INTENTS.get(role_key(role), "other"),
        "source": clean_text(lead.get("source")),
        "source_details": clean_text(lead.get("source_details")),
        "agent_name": agent_name,
        "agent_email": clean_text(lead.get("agent_email")),
        "street_address": clean_text(lead.get("street_address")) or clean_text(lead.get("address")),
        "city": clean_text(lead.get("city")),
        "state": clean_text(lead.get("state")),
        "zip": clean_text(lead.get("zip")),
        "created": created.isoformat() if created else None,
    }


def _assigned_agent(history: Sequence[Activity]) -> str | None:
    """Return the agent of the newest assignment unless it was undone since."""
    for activity in history:
        if activity.type == "was_unassigned":
            return None
        if activity.type == "was_assigned" and activity.user is not None:
            return clean_text(activity.user.get("name"))
    return None
