"""The two ways an inbound call's outcome finds its lead when the post-call webhook echoes
no ``lead_id``/``site_uuid``, and the call context re-emitted after AI calls, end to end
on a real broker with the fake Real Geeks and ElevenLabs servers (issue 15, items 3 and 5).

test_conversations.py's inbound calls echo the pre-call answer's ``lead_id`` and
``site_uuid``, which place the outcome before anything else is tried; here they are left
out, so only the caller's number (item 3, first way) or the conversation id recorded at
initiation (second way) can place it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from ops.testkit.dialer import NUMBERS, callable_number, dialer_env
from ops.testkit.fakes.elevenlabs import FakeElevenLabs
from ops.testkit.fakes.realgeeks import FakeRealGeeks
from ops.testkit.support import Worker, drain, unique
from tests.integration.helpers import outputs, send_elevenlabs, send_realgeeks
from tests.integration.test_call_loop import wait_for
from tests.integration.test_conversations import (
    HOOK,
    inbound_env,
    known_to_the_directory,
    new_lead,
    with_initiation,
)

pytestmark = pytest.mark.integration

PLACING_VARIABLES = ("lead_id", "site_uuid")


def without_lead(variables: dict[str, Any]) -> dict[str, Any]:
    """The pre-call answer's variables minus the two that would place the call by themselves."""
    return {k: v for k, v in variables.items() if k not in PLACING_VARIABLES}


def echoed(payload: dict[str, Any]) -> dict[str, Any]:
    """The dynamic variables a post-call webhook body echoes (the dict itself, to edit)."""
    variables: dict[str, Any] = payload["data"]["conversation_initiation_client_data"][
        "dynamic_variables"
    ]
    return variables


async def conversation_recorded(kafka_bootstrap: str, worker: Worker, conversation: str) -> None:
    """Wait until record_conversations has the conversation in its table (its changelog
    record): a real call lasts longer than that, a test's post-call webhook need not."""
    app = worker.env["RGSYNC_APP_ID"]
    topic = f"{app}-{app}-conversations-changelog"  # tables/catalog.py's naming

    def has_it(msgs: list[Any]) -> bool:
        return any(m.key() and json.loads(m.key()) == conversation for m in msgs)

    found = await asyncio.to_thread(drain, kafka_bootstrap, topic, timeout=45, until=has_it)
    assert has_it(found), "the pre-call webhook's conversation was never recorded"


async def test_an_inbound_outcome_without_lead_variables_is_placed_by_the_callers_number(
    start_worker: Callable[..., Worker], kafka_bootstrap: str
) -> None:
    """(a) a known caller: placed by the number, once; (c) an unknown caller: kept for
    review, on no lead."""
    async with FakeRealGeeks() as rg, FakeElevenLabs() as el:
        w = await asyncio.to_thread(start_worker, **inbound_env(rg, el))
        site, phone = unique("site"), NUMBERS[4]
        body = new_lead(site, phone)
        assert await asyncio.to_thread(send_realgeeks, w, body, action="created") == 200
        with_initiation(el, w)
        await known_to_the_directory(el, phone, body["id"])
        # No conversation id in the pre-call request (the API notes mark it unverified):
        # nothing is recorded, so the caller's number is the only way to the lead.
        call = await el.inbound_call(phone, agent_id="agent_1")
        assert call.accepted and call.dynamic_variables["lead_id"] == body["id"]
        variables = without_lead(call.dynamic_variables)
        delivery = await el.send_post_call(
            f"{w.url}{HOOK}",
            "el-secret",
            call.conversation_id,
            "success",
            dynamic_variables=variables,
            transcript_summary="Called back about the Kailua listing.",
        )
        assert delivery.status == 200
        assert not set(PLACING_VARIABLES) & set(echoed(delivery.payload))
        assert delivery.payload["data"]["metadata"]["phone_call"]["external_number"] == phone
        # ElevenLabs' retry of the same webhook writes nothing more.
        again = await el.send_post_call(
            f"{w.url}{HOOK}",
            "el-secret",
            call.conversation_id,
            "success",
            dynamic_variables=variables,
            transcript_summary="Called back about the Kailua listing.",
            timestamp=delivery.payload["event_timestamp"],
        )
        assert again.status == 200

        # (c) A number no lead has, its webhook likewise without lead variables.
        stranger = await el.inbound_call(NUMBERS[5], agent_id="agent_1")
        assert stranger.accepted and stranger.dynamic_variables["lead_id"] == ""
        unknown = await el.send_post_call(
            f"{w.url}{HOOK}",
            "el-secret",
            stranger.conversation_id,
            "success",
            dynamic_variables=without_lead(stranger.dynamic_variables),
        )
        assert unknown.status == 200

        await wait_for(lambda: rg.activities.get((site, body["id"])))
        (outcome,) = await asyncio.to_thread(
            outputs,
            kafka_bootstrap,
            w,
            "sync.call-outcomes",
            count=1,
            match=lambda r: r["conversation_id"] == call.conversation_id,
        )
        assert (outcome["site_uuid"], outcome["lead_id"]) == (site, body["id"])
        assert outcome["direction"] == "inbound" and outcome["outcome"] == "completed"
        dead = await asyncio.to_thread(
            outputs,
            kafka_bootstrap,
            w,
            "sync.deadletter",
            count=1,
            match=lambda r: r["error_type"] == "UnknownCallerError",
        )
        assert dead, "the unknown caller's outcome was not kept for review"
        assert stranger.conversation_id in dead[0]["error"] and dead[0]["retriable"] is False
        await asyncio.sleep(3)  # room for a wrong second POST to show up
        (activity,) = rg.all_activities()  # one, on the caller's lead; none for the stranger
        assert rg.activities[(site, body["id"])] == [activity]
        assert activity["description"].startswith("Inbound AI call completed.")
        assert "Called back about the Kailua listing." in activity["description"]
        # The known caller's call was placed, not dead-lettered.
        assert all(call.conversation_id not in d["error"] for d in dead)


