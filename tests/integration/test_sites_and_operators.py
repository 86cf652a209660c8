"""A brokerage with several sites: per-site secrets and agents, operators' controls, doctor.

Real Kafka, a worker subprocess and the fake Real Geeks and ElevenLabs servers over HTTP.
"""

from __future__ import annotations

import asyncio
import os
import signal
import urllib.parse
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ops.testkit.dialer import NUMBERS, callable_number, dialer_env
from ops.testkit.fakes.elevenlabs import FakeElevenLabs
from ops.testkit.fakes.realgeeks import FakeRealGeeks
from ops.testkit.support import Worker, unique, worker_env
from realgeeks_sync.app.core.settings import Settings
from realgeeks_sync.app.operations.doctor import Check, kafka_checks
from realgeeks_sync.app.streaming.topics import ensure_topics, topic_specs
from tests.integration.helpers import cli, outputs, send_realgeeks
from tests.integration.test_call_loop import wait_for
from tests.integration.test_conversations import new_lead, with_initiation
from tests.integration.test_dialer import TOKEN, lead, metric, status_of

SITE_A = "5ead6dd1-2cb9-4f80-80fc-5716b05c90ba"


def sites_file(path: Path, site_b: str, *, extra: str = "") -> Path:
    path.write_text(
        f"""
[sites."{SITE_A}"]
name = "Honolulu team"
realgeeks_secrets = ["secret-a"]
elevenlabs_agent_id = "agent_a"
elevenlabs_phone_number_id = "phnum_a"
[sites."{SITE_A}".dialer]
enabled = true

[sites."{site_b}"]
name = "Austin team"
realgeeks_secrets = ["secret-b"]
elevenlabs_agent_id = "agent_b"
elevenlabs_phone_number_id = "phnum_b"
[sites."{site_b}".dialer]
enabled = true
{extra}
"""
    )
    return path


