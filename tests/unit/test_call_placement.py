"""Which lead a call's outcome lands on, once per conversation, and what it writes:
inbound calls, lead updates, reconciliation (no broker, dict tables)."""

from __future__ import annotations

from typing import Any

import pytest

from ops.testkit.fakes.elevenlabs import build_post_call_payload
from realgeeks_sync.agents import map_call_outcomes
from realgeeks_sync.agents.map_call_outcomes import (
    UnknownCallerError,
    UnplacedCallError,
    plan_outputs,
)
from realgeeks_sync.app.domain.call_outcomes import OutcomeMapping, with_activity_types
from realgeeks_sync.app.domain.lead_fields import lead_update_id_for
from realgeeks_sync.app.domain.reconciliation import (
    needs_request,
    request_envelope,
    request_message_id,
    webhook_from_detail,
)

MAPPING = OutcomeMapping()
SITE = "5ead6dd1-2cb9-4f80-80fc-5716b05c90ba"
CALLER = "+18088172382"
AT = "2026-11-27T10:00:00Z"


def inbound(conversation: str, variables: dict[str, Any] | None = None, **kw: Any) -> Any:
    return build_post_call_payload(
        conversation,
        "success",
        direction="inbound",
        to_number=CALLER,
        dynamic_variables=variables or {"lead_id": "", "site_uuid": ""},
        **kw,
    )


def topics(outs: list[Any]) -> list[str]:
    return [o.topic for o in outs]


def test_what_the_agent_collected_is_one_lead_update_record() -> None:
    payload = build_post_call_payload(
        "conv1",
        "success",
        dynamic_variables={"lead_id": "l1", "site_uuid": SITE},
        collected={"timeframe": "3 months", "budget": "$450k", "pre_approved": True},
    )
    outs = plan_outputs(payload, MAPPING, {}, AT)
    (update,) = [o for o in outs if o.topic == "leads_outbound"]
    assert update.key == f"{SITE}:l1"
    assert update.value == {
        "schema": "lead_update.v1",
        "update_id": lead_update_id_for("conv1"),
        "site_uuid": SITE,
        "lead_id": "l1",
        "conversation_id": "conv1",
        "fields": {"timeframe": "3 months"},
        "tags": ["Budget $450k", "Pre-approved"],
    }
    (outcome,) = [o.value for o in outs if o.topic == "call_outcomes"]
    assert (outcome["outcome"], outcome["direction"], outcome["reconciled"]) == (
        "completed",
        "outbound",
        False,
    )


def test_one_outcome_per_conversation_whichever_comes_first() -> None:
    payload = build_post_call_payload(
        "conv2", "success", dynamic_variables={"lead_id": "l1", "site_uuid": SITE}
    )
    outcomes: dict[str, Any] = {}
    first = plan_outputs(payload, MAPPING, {}, AT, outcomes=outcomes, message_id="webhook")
    assert outcomes["conv2"]["placed"] is True
    # The same message again (a replay after a crash) decides the same.
    again = plan_outputs(payload, MAPPING, {}, AT, outcomes=outcomes, message_id="webhook")
    assert [o.value for o in again] == [o.value for o in first]
    # Another message about the same conversation (a reconciliation) writes nothing.
    assert plan_outputs(payload, MAPPING, {}, AT, outcomes=outcomes, message_id="other") == []


def test_an_inbound_call_is_placed_by_what_initiation_answered() -> None:
    echoed = inbound("conv3", {"lead_id": "l1", "site_uuid": SITE})
    outs = plan_outputs(echoed, MAPPING, {}, AT)
    assert "dialer_events" not in topics(outs)  # the dialer did not place this call
    (outcome,) = [o.value for o in outs if o.topic == "call_outcomes"]
    assert outcome["direction"] == "inbound" and outcome["lead_id"] == "l1"
    assert outs[0].value["description"].startswith("Inbound AI call completed.")
    recorded = {"conv4": {"site_uuid": SITE, "lead_id": "l2", "attempt_id": None}}
    outs = plan_outputs(inbound("conv4"), MAPPING, recorded, AT)
    assert {o.value["lead_id"] for o in outs if "lead_id" in o.value} == {"l2"}


def test_an_inbound_call_is_placed_by_the_callers_number() -> None:
    asked: list[tuple[str, str | None]] = []

    def find_caller(number: str, agent: str | None) -> tuple[str, str] | None:
        asked.append((number, agent))
        return (SITE, "l3") if number == CALLER else None

    outs = plan_outputs(
        inbound("conv5", agent_id="agent_1"), MAPPING, {}, AT, find_caller=find_caller
    )
    assert asked == [(CALLER, "agent_1")]
    assert {o.value["lead_id"] for o in outs if "lead_id" in o.value} == {"l3"}


