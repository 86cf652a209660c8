"""A lead's calls and opt-outs from every source reach its call context (no broker)."""

from __future__ import annotations

import json
from typing import Any

from realgeeks_sync.agents.normalize_leads import LeadTables, plan_realgeeks
from realgeeks_sync.agents.track_lead_calls import decode_record, plan_lead_calls
from realgeeks_sync.app.domain import lead_calls
from realgeeks_sync.app.domain.call_outcomes import OutcomeMapping
from realgeeks_sync.app.domain.dialing.optouts import optout_event
from realgeeks_sync.app.domain.events import call_outcome_event
from realgeeks_sync.app.domain.matching import MatcherConfig
from realgeeks_sync.tables.identity import IdentityIndex

SITE = "5ead6dd1-2cb9-4f80-80fc-5716b05c90ba"
PHONE = "+18088172382"


def new_lead(lead: str = "lead1") -> LeadTables:
    tables = LeadTables(index=IdentityIndex({}, {}), users={}, calls={})
    body = {"site_uuid": SITE, "id": lead, "first_name": "Ana", "phone": PHONE, "source": "Web"}
    envelope = {
        "source": "realgeeks",
        "action": "created",
        "message_id": f"m-{lead}",
        "timestamp": None,
        "received_at": "2026-11-27T10:00:00Z",
        "body": json.dumps(body),
    }
    outs = plan_realgeeks(envelope, tables, config=MatcherConfig(), mapping=OutcomeMapping())
    assert [o.value["eligible"] for o in outs if o.topic == "calls_context"] == [True]
    return tables


def apply(tables: LeadTables, kind: str, record: dict[str, Any]) -> list[Any]:
    return plan_lead_calls(decode_record(json.dumps(record).encode(), kind), tables)


def contexts(outs: list[Any]) -> list[dict[str, Any]]:
    return [o.value for o in outs if o.topic == "calls_context"]


def test_an_opt_out_from_elevenlabs_makes_the_context_ineligible() -> None:
    tables = new_lead()
    event = optout_event(
        site_uuid=SITE,
        subject="lead",
        value="lead1",
        source="elevenlabs",
        at="2026-11-27T11:00:00+00:00",
        reason="asked_during_call",
        by="conv1",
    )
    outs = apply(tables, "optout", event)
    (context,) = contexts(outs)
    assert (context["eligible"], context["reason"], context["trigger"]) == (
        False,
        "opted_out",
        "optout",
    )
    assert context["opt_out"] == {
        "subject": "lead",
        "source": "elevenlabs",
        "reason": "asked_during_call",
        "at": "2026-11-27T11:00:00+00:00",
    }
    # The directory of inbound calls hears of it with the new context.
    assert [o.value["eligible"] for o in outs if o.topic == "callers"] == [False]
    # Once more (another source of the same fact): nothing new to say.
    again = optout_event(
        site_uuid=SITE, subject="lead", value="lead1", source="dialer", at="2026-11-27T11:01:00"
    )
    assert contexts(apply(tables, "optout", again)) == []


def test_an_operators_number_opt_out_and_opt_in() -> None:
    tables = new_lead()
    stop = optout_event(
        site_uuid=SITE, subject="phone", value=PHONE, source="operator", at="2026-11-27T12:00"
    )
    (context,) = contexts(apply(tables, "optout", stop))
    assert context["eligible"] is False and context["reason"] == "opted_out"
    lift = optout_event(
        site_uuid=SITE,
        subject="phone",
        value=PHONE,
        source="operator",
        action="opt_in",
        at="2026-11-27T13:00",
    )
    (context,) = contexts(apply(tables, "optout", lift))
    assert context["eligible"] is True


def outcome(conversation: str, result: str, at: str, direction: str = "outbound") -> Any:
    return call_outcome_event(
        site_uuid=SITE,
        lead_id="lead1",
        conversation_id=conversation,
        direction=direction,
        outcome=result,
        opted_out=False,
        kinds=["called"],
        occurred_at=at,
    )


