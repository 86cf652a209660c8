"""``realgeeks-sync doctor`` against the fake Real Geeks and ElevenLabs servers: each check
names its misconfiguration, and "ready" only when every check ran and passed.

Kafka is left out here (``kafka=``); its checks need a broker and are in
tests/integration/test_sites_and_operators.py.
"""

from __future__ import annotations

import sys
import time
import zoneinfo
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from ops.testkit.dialer import dialer_env
from ops.testkit.fakes.elevenlabs import FakeElevenLabs
from ops.testkit.fakes.realgeeks import FakeRealGeeks
from realgeeks_sync.app.core.settings import Settings
from realgeeks_sync.app.core.sites import load_sites
from realgeeks_sync.app.domain.calling_window import candidate_zones
from realgeeks_sync.app.operations.doctor import Check, diagnose, report

SITE_A = "5ead6dd1-2cb9-4f80-80fc-5716b05c90ba"
SITE_B = "0c1f0e2a-0000-4000-8000-00000000000b"
SITE_C = "0c1f0e2a-0000-4000-8000-00000000000c"
SITE_D = "0c1f0e2a-0000-4000-8000-00000000000d"
SITE_E = "0c1f0e2a-0000-4000-8000-00000000000e"

Fakes = tuple[FakeRealGeeks, FakeElevenLabs]


@pytest.fixture
async def fakes() -> AsyncIterator[Fakes]:
    async with (
        FakeRealGeeks() as rg,
        FakeElevenLabs(
            agents=frozenset({"agent_1", "agent_a"}),
            phone_numbers=frozenset({"phnum_1", "phnum_a"}),
        ) as el,
    ):
        yield rg, el


def ready_env(rg: FakeRealGeeks, el: FakeElevenLabs, **extra: str) -> dict[str, str]:
    """A single site from the environment, dialer on, everything right."""
    return {
        **dialer_env(rg, el),
        "RGSYNC_REALGEEKS_SECRETS": "rg-secret",
        "RGSYNC_ELEVENLABS_SECRETS": "el-secret",
        "RGSYNC_HEALTH_PROBE_SITE": SITE_A,
        **extra,
    }


def without(env: dict[str, str], name: str) -> dict[str, str]:
    return {k: v for k, v in env.items() if k != name}


async def doctor(
    environ: dict[str, str], *, clock: Callable[[], float] = time.time
) -> tuple[list[Check], list[str], int]:
    """The findings, the printed lines and the exit status (Kafka not asked)."""
    settings = Settings.from_env(environ)
    sites = load_sites(settings)
    found = await diagnose(settings, sites, clock=clock, kafka=lambda _: [])
    lines: list[str] = []
    code = report(settings, sites, found, lines.append)
    return found, lines, code


def failures(found: list[Check]) -> list[str]:
    return [c.line() for c in found if c.level == "FAIL"]


async def test_ready_when_every_check_ran_and_passed(fakes: Fakes) -> None:
    rg, el = fakes
    found, lines, code = await doctor(ready_env(rg, el))
    assert code == 0 and lines[-1] == "ready", lines
    assert {c.level for c in found} == {"ok"}, lines
    assert rg.requests_to(f"/sites/{SITE_A}/users")


# -- the clock ---------------------------------------------------------------------------


@pytest.mark.parametrize("skew", [300.0, -300.0])
async def test_a_clock_minutes_off_the_apis_is_named(fakes: Fakes, skew: float) -> None:
    rg, el = fakes
    found, lines, code = await doctor(ready_env(rg, el), clock=lambda: time.time() + skew)
    [clock] = [c for c in found if c.subject == "clock"]
    assert clock.level == "FAIL" and "from Real Geeks's" in clock.text, clock
    # The skew, signed (the Date header has whole seconds).
    assert abs(float(clock.text.split(" s ")[0]) - skew) <= 2, clock
    assert failures(found) == [clock.line()] and code == 1, lines


async def test_a_clock_seconds_off_is_fine(fakes: Fakes) -> None:
    rg, el = fakes
    found, _, code = await doctor(ready_env(rg, el), clock=lambda: time.time() - 30)
    [clock] = [c for c in found if c.subject == "clock"]
    assert clock.level == "ok" and code == 0, clock


# -- time zones --------------------------------------------------------------------------


