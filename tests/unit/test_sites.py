"""The sites file: per-site values, every problem named at once, per-site webhook secrets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import time
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from realgeeks_sync.app.core.metrics import Metrics
from realgeeks_sync.app.core.settings import Settings
from realgeeks_sync.app.core.sites import (
    SiteDirectory,
    SitesFileError,
    load_sites,
)
from realgeeks_sync.app.domain.callers import served_by
from realgeeks_sync.app.ingress.handlers import Ingress, standalone_app
from realgeeks_sync.app.ingress.signatures import sign_elevenlabs, sign_realgeeks

ROOT = Path(__file__).resolve().parents[2]
SITE_A = "5ead6dd1-2cb9-4f80-80fc-5716b05c90ba"
SITE_B = "0c1f0e2a-0000-4000-8000-00000000000b"
SITE_C = "0c1f0e2a-0000-4000-8000-00000000000c"

GOOD = f"""
[sites."{SITE_A}"]
name = "Honolulu team"
realgeeks_secrets = ["secret-a"]
realgeeks_api_user = "user-a"
realgeeks_api_password = "pw-a"
elevenlabs_agent_id = "agent_a"
elevenlabs_phone_number_id = "phnum_a"
[sites."{SITE_A}".dialer]
enabled = true
hours = "09:30-20:00"
days = ["mon", "tue", "wed", "thu", "fri"]
timezone = "Pacific/Honolulu"
max_concurrent_calls = 3
[sites."{SITE_A}".outcomes]
tour_requested = "tour_requested"

[sites."{SITE_B.upper()}"]
realgeeks_secrets = ["secret-b", "secret-b-next"]
elevenlabs_agent_id = "agent_b"

