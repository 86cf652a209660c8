"""Broker faults: stop the broker under load and start it again. No webhook answered 200 is
lost, the worker recovers without a restart, and /health shows the outage."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ops.testkit.support import LocalBroker, Worker, drain_json, unique, worker_env
from realgeeks_sync.app.domain.leads import lead_event_id
from tests.integration.test_crash import Sender

pytestmark = pytest.mark.integration


@pytest.fixture
def own_broker() -> Iterator[LocalBroker]:
    """A broker of this test's own, on its own ports, so stopping it harms no one else."""
    broker = LocalBroker.on_free_ports()
    started = broker.run("start")
    assert started.returncode == 0, started.stderr
    yield broker
    broker.run("stop")


def health(worker: Worker) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"{worker.url}/health", timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_broker_restart_under_load(own_broker: LocalBroker, tmp_path: Path) -> None:
    bootstrap = own_broker.bootstrap
    env = worker_env(
        bootstrap,
        tmp_path,
        RGSYNC_PARTITIONS="2",
        RGSYNC_PUBLISH_TIMEOUT_S="2",
        RGSYNC_CLIENT_RATE_PER_S="100000",
        RGSYNC_CLIENT_BURST="100000",
    )
    worker = Worker(env=env, log_path=tmp_path / "worker.log").start()
    pid = worker.proc.pid if worker.proc else None
    site = unique("site")
    bodies = [
        (
            f"outage-{i}",
            {"site_uuid": site, "id": unique("l"), "email": f"o{i}@example.com", "source": "Web"},
        )
        for i in range(600)
    ]
    sender = Sender(worker, bodies, rate=40)
    try:
        sender.start()
        time.sleep(4)
        assert own_broker.run("stop").returncode == 0
        time.sleep(6)
        status, report = health(worker)
        assert status == 503 and report["status"] == "unhealthy"
        assert report["checks"]["kafka"]["status"] == "down"
        assert own_broker.run("start").returncode == 0
        sender.join(timeout=300)
        assert not sender.is_alive(), (
            f"webhooks still refused 300 s after the broker's return (last answer "
            f"{sender.last_status}); worker log:\n{worker.tail(80)}"
        )
        assert sender.refused > 0  # the outage was answered 503 (or refused), never 200
        expected = {lead_event_id(mid) for mid in sender.acked}
        topic = env["RGSYNC_TOPIC_PREFIX"] + "leads.normalized"
        events = drain_json(
            bootstrap,
            topic,
            timeout=180,
            until=lambda ms: expected <= {json.loads(m.value())["event_id"] for m in ms},
        )
        missing = expected - {e["event_id"] for e in events}
        print(
            f"outage: acknowledged={len(sender.acked)} refused={sender.refused} "
            f"missing={len(missing)}"
        )
        assert not missing
        assert worker.proc is not None and worker.proc.pid == pid and worker.proc.poll() is None
        deadline = time.monotonic() + 30
        while (
            time.monotonic() < deadline and health(worker)[1]["checks"]["kafka"]["status"] != "ok"
        ):
            time.sleep(1)
        assert health(worker)[1]["checks"]["kafka"]["status"] == "ok"
        # While the broker was down, aiokafka's clients retried their metadata without a
        # pause: 6,000 refused connections and 12,000 ERROR lines a second
        # (metadata_backoff.py). Paused, a few dozen a second.
        refused_lines = (
            (tmp_path / "worker.log").read_text(errors="replace").count("Unable connect to node")
        )
        print(f"outage: aiokafka connection errors logged={refused_lines}")
        assert refused_lines < 3000
    finally:
        worker.stop()
