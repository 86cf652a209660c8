"""The ingress against hostile senders, over real HTTP without a broker (a fake publisher).

Bounded verification cost, bounded memory before authentication, a read timeout, and the
unsigned timestamp header clamped.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import given
from hypothesis import strategies as st

from realgeeks_sync.app.core.errors import IngressBusyError, PayloadTooLargeError
from realgeeks_sync.app.core.metrics import Metrics
from realgeeks_sync.app.core.settings import Settings
from realgeeks_sync.app.ingress import signatures as signatures_module
from realgeeks_sync.app.ingress.handlers import Ingress, read_body, standalone_app
from realgeeks_sync.app.ingress.pending_bodies import PendingBodies
from realgeeks_sync.app.ingress.signatures import sign_elevenlabs, sign_realgeeks

Client = TestClient[web.Request, web.Application]

NOW = 1_800_000_000.0


class FakePublisher:
    """Acknowledges every record at once and keeps it."""

    def __init__(self) -> None:
        self.records: list[tuple[str, str, bytes]] = []

    async def publish(self, topic: str, key: str, value: bytes) -> None:
        self.records.append((topic, key, value))


def settings(**env: str) -> Settings:
    return Settings.from_env(
        {
            "RGSYNC_REALGEEKS_SECRETS": "rg-secret",
            "RGSYNC_ELEVENLABS_SECRETS": "el-old,el-new",
            "RGSYNC_CLIENT_RATE_PER_S": "100000",
            "RGSYNC_CLIENT_BURST": "100000",
            **env,
        }
    )


Start = Callable[..., Awaitable[tuple[Client, Ingress, FakePublisher]]]


@pytest.fixture
async def start() -> AsyncIterator[Start]:
    """Start an ingress on a test server; every client is closed afterwards."""
    clients: list[Client] = []

    async def make(
        clock: Callable[[], float] = lambda: NOW, **env: str
    ) -> tuple[Client, Ingress, FakePublisher]:
        publisher = FakePublisher()
        ingress = Ingress(settings(**env), publisher, Metrics(), clock=clock)
        client = TestClient(TestServer(standalone_app(ingress)))
        clients.append(client)
        await client.start_server()
        return client, ingress, publisher

    yield make
    for client in clients:
        await client.close()


async def post_realgeeks(client: Client, body: bytes, **headers: str) -> Any:
    """POST a Real Geeks webhook signed with the test secret (action: created)."""
    return await client.post(
        "/webhooks/realgeeks",
        data=body,
        headers={
            "X-Lead-Router-Signature": sign_realgeeks("rg-secret", body),
            "X-Lead-Router-Action": "created",
            **headers,
        },
    )


def metric(ingress: Ingress, name: str, **labels: str) -> float:
    value = ingress.metrics.registry.get_sample_value(name, labels or None)
    return value or 0.0


# Finding 1: verification cost


async def test_large_bodies_are_hashed_off_the_event_loop(
    start: Start, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, _ingress, publisher = await start()
    threads: list[str] = []
    real_mac = signatures_module._mac

    def recording_mac(secret: str, *parts: bytes) -> str:
        threads.append(threading.current_thread().name)
        return real_mac(secret, *parts)

    small = json.dumps({"type": "post_call_transcription", "data": {}}).encode()
    large = json.dumps(
        {"type": "post_call_audio", "data": {"full_audio": "A" * (2 * 1024 * 1024)}}
    ).encode()
    signed = [(body, sign_elevenlabs("el-new", body, int(NOW))) for body in (small, large)]
    monkeypatch.setattr(signatures_module, "_mac", recording_mac)
    for body, signature in signed:
        resp = await client.post(
            "/webhooks/elevenlabs", data=body, headers={"ElevenLabs-Signature": signature}
        )
        assert resp.status == 200
    main = threading.main_thread().name
    # Two secrets each: the small body on the loop's thread, the large one elsewhere.
    assert threads[:2] == [main, main]
    assert len(threads) == 4 and main not in threads[2:]
    assert len(publisher.records) == 1  # post_call_audio is answered, not kept


async def test_the_issues_signature_header_is_refused_without_hashing(
    start: Start, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, ingress, publisher = await start()
    calls: list[int] = []
    monkeypatch.setattr(signatures_module, "_mac", lambda *_a: calls.append(1) or "")
    body = b"{" + b" " * (4 * 1024 * 1024) + b"}"
    header = f"t={int(NOW)}," + ",".join(["v0="] * 2000)
    resp = await client.post(
        "/webhooks/elevenlabs", data=body, headers={"ElevenLabs-Signature": header}
    )
    assert resp.status == 401
    assert calls == [] and publisher.records == []
    assert metric(ingress, "realgeeks_signature_failures_total", source="elevenlabs") == 1


async def test_a_malformed_signature_is_refused_before_the_body_is_read(start: Start) -> None:
    client, _ingress, _publisher = await start()

    async def endless() -> AsyncIterator[bytes]:
        # A chunked body that would never end: only an answer before reading it returns.
        while True:
            yield b" " * 65536

    resp = await client.post(
        "/webhooks/realgeeks",
        data=endless(),
        headers={"X-Lead-Router-Signature": "not-hex"},
    )
    assert resp.status == 401


async def test_a_valid_realgeeks_webhook_still_passes(start: Start) -> None:
    client, _ingress, publisher = await start()
    body = json.dumps({"site_uuid": "s1", "id": "l1"}).encode()
    resp = await post_realgeeks(client, body)
    assert resp.status == 200
    assert [(t, k) for t, k, _v in publisher.records] == [("realgeeks.webhooks.raw", "s1")]


# Finding 2: memory held before authentication, and the read timeout


async def _open_body(client: Client, path: str, headers: dict[str, str], first: bytes) -> Any:
    """Send a request's headers and the first bytes of its body, and leave it open."""
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    lines = [f"POST {path} HTTP/1.1", f"Host: {client.server.host}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + first)
    await writer.drain()
    return reader, writer


async def _status(reader: asyncio.StreamReader) -> int:
    line = await asyncio.wait_for(reader.readline(), timeout=10)
    return int(line.split()[1])


async def test_unauthenticated_bodies_in_flight_are_bounded_with_503_and_retry_after(
    start: Start,
) -> None:
    budget = 16 * 1024 * 1024  # the smallest budget allowed: one ElevenLabs body
    client, ingress, _publisher = await start(RGSYNC_MAX_PENDING_BODY_BYTES=str(budget))
    # Someone starts a body of the whole budget and sends it slowly.
    _reader, writer = await _open_body(
        client,
        "/webhooks/elevenlabs",
        {
            "Content-Length": str(budget),
            "ElevenLabs-Signature": f"t={int(NOW)},v0={'0' * 64}",
        },
        b"{",
    )
    try:
        await asyncio.sleep(0.2)
        assert ingress.pending.held_bytes == budget
        body = json.dumps({"site_uuid": "s1", "id": "l1"}).encode()
        resp = await post_realgeeks(client, body)
        assert resp.status == 503
        assert int(resp.headers["Retry-After"]) >= 1
        assert "in flight" in (await resp.json())["error"]
        assert (
            metric(ingress, "realgeeks_webhooks_rejected_total", source="realgeeks", status="503")
            == 1
        )
    finally:
        writer.close()
    # The slow sender gone, its bytes are given back and the same webhook passes.
    for _ in range(50):
        if ingress.pending.held_bytes == 0:
            break
        await asyncio.sleep(0.05)
    assert ingress.pending.held_bytes == 0
    resp = await post_realgeeks(client, body)
    assert resp.status == 200


async def test_a_body_that_does_not_arrive_in_time_is_answered_408(start: Start) -> None:
    client, ingress, publisher = await start(RGSYNC_BODY_READ_TIMEOUT_S="0.5")
    reader, writer = await _open_body(
        client,
        "/webhooks/realgeeks",
        {"Content-Length": "1000", "X-Lead-Router-Signature": "0" * 64},
        b'{"site_uuid":',
    )
    try:
        assert await _status(reader) == 408
    finally:
        writer.close()
    assert publisher.records == [] and ingress.pending.held_bytes == 0


def test_a_hold_is_given_back_whatever_happens() -> None:
    budget = PendingBodies(100, retry_after_s=3)
    with pytest.raises(RuntimeError), budget.hold() as hold:
        hold.grow_to(60)
        hold.grow_to(40)  # smaller: nothing changes
        assert budget.held_bytes == 60
        raise RuntimeError("handler failed")
    assert budget.held_bytes == 0
    with budget.hold() as first:
        first.grow_to(100)
        with budget.hold() as second, pytest.raises(IngressBusyError) as busy:
            second.grow_to(1)
        assert busy.value.retry_after == 3 and busy.value.status == 503
    assert budget.held_bytes == 0


# Finding 3: the unsigned timestamp header


async def test_a_future_timestamp_is_replaced_by_receipt_time_and_counted(start: Start) -> None:
    client, ingress, publisher = await start(RGSYNC_TIMESTAMP_MAX_SKEW_S="60")
    body = json.dumps({"site_uuid": "s1", "id": "l1"}).encode()
    for sent in ("2999-01-01T00:00:00Z", "2020-01-01T00:00:00Z"):
        resp = await post_realgeeks(
            client, body, **{"X-Lead-Router-Action": "updated", "X-Lead-Router-Timestamp": sent}
        )
        assert resp.status == 200
    future, past = (json.loads(value) for _t, _k, value in publisher.records)
    assert future["timestamp"] == future["received_at"] == "2027-01-15T08:00:00Z"
    assert past["timestamp"] == "2020-01-01T00:00:00Z"
    assert metric(ingress, "realgeeks_future_timestamps_total", source="realgeeks") == 1


class _Content:
    """aiohttp's StreamReader as read_body uses it: all here (EOF) or handed over in chunks."""

    def __init__(self, chunks: list[bytes], *, eof: bool) -> None:
        self.chunks = list(chunks)
        self.eof = eof

    def is_eof(self) -> bool:
        return self.eof

    def read_nowait(self) -> bytes:
        body, self.chunks = b"".join(self.chunks), []
        return body

    async def read(self, _n: int) -> bytes:
        return self.chunks.pop(0) if self.chunks else b""


@pytest.mark.parametrize("eof", [True, False], ids=["all-here", "in-chunks"])
async def test_a_body_is_counted_and_limited_alike_whether_all_here_or_in_chunks(
    eof: bool,
) -> None:
    def request(chunks: list[bytes]) -> Any:
        return SimpleNamespace(content_length=None, content=_Content(chunks, eof=eof))

    budget = PendingBodies(100)
    with budget.hold() as hold:
        body = await read_body(request([b"abc", b"defg"]), 10, hold=hold)
        assert body == b"abcdefg" and hold.bytes == 7 and budget.held_bytes == 7
    with budget.hold() as hold, pytest.raises(PayloadTooLargeError):
        await read_body(request([b"abcdef", b"ghijk"]), 10, hold=hold)
    assert budget.held_bytes == 0
    with budget.hold() as hold, pytest.raises(IngressBusyError):
        await read_body(request([b"x" * 60, b"x" * 60]), 200, hold=hold)


# Receipt times: written by hand, the date and time once a second.


@given(
    st.lists(
        st.floats(min_value=-1e10, max_value=1e10)
        | st.integers(0, 4_000_000_000).map(float)
        | st.integers(0, 4 * 10**15).map(lambda us: us / 1e6)
        | st.sampled_from([NOW + 0.5e-6, NOW + 1.5e-6, NOW + 0.9999995, NOW - 0.9999995]),
        max_size=20,
    )
)
def test_receipt_times_are_written_as_datetime_writes_them(stamps: list[float]) -> None:
    now = iter(stamps)
    ingress = Ingress(settings(), FakePublisher(), Metrics(), received_clock=lambda: next(now))
    for stamp in stamps:  # in turn: a second written once serves the next stamps
        expected = datetime.fromtimestamp(stamp, UTC).isoformat().replace("+00:00", "Z")
        assert ingress._received_at() == expected
