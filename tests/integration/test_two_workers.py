"""Two workers share the partitions: decisions stay right and either answers inspection."""

from __future__ import annotations

import http.server
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ops.testkit.support import Worker, unique, worker_env
from tests.integration.helpers import outputs, send_realgeeks

pytestmark = pytest.mark.integration


def get(url: str, token: str | None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as err:
        return err.code, None


def received_total(w: Worker) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"{w.url}/metrics", timeout=10) as r:
        text = r.read().decode()
    return sum(
        s.value
        for fam in text_string_to_metric_families(text)
        if fam.name == "realgeeks_webhooks_received"
        for s in fam.samples
        if s.name.endswith("_total")
    )


def _health(w: Worker) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(f"{w.url}/health", timeout=10) as r:
            return dict(json.loads(r.read()))
    except urllib.error.HTTPError as err:
        return dict(json.loads(err.read()))


class RecordingProxy:
    """Stands at worker b's internal URL: records what other workers send it, passes it on."""

    def __init__(self, target: str) -> None:
        self.requests: list[dict[str, str]] = []
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                proxy.requests.append({**dict(self.headers.items()), "path": self.path})
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                req = urllib.request.Request(target + self.path, headers=headers)
                try:
                    with urllib.request.urlopen(req, timeout=10) as r:
                        status, body = r.status, r.read()
                except urllib.error.HTTPError as err:
                    status, body = err.code, err.read()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: Any) -> None:
                return

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


def test_two_workers_decide_correctly_and_route_inspection(
    start_worker: Callable[..., Worker], kafka_bootstrap: str, tmp_path: Path
) -> None:
    env = worker_env(kafka_bootstrap, tmp_path, RGSYNC_ADMIN_TOKEN="tok", RGSYNC_PARTITIONS="4")
    a = start_worker(env=env)
    b_port = int(env["RGSYNC_WEB_PORT"]) + 1
    # b advertises an internal URL (RGSYNC_INTERNAL_URL): a proxy that shows what a sends.
    proxy = RecordingProxy(f"http://127.0.0.1:{b_port}")
    b = start_worker(
        env={**env, "RGSYNC_WEB_PORT": str(b_port), "RGSYNC_INTERNAL_URL": proxy.url},
        RGSYNC_DATA_DIR=str(tmp_path / "b"),
    )
    # Both workers own partitions before the load starts, and the split has held for a
    # few seconds (a worker finishing start-up can trigger one more rebalance).
    deadline = time.monotonic() + 90
    stable_since: float | None = None
    owned: list[int] = []
    while time.monotonic() < deadline:
        now_owned = [_health(w)["checks"]["assigned_partitions"] for w in (a, b)]
        settled = all(now_owned) and sum(now_owned) == 4
        if settled and now_owned == owned and stable_since is not None:
            if time.monotonic() - stable_since >= 4:
                break
        else:
            stable_since = time.monotonic() if settled else None
        owned = now_owned
        time.sleep(0.5)
    assert all(owned) and sum(owned) == 4, owned
    sites = [unique("site") for _ in range(8)]
    people = {}
    sent_to: dict[int, int] = {}
    for site in sites:
        first = {
            "site_uuid": site,
            "id": unique("l"),
            "email": f"p@{site}.example.com",
            "first_name": "Pat",
            "last_name": "Lee",
            "source": "Web",
        }
        second = {
            "site_uuid": site,
            "id": unique("l"),
            "email": f"P@{site}.EXAMPLE.com",
            "first_name": "Pat",
            "last_name": "Lee",
            "source": "Web",
        }
        people[site] = (first, second)
        for body in (first, second):
            target = a if len(people) % 2 else b
            assert send_realgeeks(target, body, action="created") == 200
            sent_to[target.port] = sent_to.get(target.port, 0) + 1
    events = outputs(kafka_bootstrap, a, "leads.normalized", count=16, timeout=180)
    assert len(events) == 16
    for site, (first, second) in people.items():
        by_id = {e["source_lead_id"]: e for e in events if e["site_uuid"] == site}
        assert by_id[first["id"]]["op"] == "created"
        assert by_id[second["id"]]["op"] == "merged"
        assert by_id[second["id"]]["lead_id"] == by_id[first["id"]]["lead_id"]
    # Any worker answers for any site (Faust routes to the owner); the token is required.
    for site, (first, second) in people.items():
        for w in (a, b):
            status, body = get(f"{w.url}/tables/leads/{site}/{second['id']}", "tok")
            assert status == 200 and body["lead_id"] == first["id"].lower()
        assert get(f"{a.url}/tables/leads/{site}/{second['id']}", None)[0] == 401
        assert get(f"{b.url}/tables/leads/{site}/{second['id']}", "wrong")[0] == 401
    # Each worker serves its own figures: neither overwrites nor absorbs the other's.
    assert received_total(a) == sent_to[a.port] and received_total(b) == sent_to[b.port]
    site = sites[0]
    status, found = get(f"{b.url}/tables/identity/{site}?email=p@{site}.example.com", "tok")
    assert status == 200 and found["lead_id"] == people[site][0]["id"].lower()
    # a reached b's sites through b's internal URL, signed, and never with the admin token.
    proxy.close()
    assert proxy.requests, "no inspection request was routed from a to b"
    for forwarded in proxy.requests:
        assert "Authorization" not in forwarded and "tok" not in forwarded.values()
        assert forwarded["X-Realgeeks-Sync-Signature"] and forwarded["X-Realgeeks-Sync-Timestamp"]
    # A signature is good for its own path only, and a made-up one for none.
    signed = {k: v for k, v in proxy.requests[0].items() if k.startswith("X-Realgeeks-Sync")}
    for path, headers in (
        (proxy.requests[0]["path"], {**signed, "X-Realgeeks-Sync-Signature": "0" * 64}),
        (f"/tables/processed/{site}/m-1", signed),
    ):
        req = urllib.request.Request(f"{b.url}{path}", headers=headers)
        try:
            urllib.request.urlopen(req, timeout=10)
            raise AssertionError(f"{path} answered without a token or a valid signature")
        except urllib.error.HTTPError as err:
            assert err.code == 401
