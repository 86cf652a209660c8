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


def test_a_call_outcome_is_counted_once_on_the_lead() -> None:
    tables = new_lead()
    event = call_outcome_event(
        site_uuid=SITE,
        lead_id="lead1",
        conversation_id="conv1",
        direction="outbound",
        outcome="completed",
        opted_out=False,
        kinds=["called"],
        occurred_at="2026-11-27T11:00:00+00:00",
    )
    apply(tables, "call", event)
    state = tables.calls[lead_calls.key(SITE, "lead", "lead1")]
    assert lead_calls.summary(state)["count"] == 1
    assert apply(tables, "call", event) == []  # the same conversation again
    assert lead_calls.summary(tables.calls[lead_calls.key(SITE, "lead", "lead1")])["count"] == 1


def test_events_for_leads_without_a_context_only_fold() -> None:
    tables = LeadTables(index=IdentityIndex({}, {}), users={}, calls={})
    event = optout_event(site_uuid=SITE, subject="lead", value="ghost", source="operator", at="t")
    assert apply(tables, "optout", event) == []
    assert tables.calls[lead_calls.key(SITE, "lead", "ghost")]["optout"]["action"] == "opt_out"
