"""The whole loop on a real broker with the fake Real Geeks and ElevenLabs servers:
webhook -> calls.context -> dialer -> outbound call -> post-call webhook -> one activity."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from ops.testkit.dialer import callable_number, dialer_env
from ops.testkit.fakes.elevenlabs import FakeElevenLabs
from ops.testkit.fakes.realgeeks import FakeRealGeeks
from ops.testkit.support import Worker, unique
from tests.integration.helpers import cli, outputs, send_realgeeks

pytestmark = pytest.mark.integration


async def wait_for(predicate: Callable[[], Any], timeout: float = 45.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        value = predicate()
        if value:
            return value
        await asyncio.sleep(0.2)
    raise AssertionError("condition not met in time")


async def test_webhook_to_call_to_one_activity_through_429_and_500(
    start_worker: Callable[..., Worker], kafka_bootstrap: str
) -> None:
    async with FakeRealGeeks() as rg, FakeElevenLabs() as el:
        rg.fail_next(429, retry_after=1, path="/activities")
        rg.fail_next(500, times=2, path="/activities")
        w = await asyncio.to_thread(start_worker, **dialer_env(rg, el))
        site = unique("site")
        phone = callable_number(datetime.now(UTC), allowed=True)
        body = {
            "site_uuid": site,
            "id": unique("lead"),
            "first_name": "Ana",
            "last_name": "Lima",
            "email": "ana@example.com",
            "phone": phone,
            "source": "Website",
            "role": "Buyer",
        }
        status = await asyncio.to_thread(send_realgeeks, w, body, action="created")
        assert status == 200
        call = await wait_for(lambda: el.calls[0] if el.calls else None)
        assert call.to_number == phone and call.agent_id == "agent_1"
        assert call.dynamic_variables["lead_id"] == body["id"]
        assert call.dynamic_variables["site_uuid"] == site
        delivery = await el.send_post_call(
            f"{w.url}/webhooks/elevenlabs",
            "el-secret",
            call.conversation_id,
            "success",
            transcript_summary="Wants a 3-bed in Kailua.",
        )
        assert delivery.status == 200
        # ElevenLabs retries send the identical body: it must not post twice.
        again = await el.send_post_call(
            f"{w.url}/webhooks/elevenlabs",
            "el-secret",
            call.conversation_id,
            "success",
            transcript_summary="Wants a 3-bed in Kailua.",
            timestamp=json.loads(delivery.body)["event_timestamp"],
        )
        assert again.status == 200
        await wait_for(lambda: len(rg.activities.get((site, body["id"])) or []) >= 2)
        await asyncio.sleep(3)  # room for a wrong second POST to show up
        posted = rg.activities[(site, body["id"])]
        # The attempt and the conversation, each once, in the seed's wording (the post-call
        # webhook may beat the call request's answer, so either may come first).
        duration = delivery.payload["data"]["metadata"]["call_duration_secs"]
        link = f"https://elevenlabs.io/app/agents/history/{call.conversation_id}?agent=agent_1"
        assert sorted(a["description"] for a in posted) == [
            f"AI call completed. Duration: {duration}s. Wants a 3-bed in Kailua."
            f" Conversation {call.conversation_id}: {link}",
            f"AI call initiated to {phone}",
        ]
        assert {a["type"] for a in posted} == {"called"}
        attempts = rg.requests_to("/activities", "POST")
        assert [r.status for r in attempts] == [429, 500, 500, 200, 200]
        # Retry-After: 1 was honoured between the 429 and the next attempt.
        assert attempts[1].time - attempts[0].time >= 0.95
        outbound = await asyncio.to_thread(
            outputs,
            kafka_bootstrap,
            w,
            "activities.normalized",
            count=2,
            match=lambda e: e["direction"] == "outbound",
        )
        assert {(e["type"], e["lead_id"]) for e in outbound} == {("called", body["id"])}
        assert sorted(e["description"] for e in outbound) == sorted(
            a["description"] for a in posted
        )


async def test_422_is_deadlettered_and_replay_delivers_once(
    start_worker: Callable[..., Worker], kafka_bootstrap: str
) -> None:
    async with FakeRealGeeks() as rg, FakeElevenLabs() as el:
        rg.fail_next(
            422, error="Property field 'full_baths' is not a valid integer.", path="/activities"
        )
        env = dialer_env(rg, el, RGSYNC_DIALER_ENABLED="false")
        w = await asyncio.to_thread(start_worker, **env)
        site, lead_id = unique("site"), unique("lead")
        conversation = unique("conv")
        delivery = await el.send_post_call(
            f"{w.url}/webhooks/elevenlabs",
            "el-secret",
            conversation,
            "failure",
            dynamic_variables={"lead_id": lead_id, "site_uuid": site},
        )
        assert delivery.status == 200
        dead = await asyncio.to_thread(outputs, kafka_bootstrap, w, "sync.deadletter", count=1)
        assert dead[0]["error_type"] == "PermanentApiError"
        assert "full_baths" in dead[0]["error"]
        assert not rg.activities.get((site, lead_id))
        # The fake is fixed (its one scripted 422 is spent): replay delivers exactly once.
        returncode, _, err = await cli(w.env, "dlq", "replay", "--error-type", "PermanentApiError")
        assert returncode == 0, err
        await wait_for(lambda: rg.activities.get((site, lead_id)))
        await cli(w.env, "dlq", "replay", "--error-type", "PermanentApiError")
        await asyncio.sleep(3)
        assert len(rg.activities[(site, lead_id)]) == 1


async def test_an_activity_whose_answer_is_lost_is_sent_once_and_dead_lettered(
    start_worker: Callable[..., Worker], kafka_bootstrap: str
) -> None:
    # Real Geeks writes the activity but its answer comes after the client's 10 s timeout.
    # Activity POSTs are not idempotent: sending again would put it on the lead twice.
    async with FakeRealGeeks() as rg, FakeElevenLabs() as el:
        rg.delay_next(12.0, path="/activities", after_processing=True)
        env = dialer_env(rg, el, RGSYNC_DIALER_ENABLED="false")
        w = await asyncio.to_thread(start_worker, **env)
        site, lead_id = unique("site"), unique("lead")
        delivery = await el.send_post_call(
            f"{w.url}/webhooks/elevenlabs",
            "el-secret",
            unique("conv"),
            "failure",
            dynamic_variables={"lead_id": lead_id, "site_uuid": site},
        )
        assert delivery.status == 200
        dead = await asyncio.to_thread(
            outputs, kafka_bootstrap, w, "sync.deadletter", count=1, timeout=60
        )
        assert dead[0]["error_type"] == "OutcomeUnknownError"
        # A replay of the dead letter finds the write in flight and does not send it either.
        returncode, _, err = await cli(
            w.env, "dlq", "replay", "--error-type", "OutcomeUnknownError"
        )
        assert returncode == 0, err
        await asyncio.sleep(3)
        assert len(rg.requests_to("/activities", "POST")) == 1
        assert len(rg.activities[(site, lead_id)]) == 1
