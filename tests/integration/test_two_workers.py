"""Two workers share the partitions: decisions stay right, either answers inspection and /ui/."""

from __future__ import annotations

import http.server
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ops.testkit.support import Worker, free_port, unique, worker_env
from realgeeks_sync.app.core.settings import Secret
from realgeeks_sync.app.operations.internal_auth import forwarding_key, sign_forwarded
from realgeeks_sync.app.streaming.partitioning import site_partition
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


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *_args: Any, **_kwargs: Any) -> None:
        return None  # a 303 is an answer to look at, not to follow


_NO_REDIRECTS = urllib.request.build_opener(_NoRedirect)
_HOP_BY_HOP = {"connection", "content-length", "date", "server", "transfer-encoding"}


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
                    with _NO_REDIRECTS.open(req, timeout=10) as r:
                        status, body, answer = r.status, r.read(), r.headers
                except urllib.error.HTTPError as err:
                    status, body, answer = err.code, err.read(), err.headers
                self.send_response(status)
                # b's own headers (content type, cache and framing rules), as b sent them.
                for name, value in answer.items():
                    if name.lower() not in _HOP_BY_HOP:
                        self.send_header(name, value)
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


def two_workers(
    start_worker: Callable[..., Worker], kafka_bootstrap: str, tmp_path: Path
) -> tuple[Worker, Worker, RecordingProxy]:
    """Workers a and b in one group, b behind a RecordingProxy at its internal URL, returned
    once both own partitions and the split has held for a few seconds."""
    env = worker_env(kafka_bootstrap, tmp_path, RGSYNC_ADMIN_TOKEN="tok", RGSYNC_PARTITIONS="4")
    a = start_worker(env=env)
    b_port = free_port()  # not a's port + 1: that one may be taken by another process
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
    return a, b, proxy


def test_two_workers_decide_correctly_and_route_inspection(
    start_worker: Callable[..., Worker], kafka_bootstrap: str, tmp_path: Path
) -> None:
    a, b, proxy = two_workers(start_worker, kafka_bootstrap, tmp_path)
    # Sites on both workers' partitions: eight random ones all land on a's three of four
    # partitions one run in ten, and then nothing is routed to b.
    sites = sites_on(held_partitions(a), 4) + sites_on(held_partitions(b), 4)
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


# -- the /ui/ pages across two workers -------------------------------------------------

KEY = forwarding_key(None, Secret("tok"))  # what both workers derive from the admin token


def fetch(
    url: str, token: str | None = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], str]:
    """GET without following redirects: status, headers and text."""
    sent = {**(headers or {}), **({"Authorization": f"Bearer {token}"} if token else {})}
    try:
        with _NO_REDIRECTS.open(urllib.request.Request(url, headers=sent), timeout=15) as r:
            return r.status, dict(r.headers.items()), r.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers.items()), err.read().decode()


def signed(path_qs: str, key: bytes | None = KEY) -> dict[str, str]:
    """The headers a worker sends when it forwards ``path_qs`` (signed with ``key``)."""
    assert key is not None
    return sign_forwarded(key, "GET", path_qs, "http://127.0.0.1:1", time.time())


def held_partitions(w: Worker) -> set[int]:
    """The partitions a worker answers for: one dialer switch per partition it holds."""
    path = "/ui/internal/summary"
    status, _, text = fetch(f"{w.url}{path}", headers=signed(path))
    assert status == 200, (status, text)
    return {e["partition"] for e in json.loads(text) if e.get("switch") == "all_sites"}


def sites_on(partitions: set[int], count: int) -> list[str]:
    """New site ids whose partition (Kafka's murmur2 of the site) is among ``partitions``."""
    found: list[str] = []
    while len(found) < count:
        site = unique("site")
        if site_partition(site, 4) in partitions:
            found.append(site)
    return found


