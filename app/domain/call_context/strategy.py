"""The call strategy: hot lead, intent flags, the goal of the call and its talking points."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from realgeeks_sync.app.domain.call_context.history import Activity
from realgeeks_sync.app.domain.call_context.policy import ContextPolicy
from realgeeks_sync.app.domain.call_context.values import parse_time

__all__ = ["strategy"]


def strategy(
    lead_view: Mapping[str, Any],
    interests: Mapping[str, Any],
    history: Sequence[Activity],
    now: datetime,
    policy: ContextPolicy,
) -> dict[str, Any]:
    """Apply the call-strategy rules: hot lead, intent, interests, returning, agent."""
    hot_reasons: list[str] = []
    created = parse_time(lead_view.get("created"))
    if created is not None and now - created <= policy.hot_new_lead_window:
        hot_reasons.append("new_lead")
    recent_views = sum(
        1
        for a in history
        if a.type == "property_viewed" and a.created and now - a.created <= policy.hot_view_window
    )
    if recent_views >= policy.hot_view_count:
        hot_reasons.append("recent_property_views")
    intent = lead_view["intent"]
    is_buyer = intent in ("buyer", "buyer_and_seller")
    is_seller = intent in ("seller", "buyer_and_seller")
    is_renter = intent == "renter"
    has_views = interests["viewed_count"] > 0
    returning = sum(1 for a in history if a.type == "visited") >= 2
    agent = lead_view.get("agent_name")

    points: list[str] = []
    if "new_lead" in hot_reasons:
        points.append("Just signed up on the website: call while their search is fresh")
    if has_views:
        points.append("Ask what they liked about the homes they viewed")
    if is_buyer:
        points.append("Buyer: ask about timeline, budget, pre-approval and must-haves")
    if is_seller:
        points.append("Seller: offer a free home valuation and ask about timing")
    if is_renter:
        points.append("Renter: ask about move-in date, budget and area")
    if returning:
        points.append("Returning visitor: acknowledge their continued interest")
    if agent:
        points.append(f"Offer to connect them with their agent {agent}")
    if is_seller and not is_buyer:
        goal = "home_valuation"
    elif has_views or is_buyer or is_renter:
        goal = "book_viewing"
    else:
        goal = "qualify"
    return {
        "intent": intent,
        "is_buyer": is_buyer,
        "is_seller": is_seller,
        "is_renter": is_renter,
        "is_hot_lead": bool(hot_reasons),
        "hot_reasons": hot_reasons,
        "recent_property_views": recent_views,
        "has_viewed_properties": has_views,
        "is_returning_visitor": returning,
        "has_assigned_agent": bool(agent),
        "assigned_agent_name": agent,
        "priority": "high" if hot_reasons else "normal",
        "call_goal": goal,
        "talking_points": points,
    }
