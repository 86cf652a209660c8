"""/metrics and /health on an internal port of their own (RGSYNC_OPS_PORT), off the webhook
port, for the worker and the standalone ingress alike."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from ops.testkit.support import IngressProcess, Worker, free_port, worker_env

pytestmark = pytest.mark.integration


def status_of(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def wait_listening(url: str, timeout: float = 60.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(url)


async def test_the_worker_serves_metrics_and_health_only_on_the_ops_port(
    start_worker: Callable[..., Worker],
) -> None:
    ops = free_port()
    w = await asyncio.to_thread(start_worker, RGSYNC_OPS_PORT=str(ops))
    internal = f"http://127.0.0.1:{ops}"
    await asyncio.to_thread(wait_listening, f"{internal}/metrics")
    for path in ("/metrics", "/health", "/health/realgeeks"):
        assert (await asyncio.to_thread(status_of, w.url + path))[0] == 404, path
    status, body = await asyncio.to_thread(status_of, f"{internal}/metrics")
    assert status == 200 and b"realgeeks_webhooks_received_total" in body
    status, body = await asyncio.to_thread(status_of, f"{internal}/health")
    assert status in (200, 503) and json.loads(body)["status"] in ("healthy", "degraded")


async def test_the_ingress_serves_metrics_and_health_only_on_the_ops_port(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    ops = free_port()
    env = worker_env(kafka_bootstrap, tmp_path, RGSYNC_OPS_PORT=str(ops))
    ingress = IngressProcess(env=env, log_path=tmp_path / "ingress.log")
    try:
        await asyncio.to_thread(ingress.start, False)
        internal = f"http://127.0.0.1:{ops}"
        await asyncio.to_thread(wait_listening, f"{internal}/health")
        await asyncio.to_thread(wait_listening, f"{ingress.url}/webhooks/realgeeks")
        assert (await asyncio.to_thread(status_of, f"{ingress.url}/metrics"))[0] == 404
        assert (await asyncio.to_thread(status_of, f"{ingress.url}/health"))[0] == 404
        status, body = await asyncio.to_thread(status_of, f"{internal}/health")
        assert status == 200 and json.loads(body)["checks"]["kafka"]["status"] == "ok"
        status, body = await asyncio.to_thread(status_of, f"{internal}/metrics")
        assert status == 200 and b"realgeeks_webhooks_received_total" in body
    finally:
        await asyncio.to_thread(ingress.stop)
