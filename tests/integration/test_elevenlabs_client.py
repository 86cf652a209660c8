"""ElevenLabsClient and the fake's post-call webhooks over real HTTP on 127.0.0.1 (no Kafka)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import random
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from ops.testkit.fakes.elevenlabs import (
    OUTBOUND_CALL_PATH,
    FakeElevenLabs,
    build_post_call_payload,
    sign_post_call,
)
from ops.testkit.support import free_port
from realgeeks_sync.app.clients.elevenlabs import ElevenLabsClient, OutboundCallResult
from realgeeks_sync.app.clients.retry import RetryPolicy, call_with_retries
from realgeeks_sync.app.core.errors import PermanentApiError, TransientApiError
from realgeeks_sync.app.domain.dialing.answers import answer_for_error

API_KEY = "sk_test_0123456789"
SECRET = "wsec_test"
TO_NUMBER = "+18085550123"
VARIABLES: dict[str, str | int | float | bool] = {
    "lead_id": "a27c20af4497415d9e4e7334dd1d40d2",
    "site_uuid": "5ead6dd1-2cb9-4f80-80fc-5716b05c90ba",
    "lead_first_name": "Ana",
    "is_returning": True,
}


class Reports:
    def __init__(self) -> None:
        self.items: list[tuple[str, str, float]] = []
        self.sleeps: list[float] = []
        self.now = 0.0

    def __call__(self, operation: str, status: str, seconds: float) -> None:
        self.items.append((operation, status, seconds))

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
async def fake() -> AsyncIterator[FakeElevenLabs]:
    async with FakeElevenLabs(api_key=API_KEY) as server:
        yield server


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client_session:
        yield client_session


@pytest.fixture
def reports() -> Reports:
    return Reports()


@pytest.fixture
def client(
    fake: FakeElevenLabs, session: aiohttp.ClientSession, reports: Reports
) -> ElevenLabsClient:
    return ElevenLabsClient(session, fake.url, API_KEY, timeout_s=2.0, on_request=reports)


async def start(client: ElevenLabsClient) -> OutboundCallResult:
    return await client.start_outbound_call(
        "agent_1", "phnum_1", TO_NUMBER, VARIABLES, user_id="a27c20af"
    )


class Receiver:
    """A webhook endpoint that checks the ElevenLabs signature the way the docs describe."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        parts = dict(
            p.split("=", 1) for p in request.headers["ElevenLabs-Signature"].split(",") if "=" in p
        )
        expected = hmac.new(
            SECRET.encode(), parts["t"].encode() + b"." + raw, hashlib.sha256
        ).hexdigest()
        if not hmac.compare_digest(expected, parts["v0"]):
            return web.Response(status=401)
        if abs(time.time() - int(parts["t"])) > 1800:
            return web.Response(status=401)
        self.received.append(json.loads(raw))
        return web.Response(text="ok")

    async def __aenter__(self) -> Receiver:
        app = web.Application()
        app.router.add_post("/webhooks/elevenlabs", self.handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self.runner.addresses[0][1]}/webhooks/elevenlabs"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


async def test_outbound_call_sends_the_documented_request(
    fake: FakeElevenLabs, client: ElevenLabsClient, reports: Reports
) -> None:
    before = time.monotonic()
    result = await start(client)

    (call,) = fake.calls
    assert result == OutboundCallResult(call.conversation_id, call.call_sid)
    assert result.conversation_id.startswith("conv_")
    assert call.to_number == TO_NUMBER
    assert call.dynamic_variables == VARIABLES
    assert call.user_id == "a27c20af"
    assert (call.agent_id, call.agent_phone_number_id) == ("agent_1", "phnum_1")
    assert before <= call.received_monotonic <= time.monotonic()
    (request,) = fake.requests
    assert request.path == OUTBOUND_CALL_PATH
    assert request.headers["xi-api-key"] == API_KEY
    assert [(op, status) for op, status, _ in reports.items] == [("start_outbound_call", "200")]


async def test_wrong_api_key_is_permanent_401(
    fake: FakeElevenLabs, session: aiohttp.ClientSession
) -> None:
    client = ElevenLabsClient(session, fake.url, "sk_wrong", timeout_s=2.0)
    with pytest.raises(PermanentApiError) as caught:
        await start(client)
    assert caught.value.http_status == 401
    assert "invalid_api_key" in str(caught.value)
    assert "sk_wrong" not in str(caught.value)
    assert fake.calls == []


@pytest.mark.parametrize("code", ["too_many_concurrent_requests", "system_busy"])
async def test_429_is_transient_and_retried(
    fake: FakeElevenLabs, client: ElevenLabsClient, reports: Reports, code: str
) -> None:
    fake.fail_next(status=429, error=code, retry_after=1)
    with pytest.raises(TransientApiError, match=code) as caught:
        await start(client)
    assert caught.value.retry_after == 1.0

    fake.fail_next(status=429, error=code, retry_after=1)
    policy = RetryPolicy(base_delay=0.01, max_delay=0.05, max_attempts=3, max_elapsed=10)
    result = await call_with_retries(
        lambda: start(client), policy, sleep=reports.sleep, clock=reports.clock
    )
    assert reports.sleeps[0] >= 1.0
    assert [c.conversation_id for c in fake.calls] == [result.conversation_id]