def test_a_sites_own_activity_types_apply_however_its_call_was_placed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    own = with_activity_types(MAPPING, {"called": "ai_call"})
    asked: list[str] = []

    def mapping_for(site: str) -> OutcomeMapping:
        asked.append(site)
        return own if site == SITE else MAPPING

    def activity_types(outs: list[Any]) -> list[str]:
        return [o.value["activity"]["type"] for o in outs if o.topic == "activities_outbound"]

    # No variables: placed from the conversations table (a call the dialer recorded).
    recorded = {"conv10": {"site_uuid": SITE, "lead_id": "l1", "attempt_id": "a1"}}
    payload = build_post_call_payload("conv10", "success", dynamic_variables={})
    outs = plan_outputs(payload, MAPPING, recorded, AT, mapping_for=mapping_for)
    assert activity_types(outs) == ["ai_call"] and asked == [SITE]
    # ... or from the caller's number (an inbound call initiation did not answer).
    outs = plan_outputs(
        inbound("conv11"), MAPPING, {}, AT, find_caller=lambda _n, _a: (SITE, "l2"),
        mapping_for=mapping_for,
    )  # fmt: skip
    assert activity_types(outs) == ["ai_call"]
    # A site that renames nothing maps its call once.
    mapped: list[str] = []
    real = map_call_outcomes.map_call_event

    def counting(body: Any, mapping: OutcomeMapping) -> Any:
        mapped.append(body["data"]["conversation_id"])
        return real(body, mapping)

    monkeypatch.setattr(map_call_outcomes, "map_call_event", counting)
    other = {"conv12": {"site_uuid": "other-site", "lead_id": "l3", "attempt_id": None}}
    payload = build_post_call_payload("conv12", "success", dynamic_variables={})
    outs = plan_outputs(payload, MAPPING, other, AT, mapping_for=mapping_for)
    assert activity_types(outs) == ["called"] and mapped == ["conv12"]
    plan_outputs(
        build_post_call_payload("conv13", "success", dynamic_variables={}),
        MAPPING,
        {"conv13": {"site_uuid": SITE, "lead_id": "l1"}},
        AT,
        mapping_for=mapping_for,
    )
    assert mapped == ["conv12", "conv13", "conv13"]  # a renaming site: once more


def test_a_national_number_is_read_in_the_default_region_as_at_initiation() -> None:
    asked: list[str] = []

    def find_caller(number: str, _agent: str | None) -> tuple[str, str] | None:
        asked.append(number)
        return (SITE, "l4") if number == CALLER else None

    national = build_post_call_payload(
        "conv9", "success", direction="inbound", to_number="(808) 817-2382",
        dynamic_variables={"lead_id": "", "site_uuid": ""},
    )  # fmt: skip
    outs = plan_outputs(national, MAPPING, {}, AT, find_caller=find_caller, default_region="US")
    assert asked == [CALLER]
    assert {o.value["lead_id"] for o in outs if "lead_id" in o.value} == {"l4"}
    # Without a region such a number is nobody's (RGSYNC_DEFAULT_REGION is always set).
    with pytest.raises(UnknownCallerError):
        plan_outputs(national, MAPPING, {}, AT, find_caller=find_caller)
    assert asked == [CALLER]


def test_an_unknown_caller_is_kept_for_review_not_retried() -> None:
    outcomes: dict[str, Any] = {}
    with pytest.raises(UnknownCallerError) as caught:
        plan_outputs(
            inbound("conv6"),
            MAPPING,
            {},
            AT,
            outcomes=outcomes,
            message_id="m",
            find_caller=lambda _n, _a: None,
        )
    assert caught.value.retriable is False and CALLER not in str(caught.value)
    assert outcomes["conv6"] == {"message_id": "m", "placed": False}
    # An outbound call nobody can place yet (its record may still come) is retriable.
    with pytest.raises(UnplacedCallError) as unplaced:
        plan_outputs(build_post_call_payload("conv7", "busy"), MAPPING, {}, AT)
    assert unplaced.value.retriable is True


def test_a_reconciled_conversation_maps_like_its_webhook() -> None:
    payload = build_post_call_payload(
        "conv8",
        "success",
        dynamic_variables={"lead_id": "l1", "site_uuid": SITE},
        start_time_unix_secs=1_700_000_000,
        call_duration_secs=60,
    )
    detail = {**payload["data"], "has_audio": True, "has_user_audio": True}
    webhook = webhook_from_detail(detail)
    assert webhook["data"] == payload["data"] and webhook["event_timestamp"] == 1_700_000_060
    from_webhook = plan_outputs(payload, MAPPING, {}, AT)
    reconciled = plan_outputs(webhook, MAPPING, {}, AT, reconciled=True)
    ids = [o.value.get("activity_id") for o in from_webhook if o.topic == "activities_outbound"]
    again = [o.value.get("activity_id") for o in reconciled if o.topic == "activities_outbound"]
    assert ids == again  # the outbox would post them once even without the outcome table
    (outcome,) = [o.value for o in reconciled if o.topic == "call_outcomes"]
    assert outcome["reconciled"] is True


def test_which_conversations_reconciliation_requests() -> None:
    done = {
        "conversation_id": "c",
        "status": "done",
        "start_time_unix_secs": 1000,
        "call_duration_secs": 60,
    }
    assert needs_request(done, now=1000 + 60 + 120, grace_s=120) == "c"
    assert needs_request(done, now=1000 + 60 + 119, grace_s=120) is None  # webhook's turn
    assert needs_request({**done, "status": "processing"}, now=10**10, grace_s=0) is None
    assert needs_request({**done, "status": "failed"}, now=10**10, grace_s=0) == "c"
    assert needs_request({"status": "done"}, now=10**10, grace_s=0) is None
    envelope = request_envelope("c", "agent_1", AT)
    assert envelope["message_id"] == request_message_id("c") == "reconcile:c"
    assert envelope["source"] == "reconcile"