def test_call_outcomes_are_counted_once_and_reach_the_context() -> None:
    tables = new_lead()
    outs = apply(tables, "call", outcome("conv1", "no-answer", "2026-11-27T11:00:00+00:00"))
    (context,) = contexts(outs)
    assert context["trigger"] == "call_outcome"
    assert context["previous_interactions"]["ai_calls"]["count"] == 1
    assert context["dynamic_variables"]["previous_ai_calls"] == 1
    assert context["dynamic_variables"]["previous_ai_conversations"] == 0
    assert context["dynamic_variables"]["last_ai_call_outcome"] == "no-answer"
    assert apply(tables, "call", outcome("conv1", "no-answer", "2026-11-27T11:00")) == []
    outs = apply(
        tables, "call", outcome("conv2", "completed", "2026-11-27T15:00:00+00:00", "inbound")
    )
    (context,) = contexts(outs)
    calls = context["previous_interactions"]["ai_calls"]
    assert (calls["count"], calls["conversations"], calls["inbound"]) == (2, 1, 1)
    assert calls["by_outcome"] == {"no-answer": 1, "completed": 1}
    assert context["dynamic_variables"]["last_ai_call_at"] == "2026-11-27T15:00:00+00:00"
    # The directory of inbound calls learns when the AI last spoke with the lead.
    (caller,) = [o.value for o in outs if o.topic == "callers"]
    assert caller["last_ai_call_at"] == "2026-11-27T15:00:00+00:00"
    assert (
        "Spoke with our AI before (2 calls, last: completed)"
        in (context["dynamic_variables"]["call_talking_points"])
    )


def test_a_leads_state_keeps_counts_not_a_list_of_calls() -> None:
    # Earlier versions also kept the recent calls, which nothing read: the next call drops them.
    before = {"calls": [{"conversation_id": "c0"}], "count": 1, "by_outcome": {"completed": 1}}
    event = outcome("conv1", "no-answer", "2026-11-27T11:00:00+00:00", "inbound")
    state = lead_calls.add_call(before, event)
    assert state is not None and "calls" not in state and "calls" in before
    assert (state["count"], state["inbound"], state["seen"]) == (2, 1, ["conv1"])
    assert state["by_outcome"] == {"completed": 1, "no-answer": 1}


def test_events_for_leads_without_a_context_only_fold() -> None:
    tables = LeadTables(index=IdentityIndex({}, {}), users={}, calls={})
    event = optout_event(site_uuid=SITE, subject="lead", value="ghost", source="operator", at="t")
    assert apply(tables, "optout", event) == []
    assert tables.calls[lead_calls.key(SITE, "lead", "ghost")]["optout"]["action"] == "opt_out"


def test_urgency_and_timeframe_reach_the_context_and_its_variables() -> None:
    from datetime import UTC, datetime

    from realgeeks_sync.app.domain.call_context import build_call_context
    from realgeeks_sync.app.domain.callers import neutral_variables

    context = build_call_context(
        site_uuid=SITE,
        lead_id="l",
        lead={"first_name": "Ana", "phone": PHONE, "urgency": " Hot ", "timeframe": "1-3 months"},
        activities=[],
        do_not_call=False,
        now=datetime(2026, 11, 27, 20, tzinfo=UTC),
        event_id="e",
    )
    assert context["strategy"]["is_hot_lead"] is True
    assert context["strategy"]["hot_reasons"] == ["urgency"]
    variables = context["dynamic_variables"]
    assert (variables["lead_urgency"], variables["lead_timeframe"]) == ("Hot", "1-3 months")
    assert variables["is_hot_lead"] is True
    assert "Their timeframe: 1-3 months" in variables["call_talking_points"]
    # Every variable is in the neutral set an inbound call from a stranger gets.
    assert set(variables) | {"call_attempt_id"} == set(neutral_variables())
    cold = build_call_context(
        site_uuid=SITE,
        lead_id="l",
        lead={"phone": PHONE, "urgency": "Cold"},
        activities=[],
        do_not_call=False,
        now=datetime(2026, 11, 27, 20, tzinfo=UTC),
        event_id="e",
    )
    assert cold["strategy"]["is_hot_lead"] is False and cold["opt_out"] is None