def poll(what: str, check: Callable[[], bool], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not in {timeout:.0f}s: {what}")
        time.sleep(0.5)


def test_ui_lead_page_at_the_owner_and_dashboard_and_search_from_every_worker(
    start_worker: Callable[..., Worker], kafka_bootstrap: str, tmp_path: Path
) -> None:
    a, b, proxy = two_workers(start_worker, kafka_bootstrap, tmp_path)
    held = {a.port: held_partitions(a), b.port: held_partitions(b)}
    # What the pages say each worker holds is what its consumer was assigned.
    assert held[a.port].isdisjoint(held[b.port]) and held[a.port] | held[b.port] == set(range(4))
    for w in (a, b):
        assert len(held[w.port]) == _health(w)["checks"]["assigned_partitions"], held
    email = f"{unique('shared')}@example.com"  # one person, a lead on each of four sites
    leads: dict[int, list[dict[str, str]]] = {}
    for owner in (a, b):
        leads[owner.port] = []
        for site in sites_on(held[owner.port], 2):
            lead = {
                "site_uuid": site,
                "id": unique("l"),
                "email": email,
                "first_name": "Noelani",
                "last_name": unique("Kahale"),
                "source": "Web",
            }
            leads[owner.port].append(lead)
            # Sent to the other worker: the webhook's own route is by partition, too.
            assert send_realgeeks(b if owner is a else a, lead, action="created") == 200
    every = leads[a.port] + leads[b.port]
    for lead in every:
        url = f"{a.url}/tables/leads/{lead['site_uuid']}/{lead['id']}"
        poll(f"lead {lead['id']} stored", lambda url=url: get(url, "tok")[0] == 200, 180)

    # (a) The lead page of a lead held by the other worker: forwarded, signed, and answered
    # with that lead's own content, with the owner's security headers.
    for asked, other in ((a, b), (b, a)):
        for lead in leads[other.port]:
            path = f"/ui/leads/{lead['site_uuid']}/{lead['id']}"
            status, headers, text = fetch(asked.url + path, "tok")
            assert status == 200, (asked.url, path, status, text[:300])
            assert f"Noelani {lead['last_name']}" in text and lead["id"] in text
            assert headers.get("X-Frame-Options") == "DENY", headers
            assert headers.get("Cache-Control") == "no-store", headers
            assert "frame-ancestors 'none'" in headers.get("Content-Security-Policy", "")
            assert headers.get("Content-Type", "").startswith("text/html"), headers
    to_b = [r["path"].split("?")[0] for r in proxy.requests]
    for lead in leads[b.port]:
        assert f"/ui/leads/{lead['site_uuid']}/{lead['id']}" in to_b, to_b
    assert all("Authorization" not in r for r in proxy.requests)
    # Without the token the page is the login form, from either worker, whoever holds it.
    for w in (a, b):
        lead = leads[b.port][0]
        status, headers, text = fetch(f"{w.url}/ui/leads/{lead['site_uuid']}/{lead['id']}")
        assert status == 303 and headers["Location"].startswith("/ui/login"), status
        assert lead["last_name"] not in text

    # (b) The dashboard and the search, asked of either worker, hold both workers' sites.
    for w in (a, b):
        poll(
            f"every site on {w.url}'s dashboard",
            lambda w=w: all(lead["site_uuid"] in fetch(f"{w.url}/ui/", "tok")[2] for lead in every),
        )
        status, _, text = fetch(f"{w.url}/ui/search?q={urllib.parse.quote(email)}", "tok")
        assert status == 200, (status, text[:300])
        for lead in every:
            assert f"/ui/leads/{lead['site_uuid']}/{lead['id']}" in text
            assert f"Noelani {lead['last_name']}" in text
        # One lead by its Real Geeks id, held by the other worker: straight to its page.
        for lead in leads[b.port if w is a else a.port]:
            status, headers, _ = fetch(f"{w.url}/ui/search?q={lead['id']}", "tok")
            assert status == 303, status
            assert headers["Location"] == f"/ui/leads/{lead['site_uuid']}/{lead['id']}"

    # (c) The internal routes answer signed requests only: not a bare one, not the admin
    # token, not a made-up signature, not a key other than the workers', not another path's.
    search = f"/ui/internal/search?q={urllib.parse.quote(email)}"
    summary = "/ui/internal/summary"
    other_key = forwarding_key(None, Secret("not-the-token"))
    for w in (a, b):
        for path in (summary, search):
            refusals = {
                "unsigned": ({}, None),
                "the admin token": ({}, "tok"),
                "a made-up signature": (
                    {**signed(path), "X-Realgeeks-Sync-Signature": "0" * 64},
                    None,
                ),
                "another key": (signed(path, other_key), None),
                "another path's signature": (signed(summary if path == search else search), None),
                "an old signature": (
                    sign_forwarded(KEY, "GET", path, "http://127.0.0.1:1", time.time() - 600),
                    None,
                ),
            }
            for why, (headers, token) in refusals.items():
                status, _, text = fetch(w.url + path, token, headers)
                assert status in (401, 403), (w.url, path, why, status, text[:200])
                assert email not in text and "Kahale" not in text
            status, _, text = fetch(w.url + path, headers=signed(path))
            assert status == 200 and json.loads(text), (w.url, path)  # the control
    # A forwarded lead page wrongly signed shows nothing either: the login form without the
    # token, a refusal with it.
    lead = leads[b.port][0]
    path = f"/ui/leads/{lead['site_uuid']}/{lead['id']}?csrf=x&who=mallory"
    bad = signed(path, other_key)
    for w in (a, b):
        status, headers, text = fetch(w.url + path, None, bad)
        assert status == 303 and headers["Location"].startswith("/ui/login"), status
        assert lead["last_name"] not in text
        status, _, text = fetch(w.url + path, "tok", bad)
        assert status in (401, 403) and lead["last_name"] not in text, status
    proxy.close()
