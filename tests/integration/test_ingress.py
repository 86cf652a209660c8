"""POST /webhooks/realgeeks on a real worker and a real broker: accept, reject, keep bytes."""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from ops.testkit.contracts import check_and_delete
from ops.testkit.support import ROOT, Worker, drain, drain_json, unique, worker_env
from realgeeks_sync.app.ingress.signatures import sign_realgeeks

pytestmark = pytest.mark.integration

SECRET = "test-secret"


@pytest.fixture(scope="module")
def worker(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Worker]:
    tmp = tmp_path_factory.mktemp("ingress")
    env = worker_env(
        kafka_bootstrap,
        tmp,
        RGSYNC_REALGEEKS_SECRETS=f"{SECRET},seekrit",
        RGSYNC_MAX_BODY_BYTES="4096",
        RGSYNC_CLIENT_RATE_PER_S="20",
        RGSYNC_CLIENT_BURST="20",
        RGSYNC_TRUST_FORWARDED_FOR="true",
    )
    w = Worker(env=env, log_path=tmp / "worker.log").start()
    yield w
    w.stop()
    # A module's worker outlives each test's check (tests/conftest.py): check it here.
    check_and_delete([env["RGSYNC_TOPIC_PREFIX"]], [(kafka_bootstrap, None)])


def raw_topic(w: Worker) -> str:
    return w.env["RGSYNC_TOPIC_PREFIX"] + "realgeeks.webhooks.raw"


def post(
    w: Worker, body: bytes, headers: dict[str, str], client: str | None = None
) -> tuple[int, dict[str, str], bytes]:
    headers = {
        "Content-Type": "application/json",
        "X-Forwarded-For": client or unique("c"),
        **headers,
    }
    req = urllib.request.Request(
        f"{w.url}/webhooks/realgeeks", data=body, headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(req, timeout=15) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def signed(body: bytes, secret: str = SECRET, **extra: str) -> dict[str, str]:
    return {"X-Lead-Router-Signature": sign_realgeeks(secret, body), **extra}


def test_readme_quick_start_lands_byte_for_byte(worker: Worker, kafka_bootstrap: str) -> None:
    """The README's curl line, run as written: openssl signs, curl sends, bytes on the topic."""
    readme = (ROOT / "README.md").read_text()
    block = readme.split("Send it a signed webhook", 1)[1].split("\n## ", 1)[0]
    script = "\n".join(line[4:] for line in block.splitlines() if line.startswith("    "))
    assert "openssl dgst -sha256 -hmac" in script and "curl" in script
    script = script.replace("http://127.0.0.1:6066", worker.url).replace(
        "curl -i", "curl -s -o /dev/null -w '%{http_code}'"
    )
    env = {**os.environ, "RGSYNC_REALGEEKS_SECRETS": SECRET}
    out = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, check=True, env=env
    )
    assert out.stdout == "200"
    body = '{"test":"data"}'
    records = drain_json(
        kafka_bootstrap,
        raw_topic(worker),
        until=lambda ms: any(json.loads(m.value())["body"] == body for m in ms),
    )
    mine = [r for r in records if r["body"] == body]
    assert mine and mine[0]["action"] == "created" and mine[0]["message_id"] == "1"


def test_real_geeks_fixture_accepted_with_rotated_secret(
    worker: Worker, kafka_bootstrap: str, realgeeks_fixture: dict[str, Any]
) -> None:
    body = realgeeks_fixture["body"]
    status, _, resp = post(
        worker, body, {"X-Lead-Router-Signature": realgeeks_fixture["signature"]}
    )
    assert status == 200, resp
    message_id = json.loads(resp)["message_id"]
    msgs = drain(
        kafka_bootstrap,
        raw_topic(worker),
        until=lambda ms: any(json.loads(m.value())["message_id"] == message_id for m in ms),
    )
    (msg,) = [m for m in msgs if json.loads(m.value())["message_id"] == message_id]
    envelope = json.loads(msg.value())
    assert envelope["body"].encode() == body  # trailing spaces and all
    assert envelope["action"] == "created"  # from the body: no header was sent
    assert msg.key() == b"5ead6dd1-2cb9-4f80-80fc-5716b05c90ba"


