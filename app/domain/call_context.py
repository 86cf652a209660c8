"""Build the ``calls.context`` value for an AI call from a normalized lead (pure, no I/O).

The context holds the lead, its property interests, previous interactions, strategy
rules, flat ``dynamic_variables`` for ElevenLabs, and ``eligible``/``reason``.

Eligibility: ``reason`` is the first failing rule, in this order (``reasons`` lists all):

    opted_out           do_not_call is set, or the history holds an ``opted_out`` activity
    role_not_callable   a role outside Buyer / Seller / Buyer and Seller / Renter /
                        Potential Seller (e.g. Agent, Lender); an empty role is callable,
                        since many genuine sign-ups carry none
    missing_consent     the lead carries an explicit "no" in a consent field, or the policy
                        requires consent (``require_consent``) and none is given. Real Geeks
                        sends no consent field today, so requiring it is off by default:
                        turning it on is a legal/product decision
    invalid_phone       a phone was given but none is a valid E.164 number
    no_phone            no phone at all
    unknown_timezone    the number's time zone cannot be determined: no local time is
                        known, so it is never dialled automatically
    no_calling_window   the number's candidate time zones never share an instant inside
                        the calling window (see app/domain/calling_window.py): never safe to dial

Determinism: the output depends only on the arguments, so pass the message's source
timestamp as ``now`` (not the processing time) and a replay yields an identical event.
``previous_context`` only fills ``supersedes_event_id``/``changed_fields``; when it is
this very event (a replay), its values are carried over unchanged.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from functools import lru_cache
from typing import Any

import phonenumbers

from realgeeks_sync.app.domain.call_outcomes import DEFAULT_ACTIVITY_SOURCE
from realgeeks_sync.app.domain.calling_window import (
    DEFAULT_END,
    DEFAULT_START,
    InvalidPhoneNumberError,
    UnknownTimezoneError,
    local_call_window,
)

__all__ = [
    "INELIGIBLE_REASONS",
    "OPTED_OUT",
    "SCHEMA",
    "ContextPolicy",
    "build_call_context",
    "changed_fields",
    "consent_refused",
    "materially_changed",
]

SCHEMA = "call_context.v1"

OPTED_OUT = "opted_out"
ROLE_NOT_CALLABLE = "role_not_callable"
MISSING_CONSENT = "missing_consent"
INVALID_PHONE = "invalid_phone"
NO_PHONE = "no_phone"
UNKNOWN_TIMEZONE = "unknown_timezone"
NO_CALLING_WINDOW = "no_calling_window"
INELIGIBLE_REASONS = (
    OPTED_OUT,
    ROLE_NOT_CALLABLE,
    MISSING_CONSENT,
    INVALID_PHONE,
    NO_PHONE,
    UNKNOWN_TIMEZONE,
    NO_CALLING_WINDOW,
)

# role (case-folded, spaces collapsed) -> intent
_ROLE_INTENTS = {
    "": "unknown",
    "buyer": "buyer",
    "seller": "seller",
    "potential seller": "seller",
    "buyer and seller": "buyer_and_seller",
    "buyer & seller": "buyer_and_seller",
    "buyer/seller": "buyer_and_seller",
    "renter": "renter",
}
_CONTACT_TYPES = frozenset({"called", "contact_emailed", "contact_texted", "emailed", "texted"})
_FALSE_WORDS = frozenset({"false", "no", "n", "0", "off", "declined", "revoked"})
_TRUE_WORDS = frozenset({"true", "yes", "y", "1", "on", "granted", "given"})
_RESERVED_PREFIX = "system__"
_ELLIPSIS = "…"


@dataclass(frozen=True)
class ContextPolicy:
    """Bounds and strategy thresholds for building a call context."""

    max_properties: int = 5
    max_recent_activities: int = 5
    max_cities: int = 3
    max_description_chars: int = 200
    max_variable_chars: int = 500
    hot_new_lead_window: timedelta = timedelta(hours=1)
    hot_view_window: timedelta = timedelta(hours=24)
    hot_view_count: int = 3
    require_consent: bool = False
    consent_fields: tuple[str, ...] = ("tcpa_consent", "call_consent", "consent")
    own_activity_source: str = DEFAULT_ACTIVITY_SOURCE
    opt_out_activity_types: frozenset[str] = field(default_factory=lambda: frozenset({OPTED_OUT}))
    call_window_start: time = DEFAULT_START
    call_window_end: time = DEFAULT_END


DEFAULT_POLICY = ContextPolicy()


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
    history = _history(activities, policy)
    lead_view = _lead_view(lead, history, policy)
    interests = _property_interests(history, policy)
    interactions = _previous_interactions(history, policy)
    strategy = _strategy(lead_view, interests, history, now, policy)
    reasons = _ineligible_reasons(lead, lead_view, history, do_not_call, now, policy)
    context: dict[str, Any] = {
        "schema": SCHEMA,
        "event_id": event_id,
        "site_uuid": site_uuid,
        "lead_id": lead_id,
        "as_of": now.isoformat(),
        "lead": lead_view,
        "property_interests": interests,
        "previous_interactions": interactions,
        "strategy": strategy,
        "eligible": not reasons,
        "reason": reasons[0] if reasons else None,
        "reasons": reasons,
    }
    context["dynamic_variables"] = _dynamic_variables(context, policy)
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


def consent_refused(fields: Mapping[str, Any], policy: ContextPolicy = DEFAULT_POLICY) -> bool:
    """True when a consent field holds a clear "no" ("false", "no", "revoked", 0...)."""
    return any(_flag(fields.get(name)) is False for name in policy.consent_fields if name in fields)


def changed_fields(
    previous_context: Mapping[str, Any] | None, new_context: Mapping[str, Any]
) -> list[str]:
    """Return the names of the material fields that differ (all of them without a previous)."""
    new = _fingerprint(new_context)
    if previous_context is None or previous_context.get("schema") != SCHEMA:
        return list(new)
    old = _fingerprint(previous_context)
    return [name for name in new if old.get(name) != new[name]]


def materially_changed(
    previous_context: Mapping[str, Any] | None, new_context: Mapping[str, Any]
) -> bool:
    """Return True when an update deserves a new calls.context (never for timestamps alone)."""
    return bool(changed_fields(previous_context, new_context))


# -- the pieces ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Activity:
    """One history entry, parsed once."""

    type: str
    source: str
    description: str
    created: datetime | None
    property: Mapping[str, Any] | None
    user: Mapping[str, Any] | None
    own: bool


def _history(activities: Sequence[Mapping[str, Any]], policy: ContextPolicy) -> list[_Activity]:
    """Parse activities and sort them newest first (undated ones last, in input order)."""
    own_source = policy.own_activity_source.casefold()
    parsed: list[tuple[int, _Activity]] = []
    if isinstance(activities, Sequence) and not isinstance(activities, str | bytes):
        for index, raw in enumerate(activities):
            if not isinstance(raw, Mapping):
                continue
            source = _text(raw.get("source")) or ""
            prop = raw.get("property")
            user = raw.get("user")
            activity = _Activity(
                type=(_text(raw.get("type")) or "").casefold(),
                source=source,
                description=_text(raw.get("description")) or "",
                created=_parse_time(raw.get("created")),
                property=prop if isinstance(prop, Mapping) else None,
                user=user if isinstance(user, Mapping) else None,
                own=source.casefold() == own_source,
            )
            parsed.append((index, activity))
    epoch = datetime.min.replace(tzinfo=UTC)
    # Newest first; among equal/missing times the later input entry counts as newer.
    parsed.sort(key=lambda item: (item[1].created or epoch, item[0]), reverse=True)
    dated = [a for _, a in parsed if a.created is not None]
    undated = [a for _, a in parsed if a.created is None]
    return dated + undated


def _lead_view(
    lead: Mapping[str, Any], history: Sequence[_Activity], policy: ContextPolicy
) -> dict[str, Any]:
    """Return the lead fields a call needs, with the phone to dial."""
    first, last = _text(lead.get("first_name")), _text(lead.get("last_name"))
    full = " ".join(p for p in (first, last) if p) or None
    role = _text(lead.get("role"))
    agent_name = _text(lead.get("agent_name")) or _assigned_agent(history)
    created = _parse_time(lead.get("created"))
    if created is None:
        dated = [a.created for a in history if a.created is not None]
        created = min(dated) if dated else None
    return {
        "first_name": first,
        "last_name": last,
        "full_name": full,
        "email": _text(lead.get("email")),
        "phone": _dialable(lead.get("phone")) or _dialable(lead.get("phone2")),
        "phone2": _dialable(lead.get("phone2")),
        "role": role,
        "intent": _ROLE_INTENTS.get(_role_key(role), "other"),
        "source": _text(lead.get("source")),
        "source_details": _text(lead.get("source_details")),
        "agent_name": agent_name,
        "agent_email": _text(lead.get("agent_email")),
        "street_address": _text(lead.get("street_address")) or _text(lead.get("address")),
        "city": _text(lead.get("city")),
        "state": _text(lead.get("state")),
        "zip": _text(lead.get("zip")),
        "created": created.isoformat() if created else None,
    }


def _assigned_agent(history: Sequence[_Activity]) -> str | None:
    """Return the agent of the newest assignment unless it was undone since."""
    for activity in history:
        if activity.type == "was_unassigned":
            return None
        if activity.type == "was_assigned" and activity.user is not None:
            return _text(activity.user.get("name"))
    return None


def _property_interests(history: Sequence[_Activity], policy: ContextPolicy) -> dict[str, Any]:
    """Summarize property_viewed activities: recent distinct properties, cities, ranges."""
    views = [a for a in history if a.type == "property_viewed"]
    by_key: dict[str, dict[str, Any]] = {}
    city_counts: Counter[str] = Counter()
    for view in views:
        entry = _property_entry(view, policy)
        if entry["city"]:
            city_counts[entry["city"]] += 1
        key = entry["key"]
        if key in by_key:
            by_key[key]["views"] += 1
        else:
            by_key[key] = entry  # history is newest first, so the first seen is the latest
    recent = list(by_key.values())[: policy.max_properties]
    cities = [city for city, _ in city_counts.most_common(policy.max_cities)]
    return {
        "viewed_count": len(views),
        "distinct_count": len(by_key),
        "recent": recent,
        "cities": cities,
        "price_min": _min_of(recent, "price"),
        "price_max": _max_of(recent, "price"),
        "beds_min": _min_of(recent, "beds"),
        "beds_max": _max_of(recent, "beds"),
        "baths_min": _min_of(recent, "baths"),
        "baths_max": _max_of(recent, "baths"),
    }


def _property_entry(view: _Activity, policy: ContextPolicy) -> dict[str, Any]:
    """Return one viewed property's fields (None where the payload has none)."""
    prop = view.property or {}
    address = _first_text(prop, ("address", "street_address", "full_address", "street"))
    city = _first_text(prop, ("city",))
    zip_code = _first_text(prop, ("zip", "zipcode", "postal_code"))
    mls = _first_text(prop, ("mls", "mls_number", "mls_id", "listing_id"))
    url = _first_text(prop, ("url", "listing_url"))
    baths = _first_number(prop, ("baths", "bathrooms", "total_baths"))
    if baths is None:
        full = _first_number(prop, ("full_baths",))
        half = _first_number(prop, ("half_baths",)) or 0
        baths = full + half / 2 if full is not None else None
    description = _bounded(view.description, policy.max_description_chars) or None
    key = _property_key(mls, address, city, zip_code, url, view.description)
    return {
        "key": key,
        "address": address,
        "city": city,
        "state": _first_text(prop, ("state",)),
        "zip": zip_code,
        "price": _first_number(
            prop, ("price", "list_price", "listing_price", "current_price", "rent_price")
        ),
        "beds": _first_number(prop, ("beds", "bedrooms", "bed")),
        "baths": baths,
        "listing_status": _first_text(prop, ("listing_status",)),
        "property_type": _first_text(prop, ("property_type", "type")),
        "mls": mls,
        "url": url,
        "description": description,
        "last_viewed_at": view.created.isoformat() if view.created else None,
        "views": 1,
    }