async def test_an_inbound_outcome_without_the_callers_number_is_placed_by_its_conversation(
    start_worker: Callable[..., Worker], kafka_bootstrap: str
) -> None:
    """(b) the pre-call request named the conversation; the post-call webhook has neither
    the lead's variables nor the caller's number."""
    async with FakeRealGeeks() as rg, FakeElevenLabs() as el:
        w = await asyncio.to_thread(start_worker, **inbound_env(rg, el))
        site, phone = unique("site"), NUMBERS[6]
        body = new_lead(site, phone)
        assert await asyncio.to_thread(send_realgeeks, w, body, action="created") == 200
        with_initiation(el, w)
        await known_to_the_directory(el, phone, body["id"])
        call = await el.inbound_call(phone, agent_id="agent_1", with_conversation_id=True)
        assert call.accepted and call.dynamic_variables["lead_id"] == body["id"]
        await conversation_recorded(kafka_bootstrap, w, call.conversation_id)
        payload = el.finish_call(
            call.conversation_id,
            "success",
            dynamic_variables=without_lead(call.dynamic_variables),
            transcript_summary="Asked about open houses.",
        )
        # A withheld caller id: ElevenLabs has no number to give.
        del payload["data"]["metadata"]["phone_call"]["external_number"]
        del echoed(payload)["system__caller_id"]
        assert payload["data"]["metadata"]["phone_call"]["direction"] == "inbound"
        assert not set(PLACING_VARIABLES) & set(echoed(payload))
        assert phone not in json.dumps(payload)
        status = await asyncio.to_thread(send_elevenlabs, f"{w.url}{HOOK}", payload)
        assert status == 200

        await wait_for(lambda: rg.activities.get((site, body["id"])))
        (outcome,) = await asyncio.to_thread(
            outputs,
            kafka_bootstrap,
            w,
            "sync.call-outcomes",
            count=1,
            match=lambda r: r["conversation_id"] == call.conversation_id,
        )
        assert (outcome["site_uuid"], outcome["lead_id"]) == (site, body["id"])
        assert outcome["direction"] == "inbound"
        await asyncio.sleep(3)  # room for a wrong second POST to show up
        (activity,) = rg.all_activities()
        assert rg.activities[(site, body["id"])] == [activity]
        assert activity["description"].startswith("Inbound AI call completed.")
        assert "Asked about open houses." in activity["description"]


