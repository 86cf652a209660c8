"""The agents' pure decisions: Real Geeks plans, call outcomes, the dialer, dead letters,
backfill rows and replay filters (no broker, dict tables)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ops.testkit.fakes.elevenlabs import build_post_call_payload
from realgeeks_sync.agents.map_call_outcomes import UnplacedCallError, plan_outputs
from realgeeks_sync.agents.normalize_leads import LeadTables, plan_realgeeks
from realgeeks_sync.agents.processing import Output
from realgeeks_sync.app.core.errors import PoisonMessageError
from realgeeks_sync.app.domain.call_outcomes import OutcomeMapping
from realgeeks_sync.app.domain.deadletters import deadletter_record, decode_original
from realgeeks_sync.app.domain.matching import MatcherConfig
from realgeeks_sync.app.operations.backfill import BackfillError, row_to_body
from realgeeks_sync.app.operations.dlq import matches, parse_since
from realgeeks_sync.tables.identity import IdentityIndex

MAPPING = OutcomeMapping()
CONFIG = MatcherConfig()
SITE = "5ead6dd1-2cb9-4f80-80fc-5716b05c90ba"


def tables() -> LeadTables:
    return LeadTables(index=IdentityIndex({}, {}), users={})


def envelope(body: dict[str, Any], action: str, message_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "source": "realgeeks",
        "action": action,
        "message_id": message_id,
        "timestamp": None,
        "received_at": "2026-11-27T10:00:00Z",
        "headers": {},
        "body": json.dumps(body),
        **extra,
    }


def test_created_lead_gives_lead_activity_and_context_outputs() -> None:
    t = tables()
    body = {
        "site_uuid": SITE,
        "id": "A-1",
        "email": "Jack@Mail.com",
        "phone": "808-817-2382",
        "first_name": "Jack",
        "source": "Web",
        "role": "Buyer",
        "activities": [
            {
                "type": "property_viewed",
                "source": "Web",
                "description": "1 Main",
                "created": "2026-11-27T09:00:00.123456789Z",
            }
        ],
    }
    outs = plan_realgeeks(envelope(body, "created", "m1"), t, config=CONFIG, mapping=MAPPING)
    topics = [o.topic for o in outs]
    assert topics == ["leads", "activities", "calls_context", "callers"]
    lead = outs[0].value
    assert lead["lead_id"] == "a1" and lead["lead"]["email"] == "jack@mail.com"
    assert outs[1].value["created"].startswith("2026-11-27T09:00:00.123456")
    assert outs[2].value["trigger"] == "created" and outs[2].value["eligible"] is True
    # The directory of inbound calls learns the lead's numbers and call variables.
    caller = outs[3].value
    assert outs[3].key == f"{SITE}:a1" and caller["phones"] == ["+18088172382"]
    assert caller["dynamic_variables"] == outs[2].value["dynamic_variables"]
    # The same message again yields identical outputs (replay-safe event ids and decision).
    again = plan_realgeeks(envelope(body, "created", "m1"), t, config=CONFIG, mapping=MAPPING)
    assert again[0].value["event_id"] == lead["event_id"]
    assert again[0].value["op"] == lead["op"]


def test_own_writebacks_are_marked_and_kept_from_the_ai_path() -> None:
    t = tables()
    created = {"site_uuid": SITE, "id": "b2", "email": "b@x.com", "source": "Web"}
    plan_realgeeks(envelope(created, "created", "m1"), t, config=CONFIG, mapping=MAPPING)
    echoed = {
        "site_uuid": SITE,
        "id": "b2",
        "activities": [{"type": "called", "source": MAPPING.source, "description": "AI call"}],
    }
    outs = plan_realgeeks(
        envelope(echoed, "activity_added", "m2"), t, config=CONFIG, mapping=MAPPING
    )
    assert outs[0].value["own_writeback"] is True
    assert t.history(SITE, "b2") == []


def test_unknown_actions_are_ignored_and_users_recorded() -> None:
    t = tables()
    assert (
        plan_realgeeks(
            envelope({"site_uuid": SITE}, "lead_merged", "m"), t, config=CONFIG, mapping=MAPPING
        )
        == []
    )
    plan_realgeeks(
        envelope({"site_uuid": SITE, "id": "u1", "name": "Ben"}, "user_updated", "u"),
        t,
        config=CONFIG,
        mapping=MAPPING,
    )
    assert t.users[f"{SITE}|u1"]["name"] == "Ben"
    plan_realgeeks(
        envelope({"site_uuid": SITE, "id": "u1"}, "user_deleted", "d"),
        t,
        config=CONFIG,
        mapping=MAPPING,
    )
    assert t.users[f"{SITE}|u1"] == {"deleted": True}


@pytest.mark.parametrize(
    "body,action",
    [
        ({"id": "x"}, "created"),
        ({"site_uuid": SITE, "activities": 5}, "activity_added"),
        ({"site_uuid": SITE}, "user_updated"),
    ],
)
def test_poison_bodies_raise_the_dead_letter_error(body: dict[str, Any], action: str) -> None:
    with pytest.raises((PoisonMessageError, ValueError)):
        plan_realgeeks(envelope(body, action, "m"), tables(), config=CONFIG, mapping=MAPPING)


def test_backfill_context_is_marked_so_the_dialer_skips_it() -> None:
    outs = plan_realgeeks(
        envelope(
            {"site_uuid": SITE, "id": "c3", "phone": "8088172382"},
            "created",
            "m",
            source="backfill",
        ),
        tables(),
        config=CONFIG,
        mapping=MAPPING,
    )
    (context,) = [o for o in outs if o.topic == "calls_context"]
    assert context.value["trigger"] == "backfill"


def test_call_outcome_placed_by_dynamic_variables_or_recorded_conversation() -> None:
    payload = build_post_call_payload(
        conversation_id="conv1",
        outcome="success",
        dynamic_variables={"lead_id": "l1", "site_uuid": SITE},
    )
    outs = plan_outputs(payload, MAPPING, {}, "2026-11-27T10:00:00Z")
    assert [o.topic for o in outs] == [
        "activities",
        "activities_outbound",
        "call_outcomes",
        "dialer_events",
    ]
    assert outs[0].value["direction"] == "outbound" and outs[1].value["lead_id"] == "l1"
    failure = build_post_call_payload(conversation_id="conv2", outcome="busy")
    outs = plan_outputs(failure, MAPPING, {"conv2": {"site_uuid": SITE, "lead_id": "l2"}}, "t")
    assert outs[1].value["activity"]["type"] == "note"
    with pytest.raises(UnplacedCallError):
        plan_outputs(
            build_post_call_payload(conversation_id="conv3", outcome="busy"), MAPPING, {}, "t"
        )


def test_opt_out_goes_to_the_do_not_call_topic() -> None:
    payload = build_post_call_payload(
        conversation_id="c",
        outcome="success",
        opt_out_requested=True,
        dynamic_variables={"lead_id": "l1", "site_uuid": SITE},
    )
    outs = plan_outputs(payload, MAPPING, {}, "t")
    (optout,) = [o for o in outs if o.topic == "optouts"]
    assert optout.key == f"{SITE}:l1"
    assert optout.value["schema"] == "optout.v1"
    assert (optout.value["subject"], optout.value["lead_id"]) == ("lead", "l1")
    assert (optout.value["action"], optout.value["source"]) == ("opt_out", "elevenlabs")
    assert optout.value["by"] == "c"
    assert "opted_out" in [
        o.value["activity"]["type"] for o in outs if o.topic == "activities_outbound"
    ]
    # The dialer hears how the call ended (its line is free; no redial after an opt-out).
    (ended,) = [o for o in outs if o.topic == "dialer_events"]
    assert ended.value["kind"] == "outcome" and ended.value["opted_out"] is True


def test_call_outcome_names_the_dialers_attempt_for_the_dialer() -> None:
    payload = build_post_call_payload(
        conversation_id="c9",
        outcome="no-answer",
        dynamic_variables={"lead_id": "l1", "site_uuid": SITE, "call_attempt_id": "att1"},
    )
    recorded = {"c9": {"site_uuid": SITE, "lead_id": "l1", "attempt_id": "att1"}}
    (ended,) = [
        o for o in plan_outputs(payload, MAPPING, recorded, "t") if o.topic == "dialer_events"
    ]
    assert ended.key == f"{SITE}:l1"
    assert ended.value == {
        "kind": "outcome",
        "site_uuid": SITE,
        "lead_id": "l1",
        "conversation_id": "c9",
        "attempt_id": "att1",
        "outcome": "no-answer",
        "opted_out": False,
    }


def test_opted_out_activity_opts_out_the_lead_and_its_numbers() -> None:
    lead_tables = tables()
    body = {
        "site_uuid": SITE,
        "id": "lead-9",
        "first_name": "Oz",
        "phone": "808-817-2382",
        "phone2": "+1 212 555 0123",
        "source": "Website",
    }
    plan_realgeeks(envelope(body, "created", "m1"), lead_tables, config=CONFIG, mapping=MAPPING)
    stop = {
        "site_uuid": SITE,
        "id": "lead-9",
        "activities": [
            {
                "type": "opted_out",
                "source": "LeadManager",
                "description": "stop",
                "created": "2026-02-01T07:20:00Z",
            }
        ],
    }
    outs = plan_realgeeks(
        envelope(stop, "activity_added", "m2"), lead_tables, config=CONFIG, mapping=MAPPING
    )
    optouts = [o.value for o in outs if o.topic == "optouts"]
    assert {
        (e["subject"], e["lead_id"] if e["subject"] == "lead" else e["phone"]) for e in optouts
    } == {
        ("lead", "lead9"),
        ("phone", "+18088172382"),
        ("phone", "+12125550123"),
    }
    assert {e["source"] for e in optouts} == {"realgeeks"}
    assert {e["at"] for e in optouts} == {"2026-02-01T07:20:00Z"}


OZ = {
    "site_uuid": SITE,
    "id": "Lead-9",
    "first_name": "Oz",
    "phone": "808-817-2382",
    "phone2": "+1 212 555 0123",
    "source": "Website",
}
STOP = {
    "type": "Opted_Out",  # Real Geeks' case is not ours to rely on
    "source": "LeadManager",
    "description": "stop",
    "created": "2026-02-01T07:20:00Z",
}


def optout_records(outs: list[Output]) -> dict[str, dict[str, Any]]:
    """The optouts outputs by key, each event id checked and left out (a hash of the rest)."""
    found: dict[str, dict[str, Any]] = {}
    for out in outs:
        if out.topic == "optouts":
            event = dict(out.value)
            assert re.fullmatch(r"[0-9a-f]{32}", event.pop("event_id"))
            assert out.key not in found
            found[out.key] = event
    return found


def realgeeks_optouts(lead: str, reason: str, at: str) -> dict[str, dict[str, Any]]:
    """The opt-outs Real Geeks' word gives: the lead and each of its E.164 numbers."""
    common = {"schema": "optout.v1", "site_uuid": SITE, "lead_id": lead, "action": "opt_out"}
    common |= {"source": "realgeeks", "reason": reason, "by": None, "at": at}
    return {
        f"{SITE}:{lead}": {**common, "subject": "lead", "phone": None},
        f"{SITE}:+18088172382": {**common, "subject": "phone", "phone": "+18088172382"},
        f"{SITE}:+12125550123": {**common, "subject": "phone", "phone": "+12125550123"},
    }