[sites."{SITE_C}"]
"""


def settings(**env: str) -> Settings:
    return Settings.from_env({"RGSYNC_ELEVENLABS_API_KEY": "el-key", **env})


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sites.toml"
    path.write_text(text)
    return path


def test_each_site_has_its_own_values_and_the_rest_from_the_environment(tmp_path: Path) -> None:
    s = settings(
        RGSYNC_SITES_FILE=str(write(tmp_path, GOOD)),
        RGSYNC_REALGEEKS_SECRETS="shared",
        RGSYNC_REALGEEKS_API_USER="env-user",
        RGSYNC_DIALER_MAX_ATTEMPTS="5",
    )
    sites = load_sites(s)
    a, b, c = sites.get(SITE_A), sites.get(SITE_B), sites.get(SITE_C)
    assert a is not None and b is not None and c is not None
    assert a.name == "Honolulu team" and a.realgeeks_api_user == "user-a"
    assert [x.reveal() for x in a.realgeeks_secrets] == ["secret-a"]
    assert a.dialer.enabled and (a.dialer.start, a.dialer.end) == (time(9, 30), time(20))
    assert a.dialer.days == frozenset(range(5)) and a.dialer.max_concurrent_calls == 3
    assert a.dialer.max_attempts == 5 and a.outcomes == {"tour_requested": "tour_requested"}
    assert b.realgeeks_api_user == "env-user" and not b.dialer.enabled  # the environment's
    assert [x.reveal() for x in c.realgeeks_secrets] == ["shared"]
    assert sites.get("unlisted") is None and sites.known() == sorted([SITE_A, SITE_B, SITE_C])
    # Which sites an agent serves: its own, and a site with no agent (C) is any agent's;
    # a site the file does not list is nobody's.
    listed = (SITE_A, SITE_B.upper(), SITE_C, "unlisted")
    for agent, served in (("agent_a", [SITE_A, SITE_C]), ("agent_x", [SITE_C])):
        serves = served_by(sites, agent)
        assert [site for site in listed if serves(site)] == served, agent
    assert served_by(sites, "agent_b")(SITE_B)
    # Reconciliation lists each agent once, with the key of a site that uses it.
    agents = sites.elevenlabs_agents()
    assert sorted(agents) == ["agent_a", "agent_b"]
    assert agents["agent_a"].reveal() == "el-key"


def test_without_a_file_the_environment_serves_every_site() -> None:
    s = settings(RGSYNC_REALGEEKS_SECRETS="shared", RGSYNC_ELEVENLABS_AGENT_ID="agent_1")
    sites = load_sites(s)
    assert not sites.listed and sites.get("any-site") is sites.default
    assert served_by(sites, "agent_1")("any-site")  # every site is the environment's agent's
    assert not served_by(sites, "agent_2")("any-site")
    secrets, _owners = sites.realgeeks_keys()
    assert [x.reveal() for x in secrets] == ["shared"]


def test_every_problem_is_named_at_once(tmp_path: Path) -> None:
    bad = f"""
    [sites."{SITE_A}"]
    realgeeks_secrets = ["same"]
    colour = "blue"
    [sites."{SITE_A}".dialer]
    enabled = true
    hours = "07:00-22:00"
    days = ["funday"]
    max_attempts = 0
    timezone = "Mars/Olympus"
    [sites."{SITE_A}".outcomes]
    tour_booked = "showing"
    [sites."{SITE_B}"]
    realgeeks_secrets = ["same"]
    """
    s = settings(RGSYNC_SITES_FILE=str(write(tmp_path, bad)), RGSYNC_REALGEEKS_SECRETS="x")
    with pytest.raises(SitesFileError) as caught:
        load_sites(s)
    text = "\n".join(caught.value.problems)
    for expected in (
        "unknown key 'colour'",
        "hours must be HH:MM-HH:MM inside 08:00-21:00",
        "days must be",
        "max_attempts must be an integer >= 1",
        "'Mars/Olympus' is not a known IANA zone",
        "outcomes.tour_booked is not an outcome",
    ):
        assert expected in text, text
    # A dialer switched on without its ids, and a secret two sites share.
    missing = f"""
    [sites."{SITE_A}"]
    realgeeks_secrets = ["same"]
    [sites."{SITE_A}".dialer]
    enabled = true
    [sites."{SITE_B}"]
    realgeeks_secrets = ["same"]
    """
    s = Settings.from_env(
        {"RGSYNC_SITES_FILE": str(write(tmp_path, missing)), "RGSYNC_REALGEEKS_SECRETS": "x"}
    )
    with pytest.raises(SitesFileError) as caught:
        load_sites(s)
    problems = caught.value.problems
    assert any("elevenlabs_agent_id is missing" in p for p in problems), problems
    assert any("share a realgeeks secret" in p for p in problems), problems
    for text in ("not toml [", "[other]\nx = 1\n"):
        s = settings(RGSYNC_SITES_FILE=str(write(tmp_path, text)), RGSYNC_REALGEEKS_SECRETS="x")
        with pytest.raises(SitesFileError, match="RGSYNC_SITES_FILE"):
            load_sites(s)


def test_a_bad_file_stops_start_up_with_one_line_per_problem(tmp_path: Path) -> None:
    path = write(tmp_path, f'[sites."{SITE_A}"]\nrealgeeks_secrets = 3\nfoo = 1\n')
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("RGSYNC_")},
        "RGSYNC_SITES_FILE": str(path),
    }
    done = subprocess.run(
        [sys.executable, "-m", "realgeeks_sync.app.cli", "worker"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr
    assert len(lines) == 2 and all(
        line.startswith("realgeeks-sync: RGSYNC_SITES_FILE") for line in lines
    )
    assert "Traceback" not in done.stderr


def test_sighup_reload_keeps_the_old_sites_when_the_new_file_is_bad(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    directory = SiteDirectory(settings(RGSYNC_SITES_FILE=str(path), RGSYNC_REALGEEKS_SECRETS="s"))
    path.write_text(GOOD + f'\n[sites."{SITE_A}-x"]\nbogus = 1\n')
    assert directory.reload() and directory.version == 1
    path.write_text(f'[sites."{SITE_C}"]\nrealgeeks_secrets = ["c"]\n')
    assert directory.reload() == [] and directory.version == 2
    assert directory.current.known() == [SITE_C]


class Publisher:
    def __init__(self) -> None:
        self.records: list[tuple[str, str, bytes]] = []

    async def publish(self, topic: str, key: str, value: bytes) -> None:
        self.records.append((topic, key, value))


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[tuple[TestClient, Ingress, Publisher]]:
    s = settings(
        RGSYNC_SITES_FILE=str(write(tmp_path, GOOD)),
        RGSYNC_REALGEEKS_SECRETS="shared",
        RGSYNC_ELEVENLABS_SECRETS="el-shared",
        RGSYNC_CLIENT_RATE_PER_S="100000",
        RGSYNC_CLIENT_BURST="100000",
    )
    publisher = Publisher()
    ingress = Ingress(s, publisher, Metrics(), sites=SiteDirectory(s))
    test_client: TestClient = TestClient(TestServer(standalone_app(ingress)))
    await test_client.start_server()
    yield test_client, ingress, publisher
    await test_client.close()


async def post(client: TestClient, secret: str, site: str | None) -> web.Response:
    body = {"action": "created", "id": "a27c20af4497415d9e4e7334dd1d40d2"}
    if site is not None:
        body["site_uuid"] = site
    raw = json.dumps(body).encode()
    return await client.post(
        "/webhooks/realgeeks",
        data=raw,
        headers={"X-Lead-Router-Signature": sign_realgeeks(secret, raw)},
    )


async def test_a_site_secret_signs_only_its_own_site(client: tuple) -> None:
    http, ingress, publisher = client
    assert (await post(http, "secret-a", SITE_A)).status == 200
    assert (await post(http, "secret-a", SITE_A.upper())).status == 200  # case is no site
    assert (await post(http, "secret-b-next", SITE_B)).status == 200  # rotation
    assert (await post(http, "shared", SITE_C)).status == 200  # the environment's
    refused = await post(http, "secret-a", SITE_B)
    assert refused.status == 403 and "another site" in (await refused.json())["error"]
    assert (await post(http, "shared", SITE_A)).status == 403  # A has secrets of its own
    assert (await post(http, "wrong", SITE_A)).status == 401
    unknown = await post(http, "shared", "ffffffff-0000-4000-8000-000000000000")
    assert unknown.status == 404 and "unknown site" in (await unknown.json())["error"]
    assert (await post(http, "secret-a", None)).status == 404
    assert len(publisher.records) == 4
    text = ingress.metrics.render().decode()
    assert "realgeeks_unknown_sites_total 2.0" in text
    assert 'realgeeks_webhooks_rejected_total{source="realgeeks",status="403"} 2.0' in text


async def test_elevenlabs_webhooks_verify_with_the_shared_secret(client: tuple) -> None:
    http, _ingress, publisher = client
    raw = json.dumps(
        {"type": "post_call_transcription", "data": {"agent_id": "agent_a", "conversation_id": "c"}}
    ).encode()
    answer = await http.post(
        "/webhooks/elevenlabs",
        data=raw,
        headers={"ElevenLabs-Signature": sign_elevenlabs("el-shared", raw)},
    )
    assert answer.status == 200 and publisher.records


# The pre-call webhook's per-site secrets (elevenlabs_initiation_secrets).
PER_SITE_INITIATION = f"""
[sites."{SITE_A}"]
realgeeks_secrets = ["secret-a"]
elevenlabs_agent_id = "agent_a"
elevenlabs_initiation_secrets = ["init-a", "init-a-next"]
[sites."{SITE_B}"]
realgeeks_secrets = ["secret-b"]
elevenlabs_agent_id = "agent_b"
elevenlabs_initiation_secrets = "init-b"
[sites."{SITE_C}"]
realgeeks_secrets = ["secret-c"]
elevenlabs_agent_id = "agent_c"
"""


def revealed(keys: tuple[tuple, tuple]) -> dict[str, frozenset[str] | None]:
    secrets, owners = keys
    return {secret.reveal(): owner for secret, owner in zip(secrets, owners, strict=True)}


def test_each_site_lists_its_own_initiation_secrets(tmp_path: Path) -> None:
    sites = load_sites(settings(RGSYNC_SITES_FILE=str(write(tmp_path, PER_SITE_INITIATION))))
    # Each secret asks about the sites listing it; C lists none: no pre-call webhook.
    assert revealed(sites.initiation_keys()) == {
        "init-a": frozenset({SITE_A}),
        "init-a-next": frozenset({SITE_A}),
        "init-b": frozenset({SITE_B}),
    }
    c = sites.get(SITE_C)
    assert c is not None and c.elevenlabs_initiation_secrets == ()
    # One secret under two sites (one ElevenLabs workspace serving both) asks about both.
    shared = PER_SITE_INITIATION.replace('"init-b"', '["init-b", "init-a"]')
    sites = load_sites(settings(RGSYNC_SITES_FILE=str(write(tmp_path, shared))))
    assert revealed(sites.initiation_keys())["init-a"] == frozenset({SITE_A, SITE_B})


def test_the_environments_initiation_secrets_serve_every_site_while_none_lists_its_own(
    tmp_path: Path,
) -> None:
    env = {"RGSYNC_ELEVENLABS_INITIATION_SECRETS": "env-1,env-2", "RGSYNC_REALGEEKS_SECRETS": "x"}
    assert revealed(load_sites(settings(**env)).initiation_keys()) == {"env-1": None, "env-2": None}
    with_file = settings(RGSYNC_SITES_FILE=str(write(tmp_path, GOOD)), **env)
    sites = load_sites(with_file)
    assert revealed(sites.initiation_keys()) == {"env-1": None, "env-2": None}
    a = sites.get(SITE_A)
    assert a is not None and [x.reveal() for x in a.elevenlabs_initiation_secrets] == [
        "env-1",
        "env-2",
    ]
    # Neither: no secret at all (the route answers 404).
    neither = settings(RGSYNC_SITES_FILE=str(write(tmp_path, GOOD)), RGSYNC_REALGEEKS_SECRETS="x")
    assert load_sites(neither).initiation_keys() == ((), ())


def test_per_site_initiation_secrets_refuse_the_environments(tmp_path: Path) -> None:
    s = settings(
        RGSYNC_SITES_FILE=str(write(tmp_path, PER_SITE_INITIATION)),
        RGSYNC_ELEVENLABS_INITIATION_SECRETS="env-1",
    )
    with pytest.raises(SitesFileError) as caught:
        load_sites(s)
    (problem,) = caught.value.problems
    assert f"site(s) {SITE_B}, {SITE_A} list elevenlabs_initiation_secrets" in problem  # sorted
    assert "RGSYNC_ELEVENLABS_INITIATION_SECRETS must be unset" in problem
    assert "env-1" not in problem and "init-a" not in problem  # secrets are never printed


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("[]", "elevenlabs_initiation_secrets must be a non-empty list of non-empty strings"),
        ("[3]", "elevenlabs_initiation_secrets must be a non-empty list of non-empty strings"),
        ('["ok", " "]', "elevenlabs_initiation_secrets must be a non-empty list"),
        ("7", "elevenlabs_initiation_secrets must be a non-empty list of non-empty strings"),
        ("{ a = 1 }", "elevenlabs_initiation_secrets must be a non-empty list"),
    ],
)
def test_a_bad_initiation_secret_is_one_problem(tmp_path: Path, value: str, expected: str) -> None:
    text = (
        f'[sites."{SITE_A}"]\nrealgeeks_secrets = ["a"]\nelevenlabs_initiation_secrets = {value}\n'
    )
    with pytest.raises(SitesFileError) as caught:
        load_sites(settings(RGSYNC_SITES_FILE=str(write(tmp_path, text))))
    (problem,) = caught.value.problems
    assert problem.startswith(f"RGSYNC_SITES_FILE ({tmp_path / 'sites.toml'}): site {SITE_A}: ")
    assert expected in problem


def test_an_empty_initiation_secrets_list_stops_start_up_with_one_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f'[sites."{SITE_A}"]\nrealgeeks_secrets = ["a"]\nelevenlabs_initiation_secrets = []\n',
    )
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("RGSYNC_")},
        "RGSYNC_SITES_FILE": str(path),
    }
    done = subprocess.run(
        [sys.executable, "-m", "realgeeks_sync.app.cli", "worker"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("realgeeks-sync: RGSYNC_SITES_FILE") and "non-empty list" in line
    assert "Traceback" not in done.stderr


def test_sighup_takes_up_new_initiation_secrets_and_refuses_bad_ones(tmp_path: Path) -> None:
    path = write(tmp_path, PER_SITE_INITIATION)
    directory = SiteDirectory(settings(RGSYNC_SITES_FILE=str(path)))
    path.write_text(PER_SITE_INITIATION.replace('"init-b"', '["init-b", "init-b-next"]'))
    assert directory.reload() == []
    assert revealed(directory.current.initiation_keys())["init-b-next"] == frozenset({SITE_B})
    path.write_text(PER_SITE_INITIATION.replace('"init-b"', "[]"))
    assert directory.reload() and directory.version == 2  # refused: the old secrets stay
    assert "init-b-next" in revealed(directory.current.initiation_keys())