def _property_key(
    mls: str | None,
    address: str | None,
    city: str | None,
    zip_code: str | None,
    url: str | None,
    description: str,
) -> str:
    """Return a stable identity for a property, used to de-duplicate repeat views."""
    if mls:
        return "mls:" + _squash(mls)
    if address:
        return "addr:" + "|".join(_squash(p or "") for p in (address, city, zip_code))
    if url:
        return "url:" + url.strip()
    return "desc:" + _squash(description)[:200]


def _previous_interactions(history: Sequence[_Activity], policy: ContextPolicy) -> dict[str, Any]:
    """Count activities by type and keep the latest few, bounded."""
    by_type = Counter(a.type or "unknown" for a in history)
    contacts = [a for a in history if a.type in _CONTACT_TYPES and a.created]
    visits = [a for a in history if a.type == "visited" and a.created]
    recent = [
        {
            "type": a.type,
            "source": a.source,
            "created": a.created.isoformat() if a.created else None,
            "description": _bounded(a.description, policy.max_description_chars),
            "by_ai_agent": a.own,
        }
        for a in history[: policy.max_recent_activities]
    ]
    last_activity = next((a.created for a in history if a.created), None)
    return {
        "total": len(history),
        "by_type": dict(sorted(by_type.items())),
        "last_activity_at": last_activity.isoformat() if last_activity else None,
        "last_contact_at": _iso(contacts[0].created) if contacts else None,
        "last_visit_at": _iso(visits[0].created) if visits else None,
        "visit_count": by_type.get("visited", 0),
        "ai_activity_count": sum(1 for a in history if a.own),
        "ai_completed_calls": sum(1 for a in history if a.own and a.type == "called"),
        "recent": recent,
    }


