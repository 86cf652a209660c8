"""POST /webhooks/elevenlabs/initiation without a broker: the secret, the answer for known
and unknown callers, and any body the route may get (never a 500)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings

from ops.testkit.contracts import violations
from ops.testkit.support import free_port
from realgeeks_sync.app.core.metrics import Metrics
from realgeeks_sync.app.core.settings import Secret, Settings
from realgeeks_sync.app.domain.callers import neutral_variables
from realgeeks_sync.app.ingress.initiation import Initiation, bearer_matches
from realgeeks_sync.app.streaming import topics
from realgeeks_sync.app.streaming.caller_directory import CallerDirectory
from tests.strategies import json_values

PATH = "/webhooks/elevenlabs/initiation"
NUMBER = "+18088172382"
Client = TestClient[web.Request, web.Application]


def settings_with(**extra: str) -> Settings:
    return Settings.from_env(
        {
            "RGSYNC_REALGEEKS_SECRETS": "x",
            "RGSYNC_KAFKA_URL": f"kafka://127.0.0.1:{free_port()}",
            "RGSYNC_ELEVENLABS_INITIATION_SECRETS": "new-secret, old-secret",
            "RGSYNC_ELEVENLABS_AGENT_ID": "agent_1",
            **extra,
        }
    )


def directory_with_lead(path: Path) -> CallerDirectory:
    directory = CallerDirectory(path)
    variables = {
        **neutral_variables(),
        "lead_id": "l1",
        "site_uuid": "s1",
        "lead_first_name": "Ana",
    }
    record = {
        "schema": "caller.v1",
        "site_uuid": "s1",
        "lead_id": "l1",
        "phones": [NUMBER],
        "dynamic_variables": variables,
        "as_of": "2026-01-01T00:00:00+00:00",
        "last_ai_call_at": None,
    }
    directory.apply("s1:l1", json.dumps(record).encode(), 0, 0)
    directory.mark_ready()
    return directory


async def client_for(initiation: Initiation) -> Client:
    app = web.Application()
    app.router.add_post(PATH, initiation.handle)
    client: Client = TestClient(TestServer(app))
    await client.start_server()
    return client


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[Client]:
    directory = directory_with_lead(tmp_path / "callers")
    initiation = Initiation(settings_with(), directory, neutral_variables(), Metrics())
    c = await client_for(initiation)
    yield c
    await c.close()
    directory.close()


def auth(secret: str = "new-secret") -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def request(caller: str = "808-817-2382", agent: str = "agent_1") -> dict[str, Any]:
    return {"caller_id": caller, "agent_id": agent, "called_number": "+1555", "call_sid": "CA1"}


async def test_a_known_caller_gets_its_leads_variables(client: Client) -> None:
    response = await client.post(PATH, json=request(NUMBER), headers=auth())
    assert response.status == 200
    answer = await response.json()
    assert answer["type"] == "conversation_initiation_client_data"
    variables = answer["dynamic_variables"]
    assert set(variables) == set(neutral_variables())
    assert (variables["lead_id"], variables["lead_first_name"]) == ("l1", "Ana")
    # A national number in the default region is the same caller.
    national = await client.post(PATH, json=request("(808) 817-2382"), headers=auth("old-secret"))
    assert (await national.json())["dynamic_variables"]["lead_id"] == "l1"


async def test_strangers_and_other_agents_get_the_neutral_defaults(client: Client) -> None:
    for body in (request("+12125550123"), request(NUMBER, agent="agent_2"), {}, {"caller_id": 5}):
        response = await client.post(PATH, json=body, headers=auth())
        assert response.status == 200
        assert (await response.json())["dynamic_variables"] == neutral_variables()


@pytest.mark.parametrize(
    "headers",
    [{}, auth("wrong"), {"Authorization": "new-secret"}, {"Authorization": "Basic bmV3"}],
)
async def test_a_wrong_or_missing_secret_is_a_401(client: Client, headers: dict[str, str]) -> None:
    response = await client.post(PATH, json=request(NUMBER), headers=headers)
    assert response.status == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert "Ana" not in await response.text()


async def test_bad_bodies(client: Client) -> None:
    assert (await client.post(PATH, data=b"not json", headers=auth())).status == 400
    assert (await client.post(PATH, json=[1, 2], headers=auth())).status == 400
    big = json.dumps({"caller_id": "x" * 70_000})
    assert (await client.post(PATH, data=big, headers=auth())).status == 413


async def test_without_secrets_the_route_is_not_there(tmp_path: Path) -> None:
    settings = settings_with(RGSYNC_ELEVENLABS_INITIATION_SECRETS="")
    c = await client_for(Initiation(settings, None, neutral_variables(), Metrics()))
    try:
        assert (await c.post(PATH, json=request(NUMBER), headers=auth())).status == 404
    finally:
        await c.close()


def test_bearer_matching() -> None:
    secrets = (Secret("a"), Secret("b"))
    assert bearer_matches(secrets, "Bearer b") and bearer_matches(secrets, "bearer  a ")
    assert not bearer_matches(secrets, "Bearer c")
    assert not bearer_matches(secrets, None) and not bearer_matches(secrets, "Bearer ")
    assert not bearer_matches(secrets, "Bearer \udcff")  # undecodable bytes: a wrong secret


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=json_values(text=30, keys=10, items=3, entries=4, leaves=10, floats="none"))
async def test_any_json_body_gets_a_documented_status(client: Client, body: Any) -> None:
    response = await client.post(PATH, data=json.dumps(body), headers=auth())
    assert response.status in (200, 400)
    if response.status == 200:
        assert set((await response.json())["dynamic_variables"]) == set(neutral_variables())


async def test_the_called_agent_must_serve_the_callers_site(tmp_path: Path) -> None:
    # Site s1 calls with agent_s1 (sites file); another site's agent gets the defaults.
    sites_file = tmp_path / "sites.toml"
    sites_file.write_text(
        '[sites."s1"]\nelevenlabs_agent_id = "agent_s1"\n'
        '[sites."s2"]\nelevenlabs_agent_id = "agent_s2"\n'
    )
    directory = directory_with_lead(tmp_path / "callers")
    s = settings_with(RGSYNC_SITES_FILE=str(sites_file))
    client = await client_for(Initiation(s, directory, neutral_variables(), Metrics()))
    try:
        ours = await client.post(PATH, json=request(NUMBER, "agent_s1"), headers=auth())
        assert (await ours.json())["dynamic_variables"]["lead_id"] == "l1"
        for agent in ("agent_s2", "agent_1"):  # another site's, the environment's
            other = await client.post(PATH, json=request(NUMBER, agent), headers=auth())
            assert (await other.json())["dynamic_variables"] == neutral_variables()
    finally:
        await client.close()
        directory.close()


class Published:
    """A publisher that keeps what it was given."""

    def __init__(self) -> None:
        self.records: list[tuple[str, str, bytes]] = []

    async def publish(self, topic: str, key: str, value: bytes) -> None:
        self.records.append((topic, key, value))


async def test_a_known_callers_conversation_is_recorded_for_its_outcome(tmp_path: Path) -> None:
    directory = directory_with_lead(tmp_path / "callers")
    published = Published()
    initiation = Initiation(
        settings_with(),
        directory,
        neutral_variables(),
        Metrics(),
        publisher=published,
        conversations_topic="t.sync.conversations",
    )
    client = await client_for(initiation)
    try:
        body = {**request(NUMBER), "conversation_id": "conv_in"}
        assert (await client.post(PATH, json=body, headers=auth())).status == 200
        stranger = {**request("+12125550123"), "conversation_id": "conv_other"}
        assert (await client.post(PATH, json=stranger, headers=auth())).status == 200
        for _ in range(100):  # recorded after the answer, never delaying it
            if published.records:
                break
            await asyncio.sleep(0.01)
    finally:
        await client.close()
        directory.close()
    ((topic, key, value),) = published.records  # the stranger's call has no lead to record
    assert (topic, key) == ("t.sync.conversations", "conv_in")
    assert violations(topics.CONVERSATIONS, value) == []
    record = json.loads(value)
    assert (record["site_uuid"], record["lead_id"], record["attempt_id"]) == ("s1", "l1", None)
    assert record["direction"] == "inbound"


async def test_before_the_directory_is_read_a_caller_gets_the_defaults_as_not_ready(
    tmp_path: Path,
) -> None:
    directory = CallerDirectory(tmp_path / "callers")  # its reader has not caught up yet
    metrics = Metrics()
    client = await client_for(Initiation(settings_with(), directory, neutral_variables(), metrics))
    try:
        response = await client.post(PATH, json=request(NUMBER), headers=auth())
        assert (await response.json())["dynamic_variables"] == neutral_variables()
        directory.mark_ready()
        await client.post(PATH, json=request(NUMBER), headers=auth())
    finally:
        await client.close()
        directory.close()
    counted = metrics.registry.get_sample_value
    assert counted("realgeeks_initiation_requests_total", {"result": "not_ready"}) == 1
    assert counted("realgeeks_initiation_requests_total", {"result": "unknown"}) == 1
