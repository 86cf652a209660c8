"""POST /webhooks/elevenlabs/initiation without a broker: the secret (the environment's, or
each site's own from the sites file), the answer for known and unknown callers, and any body
the route may get (never a 500)."""

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
from realgeeks_sync.app.core.sites import SitesFileError
from realgeeks_sync.app.domain.callers import neutral_variables
from realgeeks_sync.app.ingress import initiation as initiation_module
from realgeeks_sync.app.ingress.initiation import (
    Initiation,
    allowed_sites,
    bearer_checks,
    bearer_matches,
)
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


# Per-site secrets (the sites file's elevenlabs_initiation_secrets): a site's secret asks
# about that site's callers only. One number is a lead's in three sites; C's agentless
# site is served by any agent, and its lead would win the choice were it allowed.
SITES_WITH_SECRETS = """
[sites."site-a"]
elevenlabs_agent_id = "agent_a"
elevenlabs_initiation_secrets = ["init-a", "init-a-next"]
[sites."site-b"]
elevenlabs_agent_id = "agent_b"
elevenlabs_initiation_secrets = ["init-b"]
[sites."site-c"]
elevenlabs_initiation_secrets = ["init-c"]
[sites."site-d"]
elevenlabs_agent_id = "agent_d"
"""


def directory_with_leads(path: Path, leads: dict[str, tuple[str, str, str]]) -> CallerDirectory:
    """A ready directory where NUMBER is each site's lead: site -> (lead, name, as_of)."""
    directory = CallerDirectory(path)
    for offset, (site, (lead, name, as_of)) in enumerate(sorted(leads.items())):
        variables = {
            **neutral_variables(),
            "lead_id": lead,
            "site_uuid": site,
            "lead_first_name": name,
        }
        record = {
            "schema": "caller.v1",
            "site_uuid": site,
            "lead_id": lead,
            "phones": [NUMBER],
            "dynamic_variables": variables,
            "as_of": as_of,
            "last_ai_call_at": None,
        }
        directory.apply(f"{site}:{lead}", json.dumps(record).encode(), 0, offset)
    directory.mark_ready()
    return directory


@pytest.fixture
async def per_site(tmp_path: Path) -> AsyncIterator[tuple[Client, Metrics]]:
    sites_file = tmp_path / "sites.toml"
    sites_file.write_text(SITES_WITH_SECRETS)
    directory = directory_with_leads(
        tmp_path / "callers",
        {
            "site-a": ("la", "Ana", "2026-01-01T00:00:00+00:00"),
            "site-b": ("lb", "Ben", "2026-01-02T00:00:00+00:00"),
            "site-c": ("lc", "Cy", "2026-01-03T00:00:00+00:00"),
            "site-d": ("ld", "Dee", "2026-01-04T00:00:00+00:00"),
        },
    )
    s = settings_with(
        RGSYNC_SITES_FILE=str(sites_file),
        RGSYNC_ELEVENLABS_INITIATION_SECRETS="",
        RGSYNC_ELEVENLABS_AGENT_ID="",  # site C: no agent of its own, nor the environment's
    )
    metrics = Metrics()
    c = await client_for(Initiation(s, directory, neutral_variables(), metrics))
    yield c, metrics
    await c.close()
    directory.close()


async def lead_of(client: Client, secret: str, agent: str) -> str:
    response = await client.post(PATH, json=request(NUMBER, agent), headers=auth(secret))
    assert response.status == 200, await response.text()
    return str((await response.json())["dynamic_variables"]["lead_id"])


async def test_each_sites_secret_gets_its_own_sites_lead(per_site: tuple[Client, Metrics]) -> None:
    client, metrics = per_site
    assert await lead_of(client, "init-a", "agent_a") == "la"  # not C's, though newer
    assert await lead_of(client, "init-a-next", "agent_a") == "la"  # rotation: both work
    assert await lead_of(client, "init-b", "agent_b") == "lb"
    assert await lead_of(client, "init-c", "agent_a") == "lc"  # C is any agent's
    assert await lead_of(client, "init-c", "agent_b") == "lc"
    counted = metrics.registry.get_sample_value
    assert counted("realgeeks_initiation_requests_total", {"result": "known"}) == 5