def _strategy(
    lead_view: Mapping[str, Any],
    interests: Mapping[str, Any],
    history: Sequence[_Activity],
    now: datetime,
    policy: ContextPolicy,
) -> dict[str, Any]:
    """Apply the call-strategy rules: hot lead, intent, interests, returning, agent."""
    hot_reasons: list[str] = []
    created = _parse_time(lead_view.get("created"))
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


def _ineligible_reasons(
    lead: Mapping[str, Any],
    lead_view: Mapping[str, Any],
    history: Sequence[_Activity],
    do_not_call: bool,
    now: datetime,
    policy: ContextPolicy,
) -> list[str]:
    """Return every failing eligibility rule, most important first."""
    reasons: list[str] = []
    if bool(do_not_call) or any(a.type in policy.opt_out_activity_types for a in history):
        reasons.append(OPTED_OUT)
    if lead_view["intent"] == "other":
        reasons.append(ROLE_NOT_CALLABLE)
    consent = [_flag(lead.get(name)) for name in policy.consent_fields if name in lead]
    if False in consent or (policy.require_consent and True not in consent):
        reasons.append(MISSING_CONSENT)
    phone = lead_view["phone"]
    if phone is None:
        given = ("phone", "phone2", "phone_raw", "phone2_raw")
        reasons.append(INVALID_PHONE if any(_text(lead.get(k)) for k in given) else NO_PHONE)
    else:
        try:
            window = local_call_window(
                phone, now, policy.call_window_start, policy.call_window_end
            )
        except InvalidPhoneNumberError:
            reasons.append(INVALID_PHONE)
        except UnknownTimezoneError:
            reasons.append(UNKNOWN_TIMEZONE)
        else:
            if window.next_open_utc is None:
                reasons.append(NO_CALLING_WINDOW)
    return reasons


