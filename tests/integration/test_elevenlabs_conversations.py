"""The fake's conversation history, dropped deliveries and inbound calls, read through
ElevenLabsClient over real HTTP on 127.0.0.1 (no Kafka)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from ops.testkit.fakes.elevenlabs import CONVERSATIONS_PATH, FakeElevenLabs
from realgeeks_sync.app.clients.elevenlabs import ElevenLabsClient, ElevenLabsClients
from realgeeks_sync.app.core.errors import PermanentApiError
from realgeeks_sync.app.core.settings import Settings

API_KEY = "sk_test_conversations"
VARIABLES = {"lead_id": "lead1", "site_uuid": "site1", "lead_first_name": "Ana"}


@pytest.fixture
async def fake() -> AsyncIterator[FakeElevenLabs]:
    async with FakeElevenLabs(api_key=API_KEY) as server:
        yield server


@pytest.fixture
async def client(fake: FakeElevenLabs) -> AsyncIterator[ElevenLabsClient]:
    async with aiohttp.ClientSession() as session:
        yield ElevenLabsClient(session, fake.url, API_KEY, timeout_s=2.0)


async def place(client: ElevenLabsClient, agent: str = "agent_1") -> str:
    result = await client.start_outbound_call(agent, "phnum_1", "+18085550123", VARIABLES)
    return result.conversation_id


class Endpoint:
    """An HTTP endpoint answering with a given handler, recording what it received."""

    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.received: list[tuple[dict[str, str], Any]] = []
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = json.loads(await request.read())
        self.received.append((dict(request.headers), body))
        result: web.StreamResponse = self.answer(body)
        return result

    async def __aenter__(self) -> Endpoint:
        app = web.Application()
        app.router.add_post("/hook", self.handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self.runner.addresses[0][1]}/hook"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


async def test_history_lists_newest_first_with_filters_and_pages(
    fake: FakeElevenLabs, client: ElevenLabsClient
) -> None:
    first, second, third = [await place(client) for _ in range(3)]
    other = await place(client, agent="agent_2")
    for call, started in zip(fake.calls, (100, 200, 300, 400), strict=True):
        call.received_wall = float(started)
    fake.finish_call(second, "success", transcript_summary="Wants a viewing.")

    page = await client.list_conversations("agent_1", page_size=2)
    assert [c["conversation_id"] for c in page.conversations] == [third, second]
    assert page.has_more and page.next_cursor
    rest = await client.list_conversations("agent_1", page_size=2, cursor=page.next_cursor)
    assert [c["conversation_id"] for c in rest.conversations] == [first]
    assert not rest.has_more and rest.next_cursor is None

    by_status = {c["conversation_id"]: c["status"] for c in page.conversations}
    assert by_status == {third: "in-progress", second: "done"}
    done = next(c for c in page.conversations if c["conversation_id"] == second)
    assert done["transcript_summary"] == "Wants a viewing."
    assert done["direction"] == "outbound" and done["call_successful"] == "success"

    later = await client.list_conversations("agent_1", after_unix=150)
    assert [c["conversation_id"] for c in later.conversations] == [third, second]
    assert other not in {c["conversation_id"] for c in later.conversations}


async def test_the_agents_share_one_client_per_key_on_one_session(fake: FakeElevenLabs) -> None:
    settings = Settings.from_env(
        {"RGSYNC_REALGEEKS_SECRETS": "s", "RGSYNC_ELEVENLABS_API_URL": fake.url}
    )
    timed: list[tuple[str, str]] = []
    async with ElevenLabsClients(settings, lambda op, st, _s: timed.append((op, st))) as clients:
        one = clients.client(API_KEY)
        wrong = clients.client("sk_wrong")  # another workspace's key
        assert clients.client(API_KEY) is one and wrong is not one
        await place(one)
        with pytest.raises(PermanentApiError, match="401"):
            await wrong.list_conversations("agent_1")
        session = one._session
        assert wrong._session is session and not session.closed
    assert session.closed
    assert timed == [("start_outbound_call", "200"), ("list_conversations", "401")]


async def test_detail_is_the_webhook_data(fake: FakeElevenLabs, client: ElevenLabsClient) -> None:
    conversation = await place(client)
    payload = fake.finish_call(conversation, "success", collected={"timeframe": "3 months"})
    detail = await client.get_conversation(conversation)
    assert {k: detail[k] for k in payload["data"]} == payload["data"]
    assert detail["has_audio"] is False
    collected = detail["analysis"]["data_collection_results"]
    assert collected["timeframe"]["value"] == "3 months"
    assert detail["conversation_initiation_client_data"]["dynamic_variables"]["lead_id"] == "lead1"
    with pytest.raises(PermanentApiError, match="404"):
        await client.get_conversation("conv_nope")


async def test_bad_requests_are_refused(fake: FakeElevenLabs, client: ElevenLabsClient) -> None:
    with pytest.raises(PermanentApiError, match="422"):
        await client.list_conversations("agent_1", page_size=101)
    async with (
        aiohttp.ClientSession() as session,
        session.get(fake.url + CONVERSATIONS_PATH, headers={"xi-api-key": "wrong"}) as response,
    ):
        assert response.status == 401


async def test_a_dropped_delivery_still_finishes_the_conversation(
    fake: FakeElevenLabs, client: ElevenLabsClient
) -> None:
    conversation = await place(client)
    fake.drop_next_post_calls()
    async with Endpoint(lambda _body: web.Response(text="ok")) as receiver:
        dropped = await fake.send_post_call(receiver.url, "secret", conversation, "success")
        assert dropped.status == 0 and receiver.received == []
        delivered = await fake.send_post_call(receiver.url, "secret", conversation, "success")
    assert delivered.status == 200 and len(receiver.received) == 1
    assert (await client.get_conversation(conversation))["status"] == "done"


async def test_an_inbound_call_asks_the_pre_call_webhook(fake: FakeElevenLabs) -> None:
    def answer(body: dict[str, Any]) -> web.Response:
        known = body["caller_id"] == "+18085550111"
        variables = {"lead_first_name": "Ana" if known else "", "lead_id": "lead1" if known else ""}
        return web.json_response(
            {"type": "conversation_initiation_client_data", "dynamic_variables": variables}
        )

    async with Endpoint(answer) as hook:
        fake.initiation_url = hook.url
        fake.initiation_headers = {"Authorization": "Bearer s3cret"}
        fake.agent_variables = frozenset({"lead_first_name", "lead_id"})
        call = await fake.inbound_call("+18085550111", agent_id="agent_1")
        assert call.accepted and call.status == 200
        assert call.dynamic_variables == {"lead_first_name": "Ana", "lead_id": "lead1"}
        headers, request = hook.received[0]
        assert headers["Authorization"] == "Bearer s3cret"
        assert request == {
            "caller_id": "+18085550111",
            "agent_id": "agent_1",
            "called_number": "+15555550199",
            "call_sid": call.call_sid,
        }
        fake.agent_variables = frozenset({"lead_first_name", "lead_id", "budget"})
        refused = await fake.inbound_call("+18085550111")
    assert not refused.accepted
    assert "Missing required dynamic variables" in (refused.reason or "")
    assert fake.call(refused.conversation_id).detail["status"] == "failed"  # type: ignore[index]
    payload = fake.finish_call(call.conversation_id, "success")
    phone_call = payload["data"]["metadata"]["phone_call"]
    assert phone_call["direction"] == "inbound"
    assert phone_call["external_number"] == "+18085550111"
    echoed = payload["data"]["conversation_initiation_client_data"]["dynamic_variables"]
    assert echoed["lead_id"] == "lead1" and echoed["system__caller_id"] == "+18085550111"


async def test_an_inbound_call_fails_when_the_webhook_does(fake: FakeElevenLabs) -> None:
    async with Endpoint(lambda _body: web.json_response({"error": "no"}, status=401)) as hook:
        fake.initiation_url = hook.url
        call = await fake.inbound_call("+18085550111")
    assert (call.accepted, call.status) == (False, 401)