@pytest.mark.parametrize("action", ["created", "updated"])
def test_opted_out_activity_inside_a_lead_body_opts_out_the_lead_and_its_numbers(
    action: str,
) -> None:
    lead_tables = tables()
    if action == "updated":
        plan_realgeeks(envelope(OZ, "created", "m1"), lead_tables, config=CONFIG, mapping=MAPPING)
    body = {**OZ, "activities": [STOP]}
    outs = plan_realgeeks(envelope(body, action, "m2"), lead_tables, config=CONFIG, mapping=MAPPING)
    # At the activity's own time, not the webhook's: the opt-out came first.
    assert optout_records(outs) == realgeeks_optouts(
        "lead9", "opted_out_activity", "2026-02-01T07:20:00Z"
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [("tcpa_consent", "no"), ("call_consent", False), ("consent", " Revoked "), ("consent", 0)],
)
def test_a_consent_field_saying_no_opts_out_the_lead_and_its_numbers(
    field: str, value: Any
) -> None:
    created = plan_realgeeks(
        envelope({**OZ, field: value}, "created", "m1"), tables(), config=CONFIG, mapping=MAPPING
    )
    assert optout_records(created) == realgeeks_optouts(
        "lead9", "consent_refused", "2026-11-27T10:00:00Z"
    )
    # An update that carries only the refusal still opts out the numbers the lead has.
    lead_tables = tables()
    plan_realgeeks(envelope(OZ, "created", "m1"), lead_tables, config=CONFIG, mapping=MAPPING)
    refusal = {"site_uuid": SITE, "id": "Lead-9", field: value}
    updated = plan_realgeeks(
        envelope(refusal, "updated", "m2"), lead_tables, config=CONFIG, mapping=MAPPING
    )
    assert optout_records(updated) == realgeeks_optouts(
        "lead9", "consent_refused", "2026-11-27T10:00:00Z"
    )