def _dynamic_variables(context: Mapping[str, Any], policy: ContextPolicy) -> dict[str, Any]:
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
        flat[name] = _scalar(value, policy.max_variable_chars)
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


# -- fingerprint for materially_changed ----------------------------------------------

_MATERIAL_LEAD_FIELDS = (
    "first_name",
    "last_name",
    "email",
    "phone",
    "phone2",
    "role",
    "agent_name",
)


def _fingerprint(context: Mapping[str, Any]) -> dict[str, Any]:
    """Return the fields whose change warrants a new context (no timestamps, no hot flag)."""
    lead = context.get("lead")
    lead = lead if isinstance(lead, Mapping) else {}
    interests = context.get("property_interests")
    recent = interests.get("recent") if isinstance(interests, Mapping) else None
    # A set: re-viewing a known property reorders the list but is no new interest.
    keys = sorted(
        str(e.get("key"))
        for e in (recent if isinstance(recent, list) else [])
        if isinstance(e, Mapping)
    )
    fingerprint: dict[str, Any] = {f"lead.{name}": lead.get(name) for name in _MATERIAL_LEAD_FIELDS}
    fingerprint["property_interests"] = keys
    fingerprint["eligible"] = context.get("eligible")
    return fingerprint


# -- small helpers -----------------------------------------------------------------------