async def test_a_sites_secret_cannot_ask_about_another_sites_callers(
    per_site: tuple[Client, Metrics],
) -> None:
    client, metrics = per_site
    wrong = await client.post(PATH, json=request("+12125550123"), headers=auth("nobody's"))
    expected = (wrong.status, await wrong.text(), wrong.headers["WWW-Authenticate"])
    # A's secrets for B's agent and D's (a site with no pre-call webhook); B's for none.
    for secret, agent in (("init-a", "agent_b"), ("init-a-next", "agent_d"), ("init-b", "")):
        response = await client.post(PATH, json=request(NUMBER, agent), headers=auth(secret))
        answer = (response.status, await response.text(), response.headers["WWW-Authenticate"])
        assert answer == expected, (secret, agent)  # same 401 as a wrong secret: no oracle
        assert "Ben" not in answer[1] and "Dee" not in answer[1]
    counted = metrics.registry.get_sample_value
    assert counted("realgeeks_initiation_requests_total", {"result": "wrong_site"}) == 3
    assert counted("realgeeks_initiation_requests_total", {"result": "unauthorized"}) == 1
    assert expected[0] == 401


async def test_the_environments_secret_is_refused_beside_per_site_ones(tmp_path: Path) -> None:
    # A sites file listing none: the environment's secret asks about every listed site.
    sites_file = tmp_path / "sites.toml"
    sites_file.write_text('[sites."s1"]\nelevenlabs_agent_id = "agent_s1"\n')
    directory = directory_with_lead(tmp_path / "callers")
    s = settings_with(RGSYNC_SITES_FILE=str(sites_file))
    client = await client_for(Initiation(s, directory, neutral_variables(), Metrics()))
    try:
        assert await lead_of(client, "old-secret", "agent_s1") == "l1"
        # An agent serving no listed site: the defaults, as before per-site secrets.
        other = await client.post(PATH, json=request(NUMBER, "agent_x"), headers=auth())
        assert (await other.json())["dynamic_variables"] == neutral_variables()
    finally:
        await client.close()
        directory.close()
    # Per-site secrets beside the environment's: refused when the sites are read.
    sites_file.write_text(SITES_WITH_SECRETS)
    with pytest.raises(SitesFileError, match="RGSYNC_ELEVENLABS_INITIATION_SECRETS must be unset"):
        Initiation(s, None, neutral_variables(), Metrics())


async def test_without_any_secret_in_the_file_or_environment_the_route_is_not_there(
    tmp_path: Path,
) -> None:
    sites_file = tmp_path / "sites.toml"
    sites_file.write_text('[sites."s1"]\nelevenlabs_agent_id = "agent_s1"\n')
    s = settings_with(RGSYNC_SITES_FILE=str(sites_file), RGSYNC_ELEVENLABS_INITIATION_SECRETS="")
    c = await client_for(Initiation(s, None, neutral_variables(), Metrics()))
    try:
        assert (await c.post(PATH, json=request(NUMBER), headers=auth())).status == 404
    finally:
        await c.close()


async def test_every_secret_is_compared_in_constant_time(
    per_site: tuple[Client, Metrics], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, _metrics = per_site
    compared: list[tuple[bytes, bytes]] = []
    original = initiation_module.hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return original(a, b)

    monkeypatch.setattr(initiation_module.hmac, "compare_digest", spy)
    assert await lead_of(client, "init-a", "agent_a") == "la"  # the first secret matches
    # ... and still every secret was compared, each with hmac.compare_digest.
    assert sorted(b for _a, b in compared) == [b"init-a", b"init-a-next", b"init-b", b"init-c"]
    assert {a for a, _b in compared} == {b"init-a"}
    compared.clear()
    assert bearer_checks((Secret("x"), Secret("y")), "Bearer y") == (False, True)
    assert len(compared) == 2


def test_allowed_sites_is_the_union_of_the_matching_secrets_sites() -> None:
    owners = (frozenset({"a"}), frozenset({"a", "b"}), None)
    assert allowed_sites((True, False, False), owners) == {"a"}
    assert allowed_sites((True, True, False), owners) == {"a", "b"}
    assert allowed_sites((False, False, True), owners) is None  # the environment's: any
    assert allowed_sites((False, False, False), owners) == frozenset()
