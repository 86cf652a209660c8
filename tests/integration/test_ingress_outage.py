"""The ingress with the broker away: never a 200 without Kafka's ack; recovery; fuzzing."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ops.testkit.contracts import check_and_delete
from ops.testkit.support import LocalBroker, drain_json, unique
from realgeeks_sync.app.core.metrics import Metrics
from realgeeks_sync.app.core.settings import Settings
from realgeeks_sync.app.ingress.handlers import Ingress, standalone_app
from realgeeks_sync.app.ingress.signatures import sign_realgeeks
from realgeeks_sync.app.streaming.publisher import KafkaPublisher
from tests.strategies import json_values

pytestmark = pytest.mark.integration

SECRET = "s3cret"


def _settings(bootstrap: str, **extra: str) -> Settings:
    env = {
        "RGSYNC_REALGEEKS_SECRETS": SECRET,
        "RGSYNC_KAFKA_URL": f"kafka://{bootstrap}",
        "RGSYNC_TOPIC_PREFIX": unique("o") + ".",
        "RGSYNC_PUBLISH_TIMEOUT_S": "2",
        "RGSYNC_CLIENT_RATE_PER_S": "100000",
        "RGSYNC_CLIENT_BURST": "100000",
        **extra,
    }
    return Settings.from_env(env)


async def _client(
    settings: Settings,
) -> tuple[TestClient[web.Request, web.Application], KafkaPublisher]:
    publisher = KafkaPublisher(settings.bootstrap_servers, timeout_s=settings.publish_timeout_s)
    client = TestClient(TestServer(standalone_app(Ingress(settings, publisher, Metrics()))))
    await client.start_server()
    return client, publisher


@pytest.fixture(scope="module")
def fuzz_settings(kafka_bootstrap: str) -> Iterator[Settings]:
    """One deployment for every fuzz example; its topics exist, as no broker auto-creates."""
    from realgeeks_sync.app.streaming.topics import ensure_topics

    settings = _settings(kafka_bootstrap)
    ensure_topics(settings)
    yield settings
    # A module's topics outlive each test's check (tests/conftest.py): check them here.
    check_and_delete([settings.topic_prefix], [(kafka_bootstrap, None)])


@pytest.fixture
async def second_broker() -> AsyncIterator[LocalBroker]:
    """Ports where a second local broker can be started and stopped by the test."""
    broker = LocalBroker.on_free_ports()
    yield broker
    broker.run("stop")


async def test_broker_down_is_503_then_200_after_it_returns(second_broker: LocalBroker) -> None:
    settings = _settings(second_broker.bootstrap)
    client, publisher = await _client(settings)
    body = json.dumps({"action": "created", "site_uuid": "site-outage", "id": unique()}).encode()
    headers = {
        "X-Lead-Router-Signature": sign_realgeeks(SECRET, body),
        "X-Lead-Router-Message-Id": "outage-1",
    }
    try:
        for _ in range(2):
            resp = await client.post("/webhooks/realgeeks", data=body, headers=headers)
            assert resp.status == 503
            assert int(resp.headers["Retry-After"]) >= 1
        started = second_broker.run("start")
        assert started.returncode == 0, started.stderr
        # The topic does not exist yet on the new broker: create it like the worker does.
        from realgeeks_sync.app.streaming.topics import ensure_topics

        ensure_topics(settings)
        status = 0
        deadline = time.monotonic() + 60  # a JVM starting on a busy machine
        while time.monotonic() < deadline:
            resp = await client.post("/webhooks/realgeeks", data=body, headers=headers)
            status = resp.status
            if status == 200:
                break
        assert status == 200
        records = drain_json(
            settings.bootstrap_servers,
            settings.topic("realgeeks.webhooks.raw"),
            until=lambda ms: len(ms) >= 1,
            timeout=20,
        )
        assert any(r["message_id"] == "outage-1" and r["body"].encode() == body for r in records)
    finally:
        await client.close()
        publisher.close(timeout_s=1)


_json_values = json_values(text=20, keys=10, items=4, entries=4, leaves=12)

_header_text = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    body=st.one_of(st.binary(max_size=300), _json_values.map(lambda v: json.dumps(v).encode())),
    sign=st.booleans(),
    action=st.one_of(st.none(), _header_text),
    message_id=st.one_of(st.none(), _header_text),
    timestamp=st.one_of(st.none(), _header_text),
)
def test_fuzz_no_500_for_anything_a_sender_can_send(
    fuzz_settings: Settings,
    body: bytes,
    sign: bool,
    action: str | None,
    message_id: str | None,
    timestamp: str | None,
) -> None:
    import asyncio

    async def run() -> int:
        client, publisher = await _client(fuzz_settings)
        try:
            headers = {}
            if sign:
                headers["X-Lead-Router-Signature"] = sign_realgeeks(SECRET, body)
            for name, value in (
                ("X-Lead-Router-Action", action),
                ("X-Lead-Router-Message-Id", message_id),
                ("X-Lead-Router-Timestamp", timestamp),
            ):
                if value is not None:
                    headers[name] = value
            resp = await client.post("/webhooks/realgeeks", data=body, headers=headers)
            return resp.status
        finally:
            await client.close()
            publisher.close(timeout_s=5)

    status = asyncio.run(run())
    assert status in (200, 400, 401), status
    if not sign:
        assert status == 401


async def test_a_fatal_error_replaces_a_real_producer_and_webhooks_are_accepted_after(
    fuzz_settings: Settings,
) -> None:
    # librdkafka cannot be made to fail fatally from Python: its error callback is given the
    # fatal error it would report, so the replacement (a new librdkafka producer, purge and
    # flush of the old one on the poll thread) runs on the real client and broker.
    import asyncio

    from confluent_kafka import KafkaError

    client, publisher = await _client(fuzz_settings)

    async def post(message_id: str) -> int:
        body = json.dumps({"action": "created", "site_uuid": "site-fatal", "id": unique()})
        resp = await client.post(
            "/webhooks/realgeeks",
            data=body.encode(),
            headers={
                "X-Lead-Router-Signature": sign_realgeeks(SECRET, body.encode()),
                "X-Lead-Router-Message-Id": message_id,
            },
        )
        return resp.status

    try:
        assert await post(unique("before")) == 200
        old = publisher._producer
        publisher._config["error_cb"](
            KafkaError(KafkaError._FATAL, "out of order sequence number", fatal=True)
        )
        deadline = time.monotonic() + 10
        while publisher.replacements == 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert publisher.replacements == 1 and publisher._producer is not old
        assert await post(unique("after")) == 200
    finally:
        await client.close()
        publisher.close(timeout_s=1)
