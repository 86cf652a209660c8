"""The conversation both ways, on a real broker with the fake Real Geeks and ElevenLabs:
what the AI learned lands on the lead (one PATCH), inbound calls know who is calling, and
an outcome whose webhook never arrives is recovered by reconciliation, once."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from ops.testkit.dialer import NUMBERS, callable_number, dialer_env
from ops.testkit.fakes.elevenlabs import FakeElevenLabs
from ops.testkit.fakes.realgeeks import FakeRealGeeks
from ops.testkit.support import IngressProcess, Worker, free_port, unique
from realgeeks_sync.app.domain.callers import neutral_variables
from tests.integration.helpers import cli, outputs, send_realgeeks
from tests.integration.test_call_loop import wait_for
from tests.integration.test_dialer import metric

pytestmark = pytest.mark.integration

INITIATION_SECRET = "pre-call-secret"
HOOK = "/webhooks/elevenlabs"


def inbound_env(
    rg: FakeRealGeeks, el: FakeElevenLabs, secrets: str = INITIATION_SECRET
) -> dict[str, str]:
    """A worker that answers the pre-call webhook and neither dials nor reconciles."""
    return dialer_env(
        rg,
        el,
        RGSYNC_DIALER_ENABLED="false",
        RGSYNC_ELEVENLABS_INITIATION_SECRETS=secrets,
        RGSYNC_RECONCILE_INTERVAL_S="0",
    )


def new_lead(site: str, phone: str, **extra: Any) -> dict[str, Any]:
    return {
        "site_uuid": site,
        "id": unique("lead"),
        "first_name": "Ana",
        "last_name": "Lima",
        "phone": phone,
        "source": "Website",
        "role": "Buyer",
        **extra,
    }


def with_initiation(el: FakeElevenLabs, worker: Worker, secret: str = INITIATION_SECRET) -> None:
    """Point the fake agent's pre-call webhook at the worker, as its settings would."""
    el.initiation_url = f"{worker.url}/webhooks/elevenlabs/initiation"
    el.initiation_headers = {"Authorization": f"Bearer {secret}"}
    el.agent_variables = frozenset(neutral_variables())


async def known_to_the_directory(el: FakeElevenLabs, phone: str, lead_id: str) -> None:
    """Wait until an inbound call from ``phone`` is answered with the lead's context."""

    async def probe() -> bool:
        call = await el.inbound_call(phone, agent_id="agent_1")
        return call.dynamic_variables.get("lead_id") == lead_id

    deadline = time.monotonic() + 45
    while not await probe():
        assert time.monotonic() < deadline, "the caller never became known"
        await asyncio.sleep(0.5)


async def test_a_calls_results_update_three_lead_fields_with_one_patch_through_a_500(
    start_worker: Callable[..., Worker], kafka_bootstrap: str
) -> None:
    async with FakeRealGeeks() as rg, FakeElevenLabs() as el:
        rg.fail_next(500, method="PATCH")
        env = dialer_env(
            rg,
            el,
            RGSYNC_OUTCOME_LEAD_FIELDS=(
                "timeframe=field:timeframe,budget=field:budget,"
                "pre_approved=field:pre_approved,criteria:qualified=tag:AI qualified"
            ),
            RGSYNC_RECONCILE_INTERVAL_S="0",
        )
        w = await asyncio.to_thread(start_worker, **env)
        site = unique("site")
        body = new_lead(site, callable_number(datetime.now(UTC), allowed=True), tags=["Zillow"])
        assert await asyncio.to_thread(send_realgeeks, w, body, action="created") == 200
        call = await wait_for(lambda: el.calls[0] if el.calls else None)
        results = {
            "collected": {"timeframe": "3-6 months", "budget": "$450k", "pre_approved": True},
            "criteria": {"qualified": "success"},
            "viewing_date": "Saturday 2pm",
        }
        delivery = await el.send_post_call(
            f"{w.url}{HOOK}", "el-secret", call.conversation_id, "success", **results
        )
        assert delivery.status == 200
        await wait_for(lambda: rg.lead_patches)
        # The same webhook again (an ElevenLabs retry) must not write again.
        again = await el.send_post_call(
            f"{w.url}{HOOK}",
            "el-secret",
            call.conversation_id,
            "success",
            timestamp=json.loads(delivery.body)["event_timestamp"],
            **results,
        )
        assert again.status == 200
        await wait_for(lambda: len(rg.activities.get((site, body["id"])) or []) >= 3)
        await asyncio.sleep(3)  # room for a wrong second PATCH to show up
        assert rg.lead_patches == [
            (
                site,
                body["id"],
                {
                    "timeframe": "3-6 months",
                    "budget": "$450k",
                    "pre_approved": "Yes",
                    "tags": ["Zillow", "AI qualified"],  # the lead's own tag kept
                },
            )
        ]
        assert [r.status for r in rg.requests_to(f"/leads/{body['id']}", "PATCH")] == [500, 200]
        posted = rg.activities[(site, body["id"])]
        link = f"https://elevenlabs.io/app/agents/history/{call.conversation_id}?agent=agent_1"
        completed = [a for a in posted if a["description"].startswith("AI call completed")]
        assert len(completed) == 1
        assert completed[0]["description"].endswith(f"Conversation {call.conversation_id}: {link}")
        (tour,) = [a for a in posted if a["type"] == "tour_requested"]
        assert tour["notify_users"] is True and completed[0]["notify_users"] is False
        assert metric(w, "realgeeks_lead_updates_written_total") == 1


