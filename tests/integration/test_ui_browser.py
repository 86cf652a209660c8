"""The /ui/ pages in a real headless Chromium: what a person sees, and what nobody sees.

A worker with the dialer on and the fakes over HTTP; a lead arrives, is called, its call
ends and the outcome is written back. Then, as a person in a browser: without the token
only the login form; a wrong token refused; with it, the dashboard's figures and pause
switch (paused, then running again), a search by email that lands on the lead, and the
lead's page with its name and each step of its story. Screenshots of each page are kept
in the test's folder.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

import pytest

from ops.testkit.browser import Browser, chromium_path
from ops.testkit.dialer import callable_number, dialer_env
from ops.testkit.fakes.elevenlabs import FakeElevenLabs
from ops.testkit.fakes.realgeeks import FakeRealGeeks
from ops.testkit.support import Worker, free_port, unique
from tests.integration.helpers import send_realgeeks
from tests.integration.test_call_loop import wait_for
from tests.integration.test_dialer import TOKEN, status_of

STEPS = (
    "New lead from a Real Geeks webhook",
    "Call context: callable",
    "AI call placed",
    "Call ended: completed",
    "Write to Real Geeks: called activity",
)


@pytest.fixture
def chromium() -> str:
    path = chromium_path()
    if path is None:
        message = "no chromium: ops/chromium install (ops/test runs it)"
        if os.environ.get("RGSYNC_REQUIRE_KAFKA") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return path


async def test_a_person_sees_the_dashboard_and_the_lead_s_story_and_nothing_without_the_token(
    chromium: str, start_worker: Callable[..., Worker], tmp_path: Path
) -> None:
    port = free_port()
    site = unique("site")
    async with (
        FakeRealGeeks() as rg,
        FakeElevenLabs(
            webhook_url=f"http://127.0.0.1:{port}/webhooks/elevenlabs",
            webhook_secret="el-secret",
            complete_after_s=0.5,
        ) as el,
    ):
        env = dialer_env(rg, el, RGSYNC_ADMIN_TOKEN=TOKEN, RGSYNC_WEB_PORT=str(port))
        w = await asyncio.to_thread(start_worker, **env)
        lead = {
            "site_uuid": site,
            "id": unique("lead") + "2026120",  # digits enough to look like a phone
            "first_name": "Makana",
            "last_name": "Kealoha",
            "email": "makana.kealoha@example.com",
            "phone": callable_number(datetime.now(UTC), allowed=True),
            "source": "Website",
            "role": "Buyer",
        }
        assert await asyncio.to_thread(send_realgeeks, w, lead, action="created") == 200
        await wait_for(lambda: status_of(w, site, lead["id"]) == "done", timeout=60)
        await wait_for(lambda: len(rg.all_activities()) >= 2)

        async with Browser() as browser:
            # Without the token: the login form, and not a word about the lead.
            for path in ("/ui/", f"/ui/leads/{site}/{lead['id']}", "/ui/search?q=makana"):
                text = await browser.open(w.url + path)
                assert "Admin token" in text and "Makana" not in text, (path, text)
                assert "Leads today" not in text
            await browser.fill("[name=token]", "not-the-token")
            text = await browser.click("form[action='/ui/login'] button")
            assert "That is not the admin token." in text and "Leads today" not in text
            # Logged in: back where it was going (the search), then the dashboard.
            await browser.fill("[name=token]", TOKEN)
            await browser.fill("[name=name]", "Dana")
            text = await browser.click("form[action='/ui/login'] button")
            cookie = next(c for c in await browser.cookies() if c["name"] == "rgsync_session")
            assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
            assert TOKEN not in cookie["value"]
            text = await browser.open(w.url + "/ui/")
            await browser.screenshot(tmp_path / "dashboard.png")
            assert "Leads today\n1" in text and "Calls placed\n1" in text, text
            assert "Contact rate\n100 %" in text and "Dana" in text
            assert site in text and "running" in text
            # The pause switch: paused, then running again.
            text = await browser.click(
                "form[action='/ui/dialer'] input[value='" + site + "'] ~ button"
            )
            await wait_for_text(browser, w.url + "/ui/", "paused")
            await browser.screenshot(tmp_path / "dashboard-paused.png")
            text = await browser.click(
                "form[action='/ui/dialer'] input[value='" + site + "'] ~ button"
            )
            text = await wait_for_text(browser, w.url + "/ui/", "running")
            assert "paused" not in text
            # Search by email lands on the lead: its name and each step of its story.
            await browser.fill("[name=q]", "Makana.Kealoha@example.com")
            text = await browser.click("form[action='/ui/search'] button")
            assert f"/ui/leads/{site}/" in await browser.url()
            await browser.screenshot(tmp_path / "lead.png")
            assert "Makana Kealoha" in text
            for step in STEPS:
                assert step in text, (step, text)
            assert "posted" in text and "conversation_held" in text
            # By the phone as a person types it, and by the Real Geeks id: the same page.
            phone = lead["phone"]
            for query in (f"{phone[:-7]} {phone[-7:-4]}-{phone[-4:]}", lead["id"]):
                await browser.open(w.url + "/ui/search?" + urlencode({"q": query}))
                assert f"/ui/leads/{site}/{lead['id']}" in await browser.url(), query
            # Logged out: the pages are closed again.
            text = await browser.click("form[action='/ui/logout'] button")
            text = await browser.open(w.url + f"/ui/leads/{site}/{lead['id']}")
            assert "Admin token" in text and "Makana" not in text


async def wait_for_text(browser: Browser, url: str, wanted: str, timeout: float = 20.0) -> str:
    deadline = asyncio.get_running_loop().time() + timeout
    text = ""
    while asyncio.get_running_loop().time() < deadline:
        text = await browser.open(url)
        if wanted in text:
            return text
        await asyncio.sleep(0.5)
    raise AssertionError(f"{wanted!r} never shown:\n{text}")
