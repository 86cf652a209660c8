"""The standalone ingress process without a broker: health probe, routes, CLI exit codes."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Callable
from contextlib import closing

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from confluent_kafka import KafkaError, KafkaException

from ops.testkit.support import free_port
from realgeeks_sync.app.cli import main
from realgeeks_sync.app.core.settings import Settings
from realgeeks_sync.app.ingress import server as ingress_server
from realgeeks_sync.app.ingress.server import build_ingress_app
from realgeeks_sync.app.streaming.kafka_probe import KafkaProbe
from realgeeks_sync.app.streaming.publisher import KafkaPublisher

SECRET = "unit-secret"

Client = TestClient[web.Request, web.Application]


def _down() -> int:
    raise KafkaException(KafkaError(KafkaError._TRANSPORT))


def _settings(**extra: str) -> Settings:
    # A port nobody listens on: these tests must not need (or find) a broker.
    return Settings.from_env(
        {
            "RGSYNC_REALGEEKS_SECRETS": SECRET,
            "RGSYNC_KAFKA_URL": f"kafka://127.0.0.1:{free_port()}",
            **extra,
        }
    )


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_probe_asks_the_broker_at_most_once_per_ttl() -> None:
    calls: list[int] = []

    def check() -> int:
        calls.append(1)
        return 3

    clock = FakeClock()
    probe = KafkaProbe(check, ttl_s=5.0, clock=clock)
    assert await probe.status() == {"status": "ok", "brokers": 3}
    clock.now += 4.9
    await probe.status()
    assert len(calls) == 1
    clock.now += 0.2
    await probe.status()
    assert len(calls) == 2


async def test_probe_reports_an_unreachable_broker_as_down() -> None:
    assert await KafkaProbe(_down).status() == {"status": "down", "error": "KafkaException"}
    real = KafkaProbe.for_settings(_settings(), timeout_s=0.5)
    assert (await real.status())["status"] == "down"


@pytest.fixture
async def client_for() -> AsyncIterator[Callable[[KafkaProbe], Client]]:
    """Ingress apps with a given Kafka probe; clients and publishers closed afterwards."""
    clients: list[Client] = []
    publishers: list[KafkaPublisher] = []

    def make(probe: KafkaProbe) -> Client:
        web_app, publisher = build_ingress_app(_settings(), kafka_probe=probe)
        publishers.append(publisher)
        client = TestClient(TestServer(web_app))
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()
    for publisher in publishers:
        publisher.close(timeout_s=1)


async def test_health_is_200_when_kafka_answers_and_503_when_not(
    client_for: Callable[[KafkaProbe], Client],
) -> None:
    up = client_for(KafkaProbe(lambda: 1))
    await up.start_server()
    resp = await up.get("/health")
    assert resp.status == 200
    report = await resp.json()
    assert report["status"] == "ok" and report["checks"]["kafka"]["status"] == "ok"

    down = client_for(KafkaProbe(_down))
    await down.start_server()
    resp = await down.get("/health")
    assert resp.status == 503
    report = await resp.json()
    assert report["status"] == "down" and report["checks"]["kafka"]["status"] == "down"
    assert report["reasons"]


async def test_routes_webhooks_and_metrics(
    client_for: Callable[[KafkaProbe], Client],
) -> None:
    client = client_for(KafkaProbe(lambda: 1))
    await client.start_server()
    # A bad signature is refused before any publish, so no broker is needed.
    resp = await client.post(
        "/webhooks/realgeeks",
        data=b'{"action":"created"}',
        headers={"X-Lead-Router-Signature": "0" * 64},
    )
    assert resp.status == 401
    resp = await client.get("/metrics")
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    text = await resp.text()
    assert 'realgeeks_signature_failures_total{source="realgeeks"} 1.0' in text
    assert (await client.post("/webhooks/elevenlabs", data=b"{}")).status == 503  # no secret


def test_cli_exits_3_with_one_line_when_kafka_is_unreachable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RGSYNC_REALGEEKS_SECRETS", SECRET)
    monkeypatch.setattr(ingress_server, "ensure_topics", lambda _settings: _down())
    monkeypatch.setattr(ingress_server, "configure_logging", lambda *_: None)
    with pytest.raises(SystemExit) as exited:
        main(["ingress"])
    assert exited.value.code == 3
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "cannot reach Kafka" in lines[0]


def test_cli_exits_2_when_the_port_is_taken(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        monkeypatch.setenv("RGSYNC_REALGEEKS_SECRETS", SECRET)
        monkeypatch.setenv("RGSYNC_KAFKA_URL", f"kafka://127.0.0.1:{free_port()}")
        monkeypatch.setenv("RGSYNC_WEB_HOST", "127.0.0.1")
        monkeypatch.setenv("RGSYNC_INGRESS_PORT", str(port))
        monkeypatch.setattr(ingress_server, "ensure_topics", lambda _settings: [])
        monkeypatch.setattr(ingress_server, "configure_logging", lambda *_: None)
        with pytest.raises(SystemExit) as exited:
            main(["ingress"])
    assert exited.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "RGSYNC_INGRESS_PORT" in lines[0]