async def test_an_inbound_call_from_a_known_number_gets_its_lead_and_lands_on_it(
    start_worker: Callable[..., Worker], kafka_bootstrap: str
) -> None:
    async with FakeRealGeeks() as rg, FakeElevenLabs() as el:
        env = inbound_env(rg, el, f"old-secret,{INITIATION_SECRET}")
        w = await asyncio.to_thread(start_worker, **env)
        site, phone = unique("site"), NUMBERS[1]
        body = new_lead(site, phone)
        assert await asyncio.to_thread(send_realgeeks, w, body, action="created") == 200
        with_initiation(el, w)
        await known_to_the_directory(el, phone, body["id"])
        call = await el.inbound_call(phone, agent_id="agent_1", with_conversation_id=True)
        assert call.accepted and call.status == 200
        assert set(call.dynamic_variables) == set(neutral_variables())
        assert call.dynamic_variables["site_uuid"] == site
        assert call.dynamic_variables["lead_first_name"] == "Ana"
        assert call.seconds < 1.0
        # Another agent than ours: the caller is nobody it serves.
        other = await el.inbound_call(phone, agent_id="agent_someone_else")
        assert other.accepted and other.dynamic_variables == neutral_variables()
        # A wrong secret is refused (and the call fails at ElevenLabs, as it would).
        with_initiation(el, w, secret="wrong")
        refused = await el.inbound_call(phone, agent_id="agent_1")
        assert (refused.accepted, refused.status) == (False, 401)
        delivery = await el.send_post_call(
            f"{w.url}{HOOK}", "el-secret", call.conversation_id, "success"
        )
        assert delivery.status == 200
        await wait_for(lambda: rg.activities.get((site, body["id"])))
        (activity,) = rg.activities[(site, body["id"])]
        assert activity["description"].startswith("Inbound AI call completed.")
        assert metric(w, "realgeeks_initiation_requests_total") >= 3
        # The request named the conversation: its lead is recorded on sync.conversations.
        (recorded,) = await asyncio.to_thread(
            outputs,
            kafka_bootstrap,
            w,
            "sync.conversations",
            count=1,
            match=lambda r: r["conversation_id"] == call.conversation_id,
        )
        assert (recorded["site_uuid"], recorded["lead_id"]) == (site, body["id"])
        assert (recorded["direction"], recorded["attempt_id"]) == ("inbound", None)


async def test_an_inbound_call_from_an_unknown_number_gets_defaults_and_is_kept_for_review(
    start_worker: Callable[..., Worker], kafka_bootstrap: str
) -> None:
    async with FakeRealGeeks() as rg, FakeElevenLabs() as el:
        env = inbound_env(rg, el)
        w = await asyncio.to_thread(start_worker, **env)
        with_initiation(el, w)
        call = await el.inbound_call(NUMBERS[2], agent_id="agent_1")
        # Every variable the agent uses is there, neutral: the call goes ahead.
        assert call.accepted and call.dynamic_variables == neutral_variables()
        delivery = await el.send_post_call(
            f"{w.url}{HOOK}", "el-secret", call.conversation_id, "success"
        )
        assert delivery.status == 200
        dead = await asyncio.to_thread(
            outputs,
            kafka_bootstrap,
            w,
            "sync.deadletter",
            count=1,
            match=lambda r: r["error_type"] == "UnknownCallerError",
        )
        assert dead[0]["retriable"] is False
        assert call.conversation_id in dead[0]["error"] and NUMBERS[2] not in dead[0]["error"]
        assert json.loads(dead[0]["value"])["message_id"]  # the whole webhook is kept
        returncode, out, _err = await cli(
            w.env, "dlq", "list", "--error-type", "UnknownCallerError"
        )
        assert returncode == 0 and call.conversation_id in out
        assert rg.all_activities() == []


