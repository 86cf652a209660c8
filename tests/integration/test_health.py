"""Health turns degraded when the sync stalls past the lag bound, and healthy again."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest

from ops.testkit.fakes.elevenlabs import FakeElevenLabs
from ops.testkit.fakes.realgeeks import FakeRealGeeks
from ops.testkit.support import Worker, unique

pytestmark = pytest.mark.integration


def health(worker: Worker) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"{worker.url}/health", timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


async def wait_status(worker: Worker, wanted: str, timeout: float = 40) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    report: dict[str, Any] = {}
    while time.monotonic() < deadline:
        code, report = await asyncio.to_thread(health, worker)
        if report.get("status") == wanted:
            assert code == (200 if wanted == "healthy" else 503)
            return report
        await asyncio.sleep(0.5)
    raise AssertionError(f"health never became {wanted}: {report}")


async def test_stalled_sync_degrades_health_then_recovers(
    start_worker: Callable[..., Worker],
) -> None:
    async with FakeRealGeeks() as rg, FakeElevenLabs() as el:
        worker = await asyncio.to_thread(
            start_worker,
            RGSYNC_HEALTH_LAG_BOUND_S="3",
            RGSYNC_REALGEEKS_API_URL=rg.url,
            RGSYNC_REALGEEKS_API_USER=rg.user,
            RGSYNC_REALGEEKS_API_PASSWORD=rg.password,
            RGSYNC_RETRY_BASE_S="0.5",
            RGSYNC_RETRY_MAX_DELAY_S="1",
            RGSYNC_RETRY_MAX_ATTEMPTS="100",
            RGSYNC_RETRY_MAX_ELAPSED_S="60",
        )
        await wait_status(worker, "healthy")
        rg.fail_next(503, times=100000, path="/activities")  # Real Geeks down
        delivery = await el.send_post_call(
            f"{worker.url}/webhooks/elevenlabs",
            "el-secret",
            unique("conv"),
            "success",
            dynamic_variables={"lead_id": unique("l"), "site_uuid": unique("site")},
        )
        assert delivery.status == 200
        report = await wait_status(worker, "degraded")
        assert report["checks"]["sync_lag_seconds"] > 3
        assert any("unprocessed" in r for r in report["reasons"])
        rg.clear_faults()  # Real Geeks is back: the activity is posted, the lag clears
        await wait_status(worker, "healthy")
        assert sum(len(v) for v in rg.activities.values()) == 1