def test_rejections_never_reach_kafka(worker: Worker, kafka_bootstrap: str) -> None:
    marker = unique("marker")
    good = json.dumps({"action": "created", "id": marker}).encode()
    cases: list[tuple[bytes, dict[str, str], int]] = [
        (good, {}, 401),  # no signature
        (good, {"X-Lead-Router-Signature": "0" * 64}, 401),  # wrong signature
        (good, {"X-Lead-Router-Signature": "nothex"}, 401),  # malformed
        (good, signed(good, "removed-old-secret"), 401),  # rotated out
        (b"x" * 5000, signed(b"x" * 5000), 413),  # over the limit
        (b"not json", signed(b"not json"), 400),  # signed non-JSON
        (b"[1]", signed(b"[1]"), 400),  # not an object
        (b'{"id": "no-action"}', signed(b'{"id": "no-action"}'), 400),  # no action
    ]
    for body, headers, expected in cases:
        status, _, resp = post(worker, body, headers)
        assert status == expected, (headers, resp)
        assert "error" in json.loads(resp)
    ok_body = json.dumps({"action": "created", "id": marker + "-ok"}).encode()
    assert post(worker, ok_body, signed(ok_body))[0] == 200
    records = drain_json(
        kafka_bootstrap,
        raw_topic(worker),
        until=lambda ms: any(marker + "-ok" in json.loads(m.value())["body"] for m in ms),
    )
    bodies = [r["body"] for r in records]
    assert any(marker + "-ok" in b for b in bodies)
    assert not any(marker in b and marker + "-ok" not in b for b in bodies)
    assert not any("no-action" in b or b.startswith("x") for b in bodies)


def test_flooding_client_is_limited_without_slowing_others(worker: Worker) -> None:
    flooder, other = unique("flood"), unique("calm")
    body = b'{"action":"unknown_action_for_flood"}'
    # Sent side by side, so a busy machine cannot stretch the flood past the refill.
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(
            pool.map(lambda _n: post(worker, body, signed(body), client=flooder), range(100))
        )
    elapsed = time.monotonic() - started
    statuses = [status for status, _headers, _body in answers]
    # Burst 20 plus 20/s of refill: never more accepted than that, the rest refused.
    assert statuses.count(200) <= 20 + 20 * elapsed + 2, (statuses.count(200), elapsed)
    limited = [headers for status, headers, _body in answers if status == 429]
    assert limited and all(int(h["Retry-After"]) >= 1 for h in limited)
    # Another client in the same second is not limited.
    assert [post(worker, body, signed(body), client=other)[0] for _ in range(5)] == [200] * 5


def test_unknown_action_is_kept_and_answered_200(worker: Worker, kafka_bootstrap: str) -> None:
    tag = unique("unk")
    body = json.dumps({"action": "lead_merged", "id": tag}).encode()
    assert post(worker, body, signed(body))[0] == 200
    records = drain_json(
        kafka_bootstrap,
        raw_topic(worker),
        until=lambda ms: any(tag in json.loads(m.value())["body"] for m in ms),
    )
    assert [r["action"] for r in records if tag in r["body"]] == ["lead_merged"]


def test_metrics_count_accepted_and_refused(worker: Worker) -> None:
    body = b'{"action":"created"}'
    post(worker, body, {"X-Lead-Router-Signature": "0" * 64})
    with urllib.request.urlopen(f"{worker.url}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    assert 'realgeeks_signature_failures_total{source="realgeeks"}' in text
    assert "realgeeks_webhooks_received_total" in text


def test_faust_builtin_table_pages_are_not_served(worker: Worker) -> None:
    for path in ("/table/", "/table/processed_messages/", "/router/"):
        try:
            urllib.request.urlopen(f"{worker.url}{path}", timeout=5)
            status = 200
        except urllib.error.HTTPError as err:
            status = err.code
        assert status == 404, path


def test_inspection_requires_a_token(worker: Worker) -> None:
    try:
        urllib.request.urlopen(f"{worker.url}/tables/processed/s/m", timeout=5)
        status = 200
    except urllib.error.HTTPError as err:
        status = err.code
    assert status in (401, 404)  # no RGSYNC_ADMIN_TOKEN here: disabled