@pytest.mark.parametrize("value", ["maybe", "", None, "unknown", "yes", True, [False]])
@pytest.mark.parametrize("action", ["created", "updated"])
def test_a_consent_field_without_a_clear_no_opts_nobody_out(value: Any, action: str) -> None:
    lead_tables = tables()
    if action == "updated":
        plan_realgeeks(envelope(OZ, "created", "m1"), lead_tables, config=CONFIG, mapping=MAPPING)
    body = {**OZ, "tcpa_consent": value, "activities": [{**STOP, "type": "note"}]}
    outs = plan_realgeeks(envelope(body, action, "m2"), lead_tables, config=CONFIG, mapping=MAPPING)
    assert [o.topic for o in outs if o.topic in ("leads", "activities")] == ["leads", "activities"]
    assert optout_records(outs) == {}


def test_deadletter_keeps_original_bytes() -> None:
    record = deadletter_record(topic="t", key=b"k", value=b"\xff\x00raw", error=ValueError("bad"))
    assert decode_original(record) == b"\xff\x00raw" and record["error_type"] == "ValueError"
    text = deadletter_record(topic="t", key="k", value=b'{"a":1}', error="x", error_type="E")
    assert decode_original(text) == b'{"a":1}' and set(text) >= {
        "topic",
        "key",
        "value",
        "error",
        "error_type",
        "attempts",
        "first_failed_at",
    }


def test_replay_filters() -> None:
    now = datetime(2026, 11, 27, tzinfo=UTC)
    assert parse_since("2d", now) == now - timedelta(days=2)
    record = {
        "topic": "p.realgeeks.activities.outbound",
        "error_type": "PermanentApiError",
        "first_failed_at": "2026-11-26T12:00:00Z",
        "retriable": False,
    }
    assert matches(
        record, topic="realgeeks.activities.outbound", error_type=None, since=None, transient=False
    )
    assert not matches(record, topic=None, error_type=None, since=None, transient=True)
    assert not matches(record, topic=None, error_type=None, since=now, transient=False)


def test_backfill_rows() -> None:
    body = row_to_body({"first_name": "Mary", "email": "m@x.com"}, "site")
    assert body["action"] == "created" and body["site_uuid"] == "site" and body["source"]
    with pytest.raises(BackfillError):
        row_to_body({"first_name": "Mary"}, None)
    with pytest.raises(BackfillError):
        row_to_body({"city": "Kailua"}, "site")