async def test_500_burst_then_success(
    fake: FakeElevenLabs, client: ElevenLabsClient, reports: Reports
) -> None:
    fake.fail_next(status=500, times=2)
    policy = RetryPolicy(base_delay=0.01, max_delay=0.05, max_attempts=5, max_elapsed=10)
    await call_with_retries(
        lambda: start(client),
        policy,
        sleep=reports.sleep,
        clock=reports.clock,
        rng=random.Random(1),
    )
    assert [r.status for r in fake.requests] == [500, 500, 200]
    assert len(fake.calls) == 1


async def test_validation_error_is_permanent_and_keeps_no_phone_number(
    fake: FakeElevenLabs, client: ElevenLabsClient, session: aiohttp.ClientSession
) -> None:
    bad: dict[str, Any] = {**VARIABLES, "phones": [TO_NUMBER]}
    with pytest.raises(PermanentApiError) as caught:
        await client.start_outbound_call("agent_1", "phnum_1", TO_NUMBER, bad)
    err = caught.value
    assert err.http_status == 422
    assert "dynamic_variables.phones" in str(err)
    # Like pydantic, the fake echoes the offending value as "input"; the client drops it.
    async with session.post(
        fake.url + OUTBOUND_CALL_PATH, data=fake.requests[0].body, headers={"xi-api-key": API_KEY}
    ) as response:
        assert TO_NUMBER in (await response.json())["detail"][0]["input"]
    assert TO_NUMBER not in str(err)
    assert err.body is not None and TO_NUMBER not in err.body
    assert "Input should be a valid string, number or boolean" in err.body
    assert fake.calls == []


async def test_fake_rejects_missing_fields_like_fastapi(
    fake: FakeElevenLabs, session: aiohttp.ClientSession
) -> None:
    url = fake.url + OUTBOUND_CALL_PATH
    headers = {"xi-api-key": API_KEY}
    async with session.post(url, json={"agent_id": "a"}, headers=headers) as response:
        assert response.status == 422
        detail = (await response.json())["detail"]
    assert {tuple(d["loc"]) for d in detail} == {
        ("body", "agent_phone_number_id"),
        ("body", "to_number"),
    }
    assert {d["msg"] for d in detail} == {"Field required"}
    async with session.post(url, json={}) as response:
        assert response.status == 401
    assert fake.calls == []


async def test_success_false_is_permanent(fake: FakeElevenLabs, client: ElevenLabsClient) -> None:
    fake.fail_next(
        status=200, body={"success": False, "message": "Twilio error", "conversation_id": None}
    )
    with pytest.raises(PermanentApiError, match="call not placed: Twilio error"):
        await start(client)


async def test_slow_answer_is_a_transient_timeout(
    fake: FakeElevenLabs, session: aiohttp.ClientSession, reports: Reports
) -> None:
    client = ElevenLabsClient(session, fake.url, API_KEY, timeout_s=0.2, on_request=reports)
    fake.delay_next(5.0)
    with pytest.raises(TransientApiError, match="timed out") as caught:
        await start(client)
    assert caught.value.http_status is None
    # The request was sent: the call may exist, so the dialer must not send it again.
    assert caught.value.cause == "timeout"
    assert reports.items[0][1] == "timeout"


async def test_a_server_that_accepts_and_never_answers_is_an_uncertain_timeout(
    session: aiohttp.ClientSession, reports: Reports
) -> None:
    """A bare socket that reads the request and never writes: a real read timeout."""
    received = bytearray()
    got_request = asyncio.Event()

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while chunk := await reader.read(65536):
            received.extend(chunk)
            if b"\r\n\r\n" in received:
                got_request.set()
        writer.close()

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        client = ElevenLabsClient(
            session, f"http://127.0.0.1:{port}", API_KEY, timeout_s=0.3, on_request=reports
        )
        with pytest.raises(TransientApiError) as caught:
            await start(client)
    finally:
        server.close()
    assert got_request.is_set() and received.startswith(f"POST {OUTBOUND_CALL_PATH} ".encode())
    assert (caught.value.http_status, caught.value.cause) == (None, "timeout")
    assert [(op, status) for op, status, _ in reports.items] == [("start_outbound_call", "timeout")]
    answer = answer_for_error("site", "lead", "att", caught.value)
    assert (answer.result, answer.cause, answer.retriable) == ("unknown", "timeout", False)


async def test_a_closed_port_is_not_connected_so_provably_not_sent(
    session: aiohttp.ClientSession, reports: Reports
) -> None:
    port = free_port()  # bound and released: nothing listens there
    client = ElevenLabsClient(
        session, f"http://127.0.0.1:{port}", API_KEY, timeout_s=2.0, on_request=reports
    )
    with pytest.raises(TransientApiError) as caught:
        await start(client)
    assert (caught.value.http_status, caught.value.cause) == (None, "not_connected")
    assert [(op, status) for op, status, _ in reports.items] == [("start_outbound_call", "network")]
    answer = answer_for_error("site", "lead", "att", caught.value)
    assert (answer.result, answer.cause, answer.retriable) == ("refused", "not_connected", True)