def contexts_of(
    kafka_bootstrap: str,
    worker: Worker,
    lead_id: str,
    until: Callable[[list[dict[str, Any]]], bool],
) -> list[dict[str, Any]]:
    """The lead's call_context.v1 records in the order written (a lead's records share a
    partition), read until ``until`` accepts them or 45 s pass."""
    topic = worker.env["RGSYNC_TOPIC_PREFIX"] + "calls.context"

    def mine(msgs: list[Any]) -> list[dict[str, Any]]:
        values = [json.loads(m.value()) for m in msgs]
        return [v for v in values if v["lead_id"] == lead_id]

    return mine(drain(kafka_bootstrap, topic, timeout=45, until=lambda m: until(mine(m))))


async def test_the_context_counts_ai_calls_and_turns_ineligible_after_an_opt_out_on_a_call(
    start_worker: Callable[..., Worker], kafka_bootstrap: str
) -> None:
    async with FakeRealGeeks() as rg, FakeElevenLabs() as el:
        env = dialer_env(rg, el, RGSYNC_RECONCILE_INTERVAL_S="0")
        w = await asyncio.to_thread(start_worker, **env)
        site, phone = unique("site"), callable_number(datetime.now(UTC), allowed=True)
        body = new_lead(site, phone)
        lead = body["id"]
        assert await asyncio.to_thread(send_realgeeks, w, body, action="created") == 200
        call = await wait_for(lambda: el.calls[0] if el.calls else None)
        assert call.dynamic_variables["previous_ai_calls"] == 0
        delivery = await el.send_post_call(
            f"{w.url}{HOOK}", "el-secret", call.conversation_id, "success"
        )
        assert delivery.status == 200

        def after_call(values: list[dict[str, Any]]) -> bool:
            return any(c["trigger"] == "call_outcome" for c in values)

        contexts = await asyncio.to_thread(contexts_of, kafka_bootstrap, w, lead, after_call)
        assert contexts[0]["trigger"] == "created"
        assert contexts[0]["previous_interactions"]["ai_calls"]["count"] == 0
        after = [c for c in contexts if c["trigger"] == "call_outcome"]
        assert len(after) == 1, [c["trigger"] for c in contexts]  # the call re-emitted it, once
        counted = after[0]
        ai_calls = counted["previous_interactions"]["ai_calls"]
        assert ai_calls["count"] == 1 and ai_calls["inbound"] == 0
        assert ai_calls["by_outcome"] == {"completed": 1} and ai_calls["conversations"] == 1
        assert ai_calls["last_outcome"] == "completed" and ai_calls["last_at"]
        variables = counted["dynamic_variables"]
        assert variables["previous_ai_calls"] == 1
        assert variables["last_ai_call_outcome"] == "completed"
        assert (counted["eligible"], counted["reason"], counted["opt_out"]) == (True, None, None)

        # The lead's next AI call (another conversation), in which they ask not to be called.
        opted = await el.send_post_call(
            f"{w.url}{HOOK}",
            "el-secret",
            unique("conv"),
            "success",
            agent_id="agent_1",
            dynamic_variables={"lead_id": lead, "site_uuid": site},
            to_number=phone,
            opt_out_requested=True,
        )
        assert opted.status == 200

        def settled(values: list[dict[str, Any]]) -> bool:
            if not values:
                return False
            last = values[-1]
            return not last["eligible"] and last["previous_interactions"]["ai_calls"]["count"] == 2

        contexts = await asyncio.to_thread(contexts_of, kafka_bootstrap, w, lead, settled)
        assert settled(contexts), [(c["trigger"], c["eligible"]) for c in contexts]
        first_ineligible = next(i for i, c in enumerate(contexts) if not c["eligible"])
        assert contexts[first_ineligible]["trigger"] in ("optout", "call_outcome")
        # Once opted out, no later context says the lead may be called.
        assert not any(c["eligible"] for c in contexts[first_ineligible:])
        last = contexts[-1]
        assert last["reason"] == "opted_out" and last["reasons"][0] == "opted_out"
        opt_out = last["opt_out"]
        assert (opt_out["subject"], opt_out["source"], opt_out["reason"]) == (
            "lead",
            "elevenlabs",
            "asked_during_call",
        )
        assert opt_out["at"]
        ai_calls = last["previous_interactions"]["ai_calls"]
        assert ai_calls["by_outcome"] == {"completed": 2}
        assert last["dynamic_variables"]["previous_ai_calls"] == 2