def _text(value: Any) -> str | None:
    """Return a trimmed single-line string for str/number values, else None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, int | float):
        value = str(value)
    if not isinstance(value, str):
        return None
    # Lone surrogates from JSON escapes would make the UTF-8 Kafka encode fail.
    value = value.encode("utf-8", "replace").decode("utf-8")
    return " ".join(value.split()) or None


def _first_text(source: Mapping[str, Any], keys: Sequence[str]) -> str | None:
    """Return the first non-empty text among ``keys``."""
    for key in keys:
        value = _text(source.get(key))
        if value:
            return value
    return None


def _first_number(source: Mapping[str, Any], keys: Sequence[str]) -> float | None:
    """Return the first finite non-negative number among ``keys`` ("$450,000" accepted)."""
    for key in keys:
        value = _number(source.get(key))
        if value is not None:
            return value
    return None


def _number(value: Any) -> float | int | None:
    """Parse a number from int/float/str ("$1,250.50" -> 1250.5); None if not one."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str):
        cleaned = re.sub(r"[$,\s]", "", value)
        try:
            value = float(cleaned)
        except ValueError:
            return None
    if not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        return None
    return int(value) if float(value).is_integer() else float(value)


def _min_of(entries: Sequence[Mapping[str, Any]], key: str) -> float | None:
    """Return the smallest known value of ``key``."""
    values = [e[key] for e in entries if e.get(key) is not None]
    return min(values) if values else None


def _max_of(entries: Sequence[Mapping[str, Any]], key: str) -> float | None:
    """Return the largest known value of ``key``."""
    values = [e[key] for e in entries if e.get(key) is not None]
    return max(values) if values else None


def _parse_time(value: Any) -> datetime | None:
    """Parse ISO 8601 (naive taken as UTC) to an aware UTC datetime, else None."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str) and value.strip():
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            return None
    else:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _iso(value: datetime | None) -> str | None:
    """Return ISO 8601 text or None."""
    return value.isoformat() if value else None


def _dialable(value: Any) -> str | None:
    """Return the value when it is a valid E.164 number, else None."""
    text = _text(value)
    if not text or not text.startswith("+"):
        return None
    return _dialable_e164(text) if len(text) <= 32 else _parse_dialable(text)


@lru_cache(maxsize=8192)
def _dialable_e164(text: str) -> str | None:
    """``_parse_dialable``, remembered: a context checks each number several times."""
    return _parse_dialable(text)


def _parse_dialable(text: str) -> str | None:
    try:
        number = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _role_key(role: str | None) -> str:
    """Return the role case-folded with spaces collapsed."""
    return " ".join((role or "").casefold().split())


def _flag(value: Any) -> bool | None:
    """Read a consent flag: True/False for clear values, None when unclear."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    if isinstance(value, str):
        word = value.strip().casefold()
        if word in _TRUE_WORDS:
            return True
        if word in _FALSE_WORDS:
            return False
    return None


def _squash(text: str) -> str:
    """Case-fold and drop punctuation/spacing so repeat views of one place match."""
    return re.sub(r"[^0-9a-z]+", "", text.casefold())


def _bounded(text: str, limit: int) -> str:
    """Cut ``text`` to ``limit`` characters, marking the cut."""
    if len(text) <= limit:
        return text
    return text[: max(limit - 1, 0)].rstrip() + _ELLIPSIS


def _scalar(value: Any, limit: int) -> str | int | float | bool:
    """Coerce a variable to str/int/float/bool; None becomes "" and text is bounded."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value if math.isfinite(value) else ""
    if value is None:
        return ""
    return _bounded(str(value), limit)