async def test_concurrency_limit_until_a_call_completes(
    fake: FakeElevenLabs, client: ElevenLabsClient
) -> None:
    fake.max_concurrent_calls = 1
    first = await start(client)
    with pytest.raises(TransientApiError, match="too_many_concurrent_requests"):
        await start(client)
    fake.complete_call(first.conversation_id)
    await start(client)
    assert fake.active_calls == 1


async def test_send_post_call_delivers_a_signed_transcription(
    fake: FakeElevenLabs, client: ElevenLabsClient
) -> None:
    result = await start(client)
    async with Receiver() as receiver:
        delivery = await fake.send_post_call(
            receiver.url,
            SECRET,
            result.conversation_id,
            "success",
            viewing_date="2025-06-14T15:00:00-10:00",
        )
    assert delivery.status == 200
    (event,) = receiver.received
    assert event["type"] == "post_call_transcription"
    data = event["data"]
    assert data["conversation_id"] == result.conversation_id
    assert data["user_id"] == "a27c20af"
    assert data["analysis"]["call_successful"] == "success"
    echoed = data["conversation_initiation_client_data"]["dynamic_variables"]
    assert {k: echoed[k] for k in VARIABLES} == VARIABLES
    assert echoed["system__call_sid"] == result.call_sid
    collected = data["analysis"]["data_collection_results"]
    assert collected["viewing_scheduled"]["value"] is True
    assert collected["viewing_date"]["value"] == "2025-06-14T15:00:00-10:00"
    assert collected["opt_out_requested"]["value"] is None
    assert data["metadata"]["call_duration_secs"] > 0
    assert fake.call(result.conversation_id).completed


async def test_wrong_secret_is_refused_by_a_verifying_receiver(fake: FakeElevenLabs) -> None:
    async with Receiver() as receiver:
        delivery = await fake.send_post_call(receiver.url, "not-the-secret", "conv_x", "failure")
        stale = await fake.send_post_call(
            receiver.url, SECRET, "conv_x", "failure", timestamp=int(time.time()) - 3600
        )
    assert (delivery.status, stale.status) == (401, 401)
    assert receiver.received == []


def test_signature_format() -> None:
    raw = b'{"type":"post_call_transcription"}'
    header = sign_post_call("secret", raw, 1739537297)
    digest = hmac.new(b"secret", b"1739537297." + raw, hashlib.sha256).hexdigest()
    assert header == f"t=1739537297,v0={digest}"


@pytest.mark.parametrize(("outcome", "reason"), [("busy", "busy"), ("no-answer", "no-answer")])
def test_initiation_failures_carry_no_dynamic_variables(outcome: Any, reason: str) -> None:
    payload = build_post_call_payload("conv_1", outcome, dynamic_variables=VARIABLES)
    assert payload["type"] == "call_initiation_failure"
    assert payload["data"]["failure_reason"] == reason
    assert payload["data"]["metadata"]["type"] == "twilio"
    assert "conversation_initiation_client_data" not in payload["data"]
    assert "user_id" not in payload["data"]


def test_voicemail_payload_has_the_documented_signals() -> None:
    payload = build_post_call_payload("conv_1", "voicemail", dynamic_variables=VARIABLES)
    data = payload["data"]
    results = [r for turn in data["transcript"] for r in turn["tool_results"]]
    assert results[0]["tool_name"] == "voicemail_detection"
    assert results[0]["result"]["result_type"] == "voicemail_detection_success"
    assert data["metadata"]["features_usage"]["voicemail_detection"]["used"] is True


def test_opt_out_payload() -> None:
    payload = build_post_call_payload(
        "conv_1", "failure", opt_out_requested=True, event_timestamp=1_700_000_000
    )
    analysis = payload["data"]["analysis"]
    assert analysis["data_collection_results"]["opt_out_requested"]["value"] is True
    assert analysis["call_successful"] == "failure"
    assert payload["event_timestamp"] == 1_700_000_000
    assert "stop calling" in json.dumps(payload["data"]["transcript"])


def test_error_payload_and_unknown_outcome() -> None:
    data = build_post_call_payload("conv_1", "error")["data"]
    assert data["status"] == "failed"
    assert data["metadata"]["error"]["code"] == 500
    with pytest.raises(ValueError):
        build_post_call_payload("conv_1", "hung-up")  # type: ignore[arg-type]


async def test_auto_completion_sends_the_webhook(session: aiohttp.ClientSession) -> None:
    async with Receiver() as receiver:
        async with FakeElevenLabs(
            api_key=API_KEY,
            webhook_url=receiver.url,
            webhook_secret=SECRET,
            complete_after_s=0.01,
        ) as fake:
            client = ElevenLabsClient(session, fake.url, API_KEY)
            result = await start(client)
            for _ in range(200):
                if receiver.received:
                    break
                await asyncio.sleep(0.01)
        assert [e["data"]["conversation_id"] for e in receiver.received] == [result.conversation_id]