@pytest.fixture
def no_tz_data(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A host without time zone data: no system zoneinfo, no tzdata package."""
    monkeypatch.setitem(sys.modules, "tzdata", None)  # import tzdata fails
    zoneinfo.reset_tzpath(to=[])
    zoneinfo.ZoneInfo.clear_cache()
    candidate_zones.cache_clear()
    try:
        yield
    finally:
        zoneinfo.reset_tzpath()
        zoneinfo.ZoneInfo.clear_cache()
        candidate_zones.cache_clear()


async def test_missing_time_zone_data_is_named(fakes: Fakes, no_tz_data: None) -> None:
    rg, el = fakes
    found, lines, code = await doctor(ready_env(rg, el))
    [zones] = [c for c in found if c.subject == "time zones"]
    assert zones.level == "FAIL" and "install tzdata" in zones.text, zones
    assert failures(found) == [zones.line()], lines
    assert "  (listed once the time zone data is there)" in lines  # not a traceback
    assert code == 1 and lines[-1] == "not ready: 1 problem(s) above", lines


# -- Real Geeks login ----------------------------------------------------------------------


async def test_without_a_site_to_ask_the_login_is_not_checked_and_not_ready(
    fakes: Fakes,
) -> None:
    rg, el = fakes
    found, lines, code = await doctor(without(ready_env(rg, el), "RGSYNC_HEALTH_PROBE_SITE"))
    [login] = [c for c in found if c.subject == "environment: Real Geeks"]
    assert login.level == "SKIP" and "not checked" in login.text, login
    assert "RGSYNC_HEALTH_PROBE_SITE" in login.text
    assert not rg.requests_to("/users")
    assert not failures(found)
    assert code == 1 and lines[-1].startswith("not ready: 1 check(s) could not be made"), lines


# -- ElevenLabs webhooks -------------------------------------------------------------------


async def test_dialer_on_without_an_elevenlabs_webhook_secret_is_named(fakes: Fakes) -> None:
    rg, el = fakes
    found, lines, code = await doctor(without(ready_env(rg, el), "RGSYNC_ELEVENLABS_SECRETS"))
    [failed] = failures(found)
    assert failed.startswith("FAIL  environment: ElevenLabs: no webhook secret"), failed
    assert "RGSYNC_ELEVENLABS_SECRETS" in failed and "post-call" in failed
    assert code == 1, lines


# -- a sites file ---------------------------------------------------------------------------

SITES = f"""
[sites."{SITE_A}"]
name = "wrong password"
realgeeks_api_password = "wrong"
elevenlabs_secrets = ["el-a"]
elevenlabs_agent_id = "agent_a"
elevenlabs_phone_number_id = "phnum_a"
[sites."{SITE_A}".dialer]
enabled = true

[sites."{SITE_B}"]
name = "unknown agent"
elevenlabs_secrets = ["el-b"]
elevenlabs_agent_id = "agent_x"
[sites."{SITE_B}".dialer]
enabled = true

[sites."{SITE_C}"]
name = "no ElevenLabs webhook secret"
elevenlabs_agent_id = "agent_1"
[sites."{SITE_C}".dialer]
enabled = true

[sites."{SITE_D}"]
name = "all right"
elevenlabs_secrets = ["el-d"]
elevenlabs_agent_id = "agent_1"
[sites."{SITE_D}".dialer]
enabled = true
timezone = "Pacific/Honolulu"

[sites."{SITE_E}"]
name = "no dialer"
"""


async def test_a_sites_file_is_checked_site_by_site(fakes: Fakes, tmp_path: Path) -> None:
    rg, el = fakes
    path = tmp_path / "sites.toml"
    path.write_text(SITES)
    env = {
        **without(ready_env(rg, el), "RGSYNC_ELEVENLABS_SECRETS"),
        "RGSYNC_SITES_FILE": str(path),
        "RGSYNC_DIALER_ENABLED": "false",
        "RGSYNC_ELEVENLABS_AGENT_ID": "",
    }
    found, lines, code = await doctor(env)
    here = "of the site in the sites file"
    assert failures(found) == [
        f"FAIL  site {SITE_A}: Real Geeks: login refused (HTTP 401): check realgeeks_api_user "
        f"{here} (or RGSYNC_REALGEEKS_API_USER) and realgeeks_api_password {here} "
        "(or RGSYNC_REALGEEKS_API_PASSWORD)",
        f"FAIL  site {SITE_B}: ElevenLabs: no such agent: check elevenlabs_agent_id {here} "
        "(or RGSYNC_ELEVENLABS_AGENT_ID)",
        f"FAIL  site {SITE_C}: ElevenLabs: no webhook secret: set elevenlabs_secrets {here} "
        "(or RGSYNC_ELEVENLABS_SECRETS); the post-call webhooks (each call's outcome) could "
        "not be verified",
    ], lines
    # Each site's own login and ids were asked for, the good sites' found fine.
    for site in (SITE_A, SITE_B, SITE_C, SITE_D, SITE_E):
        assert rg.requests_to(f"/sites/{site}/users"), site
    assert el.requests_to("/v1/convai/agents/agent_a") and el.requests_to("/agents/agent_x")
    ok = {c.subject for c in found if c.level == "ok"}
    assert {f"site {SITE_D}: Real Geeks", f"site {SITE_D}: ElevenLabs"} <= ok
    assert f"site {SITE_E}: ElevenLabs" in ok  # dialer off, no agent: nothing to check
    assert any(c.subject == "time zones" and "Pacific/Honolulu" in c.text for c in found)
    assert any(line.startswith("  sites: ") and SITE_E in line for line in lines)
    assert code == 1 and lines[-1] == "not ready: 3 problem(s) above", lines
