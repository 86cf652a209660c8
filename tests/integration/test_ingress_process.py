"""``realgeeks-sync ingress`` as its own process: accepts webhooks with no worker running."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ops.testkit.support import IngressProcess, Worker, drain, free_port, unique, worker_env
from tests.integration.helpers import outputs, send_realgeeks

pytestmark = pytest.mark.integration


@pytest.fixture
def ingress(kafka_bootstrap: str, tmp_path: Path) -> Iterator[IngressProcess]:
    env = worker_env(kafka_bootstrap, tmp_path)
    process = IngressProcess(env=env, log_path=tmp_path / "ingress.log")
    try:
        process.start(timeout=60)
        yield process
    finally:
        process.stop()


def get(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, resp.headers["Content-Type"], resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers["Content-Type"], err.read()


def raw_topic(process: Worker) -> str:
    return process.env["RGSYNC_TOPIC_PREFIX"] + "realgeeks.webhooks.raw"


def lead(site: str) -> dict[str, Any]:
    ident = unique("lead")
    return {"site_uuid": site, "id": ident, "email": f"{ident}@example.com", "role": "Buyer"}


def test_signed_webhook_lands_byte_for_byte(ingress: IngressProcess, kafka_bootstrap: str) -> None:
    site = unique("site")
    # Odd spacing and a trailing newline: the raw bytes are kept, not a re-serialisation.
    body = f'{{"action": "created",  "site_uuid": "{site}", "id": "{unique()}"}}\n'.encode()
    assert send_realgeeks(ingress, body, message_id="m-1") == 200
    msgs = drain(
        kafka_bootstrap,
        raw_topic(ingress),
        until=lambda ms: any(m.key() == site.encode() for m in ms),
    )
    (msg,) = [m for m in msgs if m.key() == site.encode()]
    envelope = json.loads(msg.value())
    assert envelope["body"].encode() == body
    assert envelope["source"] == "realgeeks" and envelope["action"] == "created"
    assert envelope["message_id"] == "m-1"


def test_bad_signature_is_401_and_never_reaches_kafka(
    ingress: IngressProcess, kafka_bootstrap: str
) -> None:
    bad, good = unique("bad"), unique("good")
    bad_body = json.dumps({"action": "created", "site_uuid": bad}).encode()
    assert send_realgeeks(ingress, bad_body, secret="not-the-secret") == 401
    good_body = json.dumps({"action": "created", "site_uuid": good}).encode()
    assert send_realgeeks(ingress, good_body) == 200
    # The 200 means Kafka has the good one; a published bad one would be there before it.
    # Read every partition for a few seconds rather than stopping at the first match.
    msgs = drain(kafka_bootstrap, raw_topic(ingress), timeout=5)
    assert {m.key() for m in msgs} == {good.encode()}
    _, _, text = get(f"{ingress.url}/metrics")
    assert 'realgeeks_signature_failures_total{source="realgeeks"} 1.0' in text.decode()


def test_health_and_metrics(ingress: IngressProcess) -> None:
    status, content_type, body = get(f"{ingress.url}/health")
    assert status == 200
    report = json.loads(body)
    assert report["status"] == "ok" and report["checks"]["kafka"]["status"] == "ok"
    assert (
        send_realgeeks(ingress, json.dumps({"action": "created", "site_uuid": "s"}).encode()) == 200
    )
    status, content_type, body = get(f"{ingress.url}/metrics")
    assert status == 200 and content_type.startswith("text/plain; version=0.0.4")
    assert (
        'realgeeks_webhooks_received_total{action="created",source="realgeeks"} 1.0'
        in body.decode()
    )
    # Collections are timed (app/core/gc_tuning.py): start-up's made some young ones.
    young = re.search(
        r'^realgeeks_gc_pause_seconds_count\{generation="0"\} (\S+)$', body.decode(), re.MULTILINE
    )
    assert young is not None and float(young.group(1)) > 0


def test_accepts_webhooks_with_no_worker_then_a_worker_processes_them(
    ingress: IngressProcess, kafka_bootstrap: str, tmp_path: Path
) -> None:
    site = unique("site")
    early = [lead(site) for _ in range(3)]
    # No worker exists yet for this app id: the ingress alone answers.
    for body in early:
        assert send_realgeeks(ingress, body, action="created", message_id=body["id"]) == 200
    env = {
        **ingress.env,
        "RGSYNC_WEB_PORT": str(free_port()),
        "RGSYNC_DATA_DIR": str(tmp_path / "worker-data"),
    }
    worker = Worker(env=env, log_path=tmp_path / "worker.log")
    try:
        worker.start()
        late = lead(site)
        assert send_realgeeks(ingress, late, action="created", message_id=late["id"]) == 200
        wanted = {b["id"] for b in [*early, late]}
        events = outputs(
            kafka_bootstrap,
            worker,
            "leads.normalized",
            count=len(wanted),
            timeout=60,
            match=lambda e: e["source_lead_id"] in wanted,
        )
        assert {e["source_lead_id"] for e in events} == wanted
        assert all(e["op"] == "created" and e["site_uuid"] == site for e in events)
    finally:
        worker.stop()


def test_sigterm_stops_cleanly(ingress: IngressProcess) -> None:
    assert (
        send_realgeeks(ingress, json.dumps({"action": "created", "site_uuid": "s"}).encode()) == 200
    )
    ingress.stop(timeout=20)
    assert ingress.proc is not None and ingress.proc.returncode == 0, ingress.tail()
    assert '"ingress stopped"' in ingress.log_path.read_text()
