"""docker-compose.yml end to end: the stack comes up, a webhook flows, a restart loses nothing.

Runs under `ops/test --containers` (RGSYNC_TEST_CONTAINERS=1): the host-network variant on
the project's own engine, with free ports, through `ops/docker compose`; the stack and its
volumes are removed afterwards. A failing test's report ends with the stack's logs.
"""

from __future__ import annotations

import json
import os
import statistics
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from ops.testkit.support import CONTAINER_LOGS, ROOT, unique
from tests.containers.stack import MEASURED, ComposeStack, LeadsReader, NoRedirect, get_json
from tests.integration.helpers import send_realgeeks

pytestmark = [
    pytest.mark.containers,
    pytest.mark.skipif(
        os.environ.get("RGSYNC_TEST_CONTAINERS") != "1",
        reason="container tier: ops/test --containers",
    ),
]

SERVICES = {"kafka", "worker", "ingress", "prometheus"}
LEADS = "leads.normalized"


@pytest.fixture(scope="module")
def stack() -> Iterator[ComposeStack]:
    s = ComposeStack()
    CONTAINER_LOGS["compose"] = s.logs
    started = time.monotonic()
    try:
        s.compose("up", "--detach", "--wait", "--wait-timeout", "240", timeout=300)
        MEASURED.append(f"compose up --wait (every healthcheck): {time.monotonic() - started:.1f} s")
        yield s
    finally:
        CONTAINER_LOGS.pop("compose", None)
        s.compose("down", "--volumes", "--timeout", "20")


def lead(site: str) -> dict[str, Any]:
    ident = unique("lead")
    return {"site_uuid": site, "id": ident, "source": "Website", "role": "Buyer"}


def test_every_service_runs_and_every_healthcheck_passes(stack: ComposeStack) -> None:
    services = {s["Service"]: s for s in stack.services()}
    assert set(services) == SERVICES  # Grafana stays behind its profile
    for name, record in services.items():
        assert record["State"] == "running", (name, record)
    for name in sorted(SERVICES):
        assert services[name]["Health"] == "healthy", (name, services[name])
    # Safe by default: Prometheus' lifecycle API is off.
    quit_request = urllib.request.Request(f"{stack.url('prometheus')}/-/quit", method="POST")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(quit_request, timeout=10)
    assert refused.value.code == 403


def test_admin_token_turns_on_the_worker_pages(stack: ComposeStack) -> None:
    """RGSYNC_ADMIN_TOKEN reaches the worker: /ui/ answers the bearer token, and anyone
    else is sent to the login form."""
    opener = urllib.request.build_opener(NoRedirect)
    page = urllib.request.Request(
        f"{stack.url('worker')}/ui/", headers={"Authorization": f"Bearer {stack.admin_token}"}
    )
    with opener.open(page, timeout=10) as response:
        assert response.status == 200 and "Leads today" in response.read().decode()
    with pytest.raises(urllib.error.HTTPError) as refused:
        opener.open(f"{stack.url('worker')}/ui/", timeout=10)
    assert refused.value.code == 303
    assert refused.value.headers["Location"].startswith("/ui/login")


def test_without_a_sites_file_the_services_read_none(stack: ComposeStack) -> None:
    """RGSYNC_SITES_FILE unset: the example is mounted read-only (the mount resolves) and
    neither service is told to read it."""
    probe = (
        "import os; assert not os.environ.get('RGSYNC_SITES_FILE'), os.environ['RGSYNC_SITES_FILE']; "
        "assert '[sites.' in open('/etc/realgeeks-sync/sites.toml').read()"
    )
    for service in ("worker", "ingress"):
        stack.compose("exec", "-T", service, "python", "-c", probe, timeout=60)


