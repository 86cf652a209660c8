"""Slow and failing dependencies: Real Geeks answering slowly and with 5xx for a long
stretch. Retries back off, nothing is lost, the dead-letter topic takes what exceeds the
bounds, and the rest of the pipeline keeps flowing."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from ops.testkit.fakes.elevenlabs import FakeElevenLabs
from ops.testkit.fakes.realgeeks import FakeRealGeeks
from ops.testkit.support import Worker, unique, worker_env
from tests.integration.helpers import outputs, send_realgeeks

pytestmark = pytest.mark.integration

# Minutes under ops/test --slow; half a minute in the default suite.
OUTAGE_S = float(os.environ.get("RGSYNC_TEST_OUTAGE_S", "30"))


async def test_realgeeks_failing_for_a_while(kafka_bootstrap: str, tmp_path: Path) -> None:
    async with FakeRealGeeks() as rg, FakeElevenLabs() as el:
        env = worker_env(
            kafka_bootstrap,
            tmp_path,
            RGSYNC_PARTITIONS="4",
            RGSYNC_REALGEEKS_API_URL=rg.url,
            RGSYNC_REALGEEKS_API_USER=rg.user,
            RGSYNC_REALGEEKS_API_PASSWORD=rg.password,
            RGSYNC_RETRY_BASE_S="0.5",
            RGSYNC_RETRY_MAX_DELAY_S="8",
            RGSYNC_RETRY_MAX_ATTEMPTS="50",
            RGSYNC_RETRY_MAX_ELAPSED_S=str(OUTAGE_S * 0.6),
        )
        rg.fail_next(500, times=100000, path="/activities", delay=0.5)  # slow and failing
        worker = await asyncio.to_thread(Worker(env=env, log_path=tmp_path / "w.log").start)
        site = unique("site")
        leads = [unique("l") for _ in range(6)]
        try:
            started = time.monotonic()
            for lead in leads:
                delivery = await el.send_post_call(
                    f"{worker.url}/webhooks/elevenlabs",
                    "el-secret",
                    unique("conv"),
                    "success",
                    dynamic_variables={"lead_id": lead, "site_uuid": site},
                )
                assert delivery.status == 200
            # While the writer struggles, Real Geeks leads keep flowing to leads.normalized.
            lead_site = unique("site")
            flowing = 0
            while time.monotonic() - started < OUTAGE_S:
                body = {
                    "site_uuid": lead_site,
                    "id": unique("l"),
                    "email": f"{unique()}@x.com",
                    "source": "Web",
                }
                assert (
                    await asyncio.to_thread(send_realgeeks, worker, body, action="created") == 200
                )
                flowing += 1
                await asyncio.sleep(1)
            events = await asyncio.to_thread(
                outputs, kafka_bootstrap, worker, "leads.normalized", count=flowing, timeout=30
            )
            assert len(events) == flowing
            attempts = rg.requests_to("/activities", "POST")
            # Backoff: far fewer attempts than a tight loop would make, and growing gaps.
            assert 2 <= len(attempts) < OUTAGE_S * 4
            rg.clear_faults()
            deadline = time.monotonic() + 120
            dead: list[dict[str, object]] = []
            while time.monotonic() < deadline:
                posted = sum(len(rg.activities.get((site, lead), [])) for lead in leads)
                dead = await asyncio.to_thread(
                    outputs, kafka_bootstrap, worker, "sync.deadletter", timeout=2
                )
                if posted + len(dead) >= len(leads):
                    break
                await asyncio.sleep(1)
            per_lead = [len(rg.activities.get((site, lead), [])) for lead in leads]
            print(
                f"slow deps: flowing={flowing} attempts={len(attempts)} "
                f"posted={sum(per_lead)} dead={len(dead)}"
            )
            assert max(per_lead) <= 1
            assert sum(per_lead) + len(dead) == len(leads)  # nothing lost
            assert dead, "the bound on elapsed time must dead-letter what exceeds it"
            assert all(d["error_type"] == "TransientApiError" and d["attempts"] > 1 for d in dead)
        finally:
            await asyncio.to_thread(worker.stop)
