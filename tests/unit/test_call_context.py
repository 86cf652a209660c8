"""calls.context: lead view, interests, interactions, strategy, variables, eligibility."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import realgeeks_sync.app.domain.call_context as call_context_package
from realgeeks_sync.app.domain.call_context import (
    ELIGIBILITY_RULES,
    INELIGIBLE_REASONS,
    SCHEMA,
    ContextPolicy,
    build_call_context,
    changed_fields,
    materially_changed,
)
from realgeeks_sync.app.domain.call_outcomes import DEFAULT_ACTIVITY_SOURCE
from tests.strategies import json_values

SITE = "5ead6dd1-2cb9-4f80-80fc-5716b05c90ba"
LEAD_ID = "a27c20af4497415d9e4e7334dd1d40d2"
NOW = datetime(2025, 3, 1, 20, 0, tzinfo=UTC)


def make_lead(**overrides: Any) -> dict[str, Any]:
    """Return a normalized lead like the normalizer emits (Real Geeks 3.1/3.3 fields)."""
    lead: dict[str, Any] = {
        "first_name": "Jack",
        "last_name": "Johnson",
        "email": "jack@mail.com",
        "phone": "+18088172382",
        "phone_raw": "808-817-2382",
        "phone2": None,
        "role": "Buyer",
        "source": "Website Property Search",
        "agent_name": "Ben Harper",
        "agent_email": "ben@mail.com",
        "street_address": "1 Ala Moana Blvd",
        "city": "Honolulu",
        "state": "HI",
        "zip": "96815",
        "created": "2025-03-01T06:14:01.597026Z",
    }
    lead.update(overrides)
    return lead


def view(address: str, created: str, **prop: Any) -> dict[str, Any]:
    """Return a property_viewed activity with a property object."""
    return {
        "type": "property_viewed",
        "source": "Website Property Search",
        "description": f"Viewed {address}",
        "created": created,
        "property": {"address": address, "city": "Honolulu", "state": "HI", "zip": "96815", **prop},
        "user": None,
    }


SIGNUP = {
    "type": "visited",
    "source": "Website Property Search",
    "description": "First visit (initial sign-up)",
    "created": "2025-03-01T06:14:01.632792Z",
    "property": None,
    "user": None,
}


def build(
    lead: Mapping[str, Any] | None = None, activities: Any = (), **kwargs: Any
) -> dict[str, Any]:
    """Build a context with test defaults."""
    args: dict[str, Any] = {
        "site_uuid": SITE,
        "lead_id": LEAD_ID,
        "lead": make_lead() if lead is None else lead,
        "activities": list(activities),
        "do_not_call": False,
        "now": NOW,
        "event_id": "evt-1",
    }
    args.update(kwargs)
    return build_call_context(**args)


def test_shape_and_lead_view() -> None:
    context = build(activities=[SIGNUP])
    assert context["schema"] == SCHEMA == "call_context.v1"
    assert (context["event_id"], context["site_uuid"], context["lead_id"]) == (
        "evt-1",
        SITE,
        LEAD_ID,
    )
    lead = context["lead"]
    assert lead["full_name"] == "Jack Johnson"
    assert lead["phone"] == "+18088172382"
    assert lead["email"] == "jack@mail.com"
    assert lead["intent"] == "buyer"
    assert (lead["city"], lead["state"], lead["zip"]) == ("Honolulu", "HI", "96815")
    assert context["eligible"] is True and context["reason"] is None
    json.dumps(context)  # plain JSON for the topic


def test_property_interests_dedupe_bound_and_ranges() -> None:
    activities = [
        SIGNUP,
        view(
            "123 Main St", "2025-03-01T10:00:00Z", price=450000, beds=3, full_baths=2, half_baths=1
        ),
        view(
            "45 Kalakaua Ave", "2025-03-01T11:00:00Z", list_price="$620,000", bedrooms="4", baths=3
        ),
        view("123 Main St.", "2025-03-01T12:00:00Z", price=450000, beds=3),
        {
            **view("9 Beach Rd", "2025-03-01T13:00:00Z"),
            "property": None,
            "description": "Viewed 9 Beach Rd, Kailua",
        },
    ]
    interests = build(activities=activities)["property_interests"]
    assert interests["viewed_count"] == 4
    assert interests["distinct_count"] == 3  # "123 Main St" and "123 Main St." are one place
    recent = interests["recent"]
    assert [p["address"] for p in recent] == [None, "123 Main St.", "45 Kalakaua Ave"]
    assert recent[0]["description"] == "Viewed 9 Beach Rd, Kailua"
    assert recent[1]["views"] == 2
    assert (interests["price_min"], interests["price_max"]) == (450000, 620000)
    assert (interests["beds_min"], interests["beds_max"]) == (3, 4)
    assert interests["cities"] == ["Honolulu"]
    bounded = build(activities=activities, policy=ContextPolicy(max_properties=1))
    assert len(bounded["property_interests"]["recent"]) == 1
    variables = build(activities=activities)["dynamic_variables"]
    assert variables["last_property_viewed"] == "Viewed 9 Beach Rd, Kailua"
    assert "$450,000-$620,000" in variables["property_interest_summary"]
    assert variables["price_range"] == "$450,000-$620,000"
    assert variables["has_viewed_properties"] is True
    assert variables["properties_viewed_count"] == 4


def test_previous_interactions_counts_and_bounds() -> None:
    long_text = "x" * 1000
    activities = [
        SIGNUP,
        {**SIGNUP, "description": "Returned", "created": "2025-02-20T10:00:00Z"},
        {
            "type": "called",
            "source": "LeadManager",
            "description": long_text,
            "created": "2025-02-25T10:00:00Z",
        },
        {
            "type": "called",
            "source": DEFAULT_ACTIVITY_SOURCE,
            "description": "AI call completed",
            "created": "2025-02-26T10:00:00Z",
        },
        {"type": "note", "source": "LeadManager", "description": "Prefers texts", "created": None},
        "not an activity",
    ]
    interactions = build(activities=activities, policy=ContextPolicy(max_recent_activities=3))[
        "previous_interactions"
    ]
    assert interactions["total"] == 5
    assert interactions["by_type"] == {"called": 2, "note": 1, "visited": 2}
    assert interactions["last_contact_at"] == "2025-02-26T10:00:00+00:00"
    assert interactions["last_activity_at"] == "2025-03-01T06:14:01.632792+00:00"
    assert interactions["ai_completed_calls"] == 1
    assert len(interactions["recent"]) == 3
    assert [r["type"] for r in interactions["recent"]] == ["visited", "called", "called"]
    assert all(len(r["description"]) <= 200 for r in interactions["recent"])
    assert interactions["recent"][1]["by_ai_agent"] is True


@pytest.mark.parametrize(
    ("created", "hot"),
    [("2025-03-01T19:30:00Z", True), ("2025-03-01T18:59:00Z", False)],
)
def test_hot_lead_when_created_within_the_hour(created: str, hot: bool) -> None:
    context = build(lead=make_lead(created=created))
    assert context["strategy"]["is_hot_lead"] is hot
    assert context["dynamic_variables"]["is_hot_lead"] is hot
    assert ("new_lead" in context["strategy"]["hot_reasons"]) is hot


def test_hot_lead_when_several_recent_views() -> None:
    old = make_lead(created="2025-01-01T00:00:00Z")
    recent = [view(f"{n} Main St", f"2025-03-01T1{n}:00:00Z") for n in range(3)]
    assert build(lead=old, activities=recent)["strategy"]["hot_reasons"] == [
        "recent_property_views"
    ]
    stale = [view(f"{n} Main St", f"2025-02-01T1{n}:00:00Z") for n in range(3)]
    assert build(lead=old, activities=stale)["strategy"]["is_hot_lead"] is False
    assert build(lead=old, activities=recent[:2])["strategy"]["is_hot_lead"] is False


@pytest.mark.parametrize(
    ("role", "buyer", "seller", "renter", "goal"),
    [
        ("Buyer", True, False, False, "book_viewing"),
        ("Seller", False, True, False, "home_valuation"),
        ("Potential Seller", False, True, False, "home_valuation"),
        ("Buyer and Seller", True, True, False, "book_viewing"),
        ("renter", False, False, True, "book_viewing"),
        ("", False, False, False, "qualify"),
    ],
)
def test_intent_from_role(role: str, buyer: bool, seller: bool, renter: bool, goal: str) -> None:
    context = build(lead=make_lead(role=role))
    strategy = context["strategy"]
    assert (strategy["is_buyer"], strategy["is_seller"], strategy["is_renter"]) == (
        buyer,
        seller,
        renter,
    )
    assert strategy["call_goal"] == goal
    assert context["dynamic_variables"]["is_seller"] is seller
    assert context["eligible"] is True


def test_returning_visitor_and_assigned_agent_from_history() -> None:
    lead = make_lead(agent_name=None)
    assigned = {
        "type": "was_assigned",
        "source": "LeadManager",
        "description": "Lead was assigned to Jack Johnson",
        "created": "2025-03-01T07:00:00Z",
        "user": {"id": "14187", "role": "Agent", "name": "Kai Agent", "email": "kai@x.com"},
    }
    returned = {**SIGNUP, "description": "Came back", "created": "2025-03-01T09:00:00Z"}
    strategy = build(lead=lead, activities=[SIGNUP, returned, assigned])["strategy"]
    assert strategy["is_returning_visitor"] is True
    assert strategy["assigned_agent_name"] == "Kai Agent"
    assert any("Kai Agent" in p for p in strategy["talking_points"])
    unassigned = {
        "type": "was_unassigned",
        "source": "LeadManager",
        "description": "",
        "created": "2025-03-01T08:00:00Z",
    }
    strategy = build(lead=lead, activities=[SIGNUP, assigned, unassigned])["strategy"]
    assert strategy["has_assigned_agent"] is False
    assert strategy["is_returning_visitor"] is False


@pytest.mark.parametrize(
    ("overrides", "kwargs", "activities", "reason"),
    [
        ({}, {"do_not_call": True}, [], "opted_out"),
        (
            {},
            {},
            [
                {
                    "type": "opted_out",
                    "source": DEFAULT_ACTIVITY_SOURCE,
                    "description": "",
                    "created": "2025-02-01T00:00:00Z",
                }
            ],
            "opted_out",
        ),
        ({"role": "Agent"}, {}, [], "role_not_callable"),
        ({"role": "Lender"}, {}, [], "role_not_callable"),
        ({"tcpa_consent": False}, {}, [], "missing_consent"),
        ({"consent": "no"}, {}, [], "missing_consent"),
        ({"phone": None, "phone_raw": "808-ABC"}, {}, [], "invalid_phone"),
        ({"phone": "+1555"}, {}, [], "invalid_phone"),
        ({"phone": None, "phone_raw": None}, {}, [], "no_phone"),
        ({"phone": None, "phone_raw": ""}, {}, [], "no_phone"),
    ],
)
def test_ineligible_reasons(
    overrides: dict[str, Any], kwargs: dict[str, Any], activities: list[Any], reason: str
) -> None:
    context = build(lead=make_lead(**overrides), activities=activities, **kwargs)
    assert context["eligible"] is False
    assert context["reason"] == reason
    assert reason in INELIGIBLE_REASONS


def test_no_calling_window_reason() -> None:
    # A one-hour window that Boise and Los Angeles (area code 208) never share.
    from datetime import time

    policy = ContextPolicy(call_window_start=time(9), call_window_end=time(10))
    context = build(lead=make_lead(phone="+12085551234"), policy=policy)
    assert context["reason"] == "no_calling_window"


def test_the_rule_table_is_the_documented_reason_order() -> None:
    doc = call_context_package.__doc__ or ""
    documented = [
        line.split()[0]
        for line in doc.splitlines()
        if line.startswith("    ") and not line.startswith("     ") and line.strip()
    ]
    assert [rule.name for rule in ELIGIBILITY_RULES] == documented
    assert documented == [
        "opted_out",
        "role_not_callable",
        "missing_consent",
        "invalid_phone",
        "no_phone",
        "unknown_timezone",
        "no_calling_window",
    ]
    assert tuple(documented) == INELIGIBLE_REASONS


def test_unknown_timezone_reason() -> None:
    # A valid non-geographic number (international freephone, +800) has no local time.
    context = build(lead=make_lead(phone="+80012345678"))
    assert context["reasons"] == ["unknown_timezone"]


def test_reason_is_the_first_of_several_and_all_are_listed() -> None:
    context = build(lead=make_lead(role="Agent", phone=None, phone_raw=None), do_not_call=True)
    assert context["reason"] == "opted_out"
    assert context["reasons"] == ["opted_out", "role_not_callable", "no_phone"]


def test_phone2_is_dialled_when_phone_is_missing() -> None:
    context = build(lead=make_lead(phone=None, phone2="+12125551234"))
    assert context["eligible"] is True
    assert context["lead"]["phone"] == "+12125551234"


def test_consent_policy() -> None:
    required = ContextPolicy(require_consent=True)
    assert build(policy=required)["reason"] == "missing_consent"
    assert build(lead=make_lead(tcpa_consent="yes"), policy=required)["eligible"] is True
    assert build(lead=make_lead(tcpa_consent=True))["eligible"] is True


def test_dynamic_variables_required_names_and_types() -> None:
    variables = build(activities=[SIGNUP])["dynamic_variables"]
    for name in (
        "lead_id",
        "site_uuid",
        "lead_first_name",
        "lead_full_name",
        "lead_role",
        "agent_name",
        "is_hot_lead",
        "is_buyer",
        "is_seller",
        "has_viewed_properties",
        "property_interest_summary",
        "last_property_viewed",
        "lead_source",
        "city",
    ):
        assert name in variables
    assert variables["lead_id"] == LEAD_ID and variables["site_uuid"] == SITE
    assert variables["lead_first_name"] == "Jack"
    assert variables["has_viewed_properties"] is False
    assert variables["last_property_viewed"] == ""  # never None: ElevenLabs fails on missing
    assert variables["last_contact_at"] == ""


def test_changed_fields_and_materially_changed() -> None:
    activities = [SIGNUP, view("123 Main St", "2025-03-01T10:00:00Z")]
    first = build(activities=activities)
    assert materially_changed(None, first) is True
    # Only time moved: the hot flag flips, which is not a reason to call again.
    fresh = make_lead(created="2025-03-01T19:30:00Z")
    hot = build(lead=fresh, activities=activities)
    cooled = build(lead=fresh, activities=activities, now=NOW + timedelta(hours=5), event_id="e2")
    assert hot["strategy"]["is_hot_lead"] is True and cooled["strategy"]["is_hot_lead"] is False
    assert materially_changed(hot, cooled) is False
    # Re-viewing the same place reorders nothing material.
    again = build(
        activities=[*activities, view("123 Main St", "2025-03-01T15:00:00Z")], event_id="evt-3"
    )
    assert materially_changed(first, again) is False
    new_phone = build(lead=make_lead(phone="+12125551234"), activities=activities, event_id="evt-4")
    assert changed_fields(first, new_phone) == ["lead.phone"]
    new_email = build(lead=make_lead(email="jack@new.com"), activities=activities, event_id="evt-5")
    assert changed_fields(first, new_email) == ["lead.email"]
    new_view = build(
        activities=[*activities, view("7 Pali Hwy", "2025-03-01T16:00:00Z")], event_id="evt-6"
    )
    assert changed_fields(first, new_view) == ["property_interests"]
    opted_out = build(activities=activities, do_not_call=True, event_id="evt-7")
    assert changed_fields(first, opted_out) == ["eligible"]
    new_role = build(lead=make_lead(role="Seller"), activities=activities, event_id="evt-8")
    assert changed_fields(first, new_role) == ["lead.role"]
    assert materially_changed({"schema": "something.v0"}, first) is True


def test_previous_context_links_and_replays_are_identical() -> None:
    first = build()
    second = build(lead=make_lead(phone="+12125551234"), previous_context=first, event_id="evt-2")
    assert second["supersedes_event_id"] == "evt-1"
    assert second["changed_fields"] == ["lead.phone"]
    # A replay after a crash sees its own output as the previous context: same event.
    replay = build(lead=make_lead(phone="+12125551234"), previous_context=second, event_id="evt-2")
    assert replay == second


def test_deterministic_for_the_same_inputs() -> None:
    activities = [SIGNUP, view("123 Main St", "2025-03-01T10:00:00Z", price=1)]
    assert build(activities=activities) == build(activities=list(reversed(activities)))


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        build(now=datetime(2025, 3, 1, 20, 0))
    with pytest.raises(ValueError, match="lead_id"):
        build(lead_id="")


# -- property: variables are always flat scalars ---------------------------------------

_LEAD_KEYS = [
    "first_name",
    "last_name",
    "email",
    "phone",
    "phone2",
    "phone_raw",
    "role",
    "source",
    "agent_name",
    "agent_email",
    "city",
    "state",
    "zip",
    "street_address",
    "created",
    "tcpa_consent",
    "system__evil",
]
_json = json_values(text=40, keys=8, items=3, entries=3, leaves=8, floats="any")
_leads = st.dictionaries(st.sampled_from(_LEAD_KEYS) | st.text(max_size=10), _json, max_size=12)
_activities = st.lists(
    st.fixed_dictionaries(
        {},
        optional={
            "type": st.sampled_from(["property_viewed", "visited", "called", "opted_out"]) | _json,
            "source": _json,
            "description": _json,
            "created": st.datetimes(timezones=st.just(UTC)).map(datetime.isoformat) | _json,
            "property": st.dictionaries(
                st.sampled_from(["address", "city", "price", "beds", "baths", "full_baths", "mls"]),
                _json,
            )
            | _json,
            "user": _json,
        },
    )
    | _json,
    max_size=6,
)


@settings(max_examples=300, deadline=None)
@given(lead=_leads, activities=_activities, do_not_call=st.booleans())
def test_dynamic_variables_are_always_flat_scalars(
    lead: dict[str, Any], activities: list[Any], do_not_call: bool
) -> None:
    context = build(lead=lead, activities=activities, do_not_call=do_not_call)
    variables = context["dynamic_variables"]
    assert variables["lead_id"] == LEAD_ID
    assert variables["site_uuid"] == SITE
    for name, value in variables.items():
        assert isinstance(name, str) and not name.startswith("system__")
        assert type(value) in (str, int, float, bool), (name, value)
        if isinstance(value, str):
            assert len(value) <= 500
            value.encode("utf-8")  # no lone surrogates
    assert isinstance(context["eligible"], bool)
    assert context["eligible"] is (context["reason"] is None)
    assert context["reason"] is None or context["reason"] in INELIGIBLE_REASONS
    json.dumps(context, allow_nan=False)


_PHONE_REASONS = {"invalid_phone", "no_phone", "unknown_timezone", "no_calling_window"}


@settings(max_examples=200, deadline=None)
@given(lead=_leads, activities=_activities, do_not_call=st.booleans())
def test_reasons_follow_the_table_and_phone_rules_exclude_each_other(
    lead: dict[str, Any], activities: list[Any], do_not_call: bool
) -> None:
    context = build(lead=lead, activities=activities, do_not_call=do_not_call)
    reasons = context["reasons"]
    assert reasons == [name for name in INELIGIBLE_REASONS if name in reasons]
    phone_reasons = set(reasons) & _PHONE_REASONS
    if context["lead"]["phone"] is None:
        assert phone_reasons in ({"invalid_phone"}, {"no_phone"})
    else:
        assert len(phone_reasons) <= 1
