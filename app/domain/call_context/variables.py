"""ElevenLabs dynamic variables: the context flattened to bounded str/int/float/bool values."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from realgeeks_sync.app.domain.call_context.policy import ContextPolicy
from realgeeks_sync.app.domain.call_context.values import scalar

__all__ = ["dynamic_variables"]

_RESERVED_PREFIX = "system__"


def dynamic_variables(context: Mapping[str, Any], policy: ContextPolicy) -> dict[str, Any]:
    """Return flat str/int/float/bool variables; every one always present, never None."""
    lead = context["lead"]
    interests = context["property_interests"]
    interactions = context["previous_interactions"]
    strategy = context["strategy"]
    recent = interests["recent"]
    last_viewed = recent[0] if recent else None
    variables: dict[str, Any] = {
        "lead_id": context["lead_id"],
        "site_uuid": context["site_uuid"],
        "call_context_event_id": context["event_id"],
        "lead_first_name": lead["first_name"],
        "lead_last_name": lead["last_name"],
        "lead_full_name": lead["full_name"],
        "lead_email": lead["email"],
        "lead_role": lead["role"],
        "lead_intent": lead["intent"],
        "lead_source": lead["source"],
        "lead_street_address": lead["street_address"],
        "city": lead["city"],
        "state": lead["state"],
        "zip": lead["zip"],
        "agent_name": lead["agent_name"],
        "has_assigned_agent": strategy["has_assigned_agent"],
        "is_hot_lead": strategy["is_hot_lead"],
        "is_buyer": strategy["is_buyer"],
        "is_seller": strategy["is_seller"],
        "is_renter": strategy["is_renter"],
        "is_returning_visitor": strategy["is_returning_visitor"],
        "has_viewed_properties": strategy["has_viewed_properties"],
        "properties_viewed_count": interests["viewed_count"],
        "property_interest_summary": _interest_summary(interests),
        "last_property_viewed": _property_label(last_viewed) if last_viewed else "",
        "preferred_cities": ", ".join(interests["cities"]),
        "price_range": _range_text(interests["price_min"], interests["price_max"], money=True),
        "call_goal": strategy["call_goal"],
        "call_talking_points": "; ".join(strategy["talking_points"]),
        "previous_ai_calls": interactions["ai_completed_calls"],
        "last_contact_at": interactions["last_contact_at"],
    }
    flat: dict[str, Any] = {}
    for name, value in variables.items():
        if name.startswith(_RESERVED_PREFIX):  # reserved by ElevenLabs; never ours
            continue
        flat[name] = scalar(value, policy.max_variable_chars)
    return flat


def _interest_summary(interests: Mapping[str, Any]) -> str:
    """Return one sentence about what the lead has looked at ("" when nothing)."""
    count = interests["viewed_count"]
    if not count:
        return ""
    distinct = interests["distinct_count"]
    parts = [f"Viewed {distinct} {'property' if distinct == 1 else 'properties'}"]
    if interests["cities"]:
        parts[0] += " in " + " and ".join(interests["cities"][:2])
    price = _range_text(interests["price_min"], interests["price_max"], money=True)
    if price:
        parts.append(price)
    beds = _range_text(interests["beds_min"], interests["beds_max"])
    if beds:
        parts.append(f"{beds} beds")
    baths = _range_text(interests["baths_min"], interests["baths_max"])
    if baths:
        parts.append(f"{baths} baths")
    return ", ".join(parts)


def _property_label(entry: Mapping[str, Any]) -> str:
    """Return "address, city" for a property, else its description."""
    place = ", ".join(p for p in (entry["address"], entry["city"]) if p)
    return place or entry["description"] or ""


def _range_text(low: float | None, high: float | None, *, money: bool = False) -> str:
    """Format a min-max range ("" when unknown)."""
    if low is None or high is None:
        return ""

    def fmt(x: float) -> str:
        if money:
            return f"${x:,.0f}"
        return f"{x:g}"

    return fmt(low) if low == high else f"{fmt(low)}-{fmt(high)}"