def test_signed_webhook_reaches_leads_normalized(stack: ComposeStack) -> None:
    """Through the ingress container, the worker container, Kafka's container; latency too."""
    reader = LeadsReader(stack.bootstrap, LEADS)
    latencies = []
    try:
        site = unique("site")
        for _ in range(20):
            body = lead(site)
            started = time.monotonic()
            assert send_realgeeks(stack.url("ingress"), body, action="created", secret=stack.secret) == 200
            values = reader.wait_for({body["id"]}, timeout=60)
            latencies.append(time.monotonic() - started)
            (event,) = [v for v in values if v.get("source_lead_id") == body["id"]]
            assert event["schema"] == "lead.v1" and event["op"] == "created"
            assert event["site_uuid"] == site
    finally:
        reader.close()
    # The first one also pays for connections and the reader's first fetch.
    first, rest = 1000 * latencies[0], sorted(1000 * x for x in latencies[1:])
    MEASURED.append(
        f"one webhook, POST to the ingress -> event on leads.normalized, through the compose "
        f"stack: median {statistics.median(rest):.0f} ms, max {rest[-1]:.0f} ms "
        f"({len(rest)} sent one at a time after a first one of {first:.0f} ms)"
    )
    results = ROOT / "var" / "containers"
    results.mkdir(parents=True, exist_ok=True)
    (results / "compose-latency.json").write_text(
        json.dumps({"first_ms": first, "median_ms": statistics.median(rest), "samples_ms": rest})
    )


def test_prometheus_scrapes_the_worker_and_the_ingress(stack: ComposeStack) -> None:
    wanted = {f"127.0.0.1:{stack.ports['WORKER']}", f"127.0.0.1:{stack.ports['INGRESS']}"}
    deadline = time.monotonic() + 90
    health: dict[str, str] = {}
    while time.monotonic() < deadline:
        targets = get_json(f"{stack.url('prometheus')}/api/v1/targets")["data"]["activeTargets"]
        health = {
            t["labels"]["instance"]: t["health"]
            for t in targets
            if t["labels"]["job"] == "realgeeks-sync"
        }
        if set(health) == wanted and all(h == "up" for h in health.values()):
            break
        time.sleep(2)
    assert health == dict.fromkeys(wanted, "up")
    # The alert rules were loaded from ops/monitoring/alerts.yml.
    groups = get_json(f"{stack.url('prometheus')}/api/v1/rules")["data"]["groups"]
    assert any(r["name"] == "RealGeeksSyncLagHigh" for g in groups for r in g["rules"])


def test_worker_restart_loses_nothing(stack: ComposeStack) -> None:
    """Webhooks before, during and after a worker restart each give one event, once."""
    reader = LeadsReader(stack.bootstrap, LEADS)
    try:
        site = unique("site")
        before = [lead(site) for _ in range(5)]
        for i, body in enumerate(before):
            target = stack.url("worker") if i % 2 else stack.url("ingress")
            assert send_realgeeks(target, body, action="created", message_id=body["id"]) == 200
        reader.wait_for({b["id"] for b in before}, timeout=60)

        stack.compose("restart", "worker", timeout=120)
        # The ingress accepts webhooks while the worker recovers its tables.
        during = [lead(site) for _ in range(5)]
        for body in during:
            assert send_realgeeks(stack.url("ingress"), body, action="created", message_id=body["id"]) == 200
        stack.wait_healthy("worker")
        # A sender retrying a message from before the restart: the worker's tables (kept in
        # its volume and its changelog) still know it.
        assert send_realgeeks(stack.url("ingress"), before[0], action="created", message_id=before[0]["id"]) == 200
        after = [lead(site)]
        assert send_realgeeks(stack.url("worker"), after[0], action="created", message_id=after[0]["id"]) == 200

        wanted = {b["id"] for b in before + during + after}
        values = reader.wait_for(wanted, timeout=120)
    finally:
        reader.close()
    ids = [v["source_lead_id"] for v in values if v.get("site_uuid") == site]
    assert set(ids) == wanted
    assert len(ids) == len(wanted), "an event was written twice"