def post_form(worker: Worker, path: str, fields: dict[str, str]) -> int:
    request = urllib.request.Request(
        worker.url + path,
        data=urllib.parse.urlencode(fields).encode(),
        headers={"Authorization": f"Bearer {TOKEN}"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as err:
        return int(err.code)


def page(worker: Worker, path: str, token: str | None = TOKEN) -> tuple[int, str]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(
            urllib.request.Request(worker.url + path, headers=headers), timeout=10
        ) as r:
            return int(r.status), r.read().decode()
    except urllib.error.HTTPError as err:
        return int(err.code), err.read().decode(errors="replace")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


async def test_each_site_signs_and_dials_as_itself_and_operators_steer_the_dialer(
    start_worker: Callable[..., Worker], kafka_bootstrap: str, tmp_path: Path
) -> None:
    site_b = unique("site")
    async with FakeRealGeeks() as rg, FakeElevenLabs() as el:
        env = dialer_env(
            rg,
            el,
            RGSYNC_SITES_FILE=str(sites_file(tmp_path / "sites.toml", site_b)),
            RGSYNC_REALGEEKS_SECRETS="shared-secret",
            RGSYNC_ADMIN_TOKEN=TOKEN,
        )
        w = await asyncio.to_thread(start_worker, **env)
        phone = callable_number(datetime.now(UTC), allowed=True)
        # 1. Each site's own secret; another site's secret and an unlisted site are refused.
        a1 = lead(SITE_A, phone, "Kai")
        assert (
            await asyncio.to_thread(send_realgeeks, w, a1, action="created", secret="secret-a")
            == 200
        )
        b1 = lead(site_b, phone, "Ben")
        crossed = await asyncio.to_thread(
            send_realgeeks, w, b1, action="created", secret="secret-a"
        )
        assert crossed == 403
        shared = await asyncio.to_thread(
            send_realgeeks, w, b1, action="created", secret="shared-secret"
        )
        assert shared == 401  # the environment's secret signs only sites without their own
        stranger = lead(unique("site"), phone)
        assert (
            await asyncio.to_thread(
                send_realgeeks, w, stranger, action="created", secret="secret-a"
            )
            == 404
        )
        assert metric(w, "realgeeks_unknown_sites_total") == 1
        # 2. Calls go out with the site's own agent and number.
        await wait_for(lambda: any(c.user_id == a1["id"] for c in el.calls))
        call = next(c for c in el.calls if c.user_id == a1["id"])
        assert (call.agent_id, call.agent_phone_number_id) == ("agent_a", "phnum_a")
        # 3. Pause B from the dashboard's switch: its new lead waits, A's still get called.
        assert post_form(w, "/ui/dialer", {"site": site_b, "action": "pause"}) == 200
        await wait_for(lambda: "paused" in page(w, "/ui/")[1])
        assert (
            await asyncio.to_thread(send_realgeeks, w, b1, action="created", secret="secret-b")
            == 200
        )
        await wait_for(lambda: status_of(w, site_b, b1["id"]) == "waiting")
        a2 = lead(SITE_A, phone, "Lea")
        assert (
            await asyncio.to_thread(send_realgeeks, w, a2, action="created", secret="secret-a")
            == 200
        )
        await wait_for(lambda: any(c.user_id == a2["id"] for c in el.calls))
        await asyncio.sleep(2)
        assert not any(c.user_id == b1["id"] for c in el.calls)
        # 4. Resume: B's lead is called, with B's agent.
        assert post_form(w, "/ui/dialer", {"site": site_b, "action": "resume"}) == 200
        await wait_for(lambda: any(c.user_id == b1["id"] for c in el.calls))
        b_call = next(c for c in el.calls if c.user_id == b1["id"])
        assert b_call.agent_id == "agent_b"
        # 5. Never call, then call now: refused; the action is on the topic with who and when.
        b2 = lead(site_b, phone, "Bo")
        assert post_form(w, "/ui/dialer", {"site": "*", "action": "pause"}) == 200
        assert (
            await asyncio.to_thread(send_realgeeks, w, b2, action="created", secret="secret-b")
            == 200
        )
        await wait_for(lambda: status_of(w, site_b, b2["id"]) == "waiting")
        path = f"/ui/leads/{site_b}/{b2['id']}/dialer"
        assert post_form(w, path, {"action": "never_call"}) == 200
        await wait_for(lambda: status_of(w, site_b, b2["id"]) == "skipped")
        assert post_form(w, path, {"action": "call_now"}) == 200  # refused: never call holds
        assert post_form(w, "/ui/dialer", {"site": "*", "action": "resume"}) == 200
        actions = outputs(
            kafka_bootstrap,
            w,
            "sync.dialer-events",
            match=lambda v: v.get("kind") == "operator",
            # B's pause and resume, never call and call now; every site's pause and resume
            # on each partition (no site was paused alone any more).
            count=4 + 2 * int(w.env["RGSYNC_PARTITIONS"]),
        )
        assert {a["action"] for a in actions} >= {"pause", "resume", "never_call", "call_now"}
        assert all(a["by"] == "api" and a["at"] for a in actions)
        await asyncio.sleep(2)
        assert not any(c.user_id == b2["id"] for c in el.calls)
        assert status_of(w, site_b, b2["id"]) == "skipped"
        # 6. The lead's page tells its story; without the token, only the login form.
        status, text = page(w, f"/ui/leads/{site_b}/{b1['id']}")
        assert status == 200 and "Ben" in text and "AI call placed" in text
        assert "New lead from a Real Geeks webhook" in text
        status, text = page(w, f"/ui/leads/{site_b}/{b1['id']}", token=None)
        assert status == 303 and "Ben" not in text
        status, text = page(w, f"/ui/leads/{site_b}/{b1['id']}", token="wrong")
        assert status == 303 and "Ben" not in text


async def test_sighup_rereads_the_sites_file(
    start_worker: Callable[..., Worker], tmp_path: Path
) -> None:
    site_b, site_c = unique("site"), unique("site")
    path = sites_file(tmp_path / "sites.toml", site_b)
    async with FakeRealGeeks() as rg, FakeElevenLabs() as el:
        env = dialer_env(rg, el, RGSYNC_SITES_FILE=str(path), RGSYNC_ADMIN_TOKEN=TOKEN)
        w = await asyncio.to_thread(start_worker, **env)
        body = lead(site_c, "+18088172382")
        assert await asyncio.to_thread(send_realgeeks, w, body, action="created", secret="c") == 401
        sites_file(path, site_b, extra=f'[sites."{site_c}"]\nrealgeeks_secrets = ["c"]\n')
        assert w.proc is not None
        os.killpg(w.proc.pid, signal.SIGHUP)

        async def accepted() -> bool:
            status = await asyncio.to_thread(send_realgeeks, w, body, action="created", secret="c")
            return status == 200

        for _ in range(50):
            if await accepted():
                break
            await asyncio.sleep(0.2)
        else:
            raise AssertionError("the new site was not taken up after SIGHUP")
        # A bad file is refused and the sites in force stay.
        path.write_text("not toml [")
        os.killpg(w.proc.pid, signal.SIGHUP)
        await asyncio.sleep(1)
        assert await accepted()
        assert "sites file not reloaded" in w.tail(80)


async def test_each_sites_pre_call_secret_reads_its_own_sites_callers_only(
    start_worker: Callable[..., Worker], tmp_path: Path
) -> None:
    # One number is a lead's in both sites; each site has its own agent and initiation secret.
    site_a, site_b = unique("site"), unique("site")
    path = tmp_path / "sites.toml"
    path.write_text(
        f"""
[sites."{site_a}"]
realgeeks_secrets = ["secret-a"]
elevenlabs_agent_id = "agent_a"
elevenlabs_initiation_secrets = ["init-a-old", "init-a"]
[sites."{site_b}"]
realgeeks_secrets = ["secret-b"]
elevenlabs_agent_id = "agent_b"
elevenlabs_initiation_secrets = ["init-b"]
"""
    )
    async with FakeRealGeeks() as rg, FakeElevenLabs() as el:
        env = dialer_env(
            rg,
            el,
            RGSYNC_SITES_FILE=str(path),
            RGSYNC_DIALER_ENABLED="false",
            RGSYNC_RECONCILE_INTERVAL_S="0",
        )
        w = await asyncio.to_thread(start_worker, **env)
        phone = NUMBERS[2]
        a, b = new_lead(site_a, phone, first_name="Kai"), new_lead(site_b, phone, first_name="Ben")
        for body, secret in ((a, "secret-a"), (b, "secret-b")):
            status = await asyncio.to_thread(
                send_realgeeks, w, body, action="created", secret=secret
            )
            assert status == 200

        async def ask(secret: str, agent: str) -> Any:
            with_initiation(el, w, secret=secret)
            return await el.inbound_call(phone, agent_id=agent)

        async def lead_id(secret: str, agent: str) -> Any:
            return (await ask(secret, agent)).dynamic_variables.get("lead_id")

        for _ in range(90):  # until both leads reached the worker's caller directory
            if (await lead_id("init-a", "agent_a"), await lead_id("init-b", "agent_b")) == (
                a["id"],
                b["id"],
            ):
                break
            await asyncio.sleep(0.5)
        else:
            raise AssertionError("the callers never became known")
        # Each site's secret (both of A's: rotation) answers with its own site's lead.
        rotated = await ask("init-a-old", "agent_a")
        assert rotated.accepted and rotated.dynamic_variables["lead_first_name"] == "Kai"
        assert rotated.dynamic_variables["site_uuid"] == site_a
        ours = await ask("init-b", "agent_b")
        assert ours.dynamic_variables["site_uuid"] == site_b
        assert ours.dynamic_variables["lead_first_name"] == "Ben"
        # A's secret naming B's agent: refused like a wrong secret, and counted.
        crossed = await ask("init-a", "agent_b")
        assert (crossed.accepted, crossed.status) == (False, 401)
        assert metric(w, 'realgeeks_initiation_requests_total{result="wrong_site"}') == 1
        wrong = await ask("nobody's", "agent_a")
        assert (wrong.accepted, wrong.status) == (False, 401)
        assert metric(w, 'realgeeks_initiation_requests_total{result="unauthorized"}') == 1


async def test_doctor_says_ready_and_names_each_misconfiguration(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    async with (
        FakeRealGeeks() as rg,
        FakeElevenLabs(agents=frozenset({"agent_1"}), phone_numbers=frozenset({"phnum_1"})) as el,
    ):
        env = {
            **worker_env(kafka_bootstrap, tmp_path),
            **dialer_env(rg, el),
            "RGSYNC_HEALTH_PROBE_SITE": SITE_A,
            "RGSYNC_PUBLIC_URL": "https://sync.example.com",
        }
        code, out, err = await cli(env, "doctor")
        assert code == 0, out + err
        assert "https://sync.example.com/webhooks/realgeeks" in out
        assert "https://sync.example.com/webhooks/elevenlabs" in out
        assert (
            "lead_first_name" in out and "call_attempt_id" in out and out.rstrip().endswith("ready")
        )
        assert rg.requests_to("/users") and el.requests_to("/v1/convai/agents/agent_1")
        cases = {
            "RGSYNC_REALGEEKS_API_PASSWORD": ("wrong", "RGSYNC_REALGEEKS_API_PASSWORD"),
            "RGSYNC_ELEVENLABS_API_KEY": ("wrong", "RGSYNC_ELEVENLABS_API_KEY"),
            "RGSYNC_ELEVENLABS_AGENT_ID": (
                "agent_x",
                "no such agent: check RGSYNC_ELEVENLABS_AGENT_ID",
            ),
            "RGSYNC_ELEVENLABS_PHONE_NUMBER_ID": (
                "phnum_x",
                "no such phone number: check RGSYNC_ELEVENLABS_PHONE_NUMBER_ID",
            ),
            "RGSYNC_KAFKA_URL": ("kafka://127.0.0.1:1", "not reachable"),
        }
        for name, (value, expected) in cases.items():
            code, out, err = await cli({**env, name: value}, "doctor")
            assert code == 1, (name, out, err)
            failed = [line for line in out.splitlines() if line.startswith("FAIL")]
            assert len(failed) == 1 and expected in failed[0], (name, out)


async def test_a_pause_of_every_site_holds_a_site_first_seen_after_it(
    start_worker: Callable[..., Worker], kafka_bootstrap: str
) -> None:
    async with FakeRealGeeks() as rg, FakeElevenLabs() as el:
        w = await asyncio.to_thread(start_worker, **dialer_env(rg, el, RGSYNC_ADMIN_TOKEN=TOKEN))
        # No site is known yet: the pause must hold the first one to send a lead all the same.
        assert post_form(w, "/ui/dialer", {"site": "*", "action": "pause"}) == 200
        await wait_for(lambda: "nothing is dialed until" in page(w, "/ui/")[1])
        newcomer = lead(unique("site"), callable_number(datetime.now(UTC), allowed=True), "Nia")
        site = newcomer["site_uuid"]
        assert await asyncio.to_thread(send_realgeeks, w, newcomer, action="created") == 200
        await wait_for(lambda: status_of(w, site, newcomer["id"]) == "waiting")
        # The site's own resume does not lift the pause of every site.
        assert post_form(w, "/ui/dialer", {"site": site, "action": "resume"}) == 200
        await asyncio.sleep(3)
        assert not any(c.user_id == newcomer["id"] for c in el.calls)
        assert "paused (all sites)" in page(w, "/ui/")[1]
        assert post_form(w, "/ui/dialer", {"site": "*", "action": "resume"}) == 200
        await wait_for(lambda: any(c.user_id == newcomer["id"] for c in el.calls))
        # One record per partition for each, with who and when.
        partitions = int(w.env["RGSYNC_PARTITIONS"])
        actions = outputs(
            kafka_bootstrap,
            w,
            "sync.dialer-events",
            match=lambda v: v.get("kind") == "operator" and v.get("site_uuid") == "*",
            count=2 * partitions,
        )
        assert (
            sorted(a["action"] for a in actions) == ["pause"] * partitions + ["resume"] * partitions
        )
        assert all(a["by"] == "api" and a["at"] for a in actions)


async def test_doctor_names_topics_whose_partitions_differ_from_the_setting(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """Topics made with 2 partitions, RGSYNC_PARTITIONS 4: doctor fails naming each.

    The topics carry this test's own prefix (worker_env), deleted after it by conftest.
    """
    async with (
        FakeRealGeeks() as rg,
        FakeElevenLabs(agents=frozenset({"agent_1"}), phone_numbers=frozenset({"phnum_1"})) as el,
    ):
        env = {
            **worker_env(kafka_bootstrap, tmp_path),
            **dialer_env(rg, el),
            "RGSYNC_HEALTH_PROBE_SITE": SITE_A,
        }
        assert env["RGSYNC_PARTITIONS"] == "4"
        two = Settings.from_env({**env, "RGSYNC_PARTITIONS": "2"})
        created = await asyncio.to_thread(ensure_topics, two)
        assert len(created) == len(topic_specs(two))
        code, out, err = await cli(env, "doctor")
        assert code == 1, out + err
        failed = [line for line in out.splitlines() if line.startswith("FAIL")]
        assert len(failed) == 1, out
        assert failed[0].startswith("FAIL  kafka topics: RGSYNC_PARTITIONS is 4 but "), out
        for spec in topic_specs(two):
            assert f"{two.topic(spec.name)} has 2" in failed[0], (spec.name, out)
        # The same topics agree with RGSYNC_PARTITIONS=2.
        found = await asyncio.to_thread(kafka_checks, two)
        assert found[-1] == Check("ok", "kafka topics", "all there, 2 partitions"), found