async def test_a_missed_webhook_is_recovered_by_reconciliation_once(
    start_worker: Callable[..., Worker], kafka_bootstrap: str
) -> None:
    period = 3.0
    async with FakeRealGeeks() as rg, FakeElevenLabs() as el:
        env = dialer_env(
            rg,
            el,
            RGSYNC_RECONCILE_INTERVAL_S=str(period),
            RGSYNC_RECONCILE_GRACE_S="0",
        )
        w = await asyncio.to_thread(start_worker, **env)
        site = unique("site")
        body = new_lead(site, callable_number(datetime.now(UTC), allowed=True))
        assert await asyncio.to_thread(send_realgeeks, w, body, action="created") == 200
        call = await wait_for(lambda: el.calls[0] if el.calls else None)
        await wait_for(lambda: rg.activities.get((site, body["id"])))  # "AI call initiated"
        el.drop_next_post_calls()
        dropped = await el.send_post_call(
            f"{w.url}{HOOK}",
            "el-secret",
            call.conversation_id,
            "success",
            transcript_summary="Wants a 3-bed in Kailua.",
            call_duration_secs=1,
        )
        assert dropped.status == 0  # never delivered
        finished = time.monotonic()

        def completed() -> list[dict[str, Any]]:
            posted = rg.activities.get((site, body["id"])) or []
            return [a for a in posted if a["description"].startswith("AI call completed")]

        await wait_for(completed, timeout=30)
        recovered_in = time.monotonic() - finished
        assert recovered_in < period + 5, recovered_in  # within one period (and its work)
        assert "Wants a 3-bed in Kailua." in completed()[0]["description"]
        # Replayed reconciliation (twice, by hand) and more periods: nothing new.
        for _ in range(2):
            returncode, _out, err = await cli(w.env, "reconcile", "--since", "1h")
            assert returncode == 0, err
            # Its summary is the last line on stderr (as backfill's).
            summary = json.loads(err.strip().splitlines()[-1])
            assert set(summary) == {"listed", "requested", "failed"}, summary
            assert summary["listed"] >= summary["requested"] >= 1 and summary["failed"] == 0
        await asyncio.sleep(period * 2)
        assert len(completed()) == 1
        assert len(rg.activities[(site, body["id"])]) == 2  # initiated + completed
        assert metric(w, "realgeeks_outcomes_reconciled_total") == 1
        (outcome,) = await asyncio.to_thread(
            outputs, kafka_bootstrap, w, "sync.call-outcomes", count=1, timeout=10
        )
        assert outcome["reconciled"] is True and outcome["conversation_id"] == call.conversation_id
        # The dialer heard how the call ended: its line is free, no redial after a talk.
        await wait_for(lambda: metric(w, "realgeeks_calls_requested_total") == 1)


async def test_the_standalone_ingress_answers_the_pre_call_webhook_too(
    start_worker: Callable[..., Worker], kafka_bootstrap: str, tmp_path: Any
) -> None:
    async with FakeRealGeeks() as rg, FakeElevenLabs() as el:
        env = inbound_env(rg, el)
        w = await asyncio.to_thread(start_worker, **env)
        ingress = IngressProcess(
            env={**w.env, "RGSYNC_INGRESS_PORT": str(free_port())},
            log_path=tmp_path / "ingress.log",
        )
        await asyncio.to_thread(ingress.start)
        try:
            site, phone = unique("site"), NUMBERS[3]
            body = new_lead(site, phone)
            assert (
                await asyncio.to_thread(send_realgeeks, ingress.url, body, action="created") == 200
            )
            with_initiation(el, ingress)  # a copy of the directory of its own, no agents
            await known_to_the_directory(el, phone, body["id"])
            with_initiation(el, ingress, secret="wrong")
            assert (await el.inbound_call(phone, agent_id="agent_1")).status == 401
        finally:
            await asyncio.to_thread(ingress.stop)
