"""The dialer's safety promises on a real broker, with the fake ElevenLabs and Real Geeks.

Nobody is called who opted out (by lead, by number, from Real Geeks or an operator's list),
at night, or twice (an answer lost on the way back, a worker killed mid-request).
"""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import phonenumbers
import pytest

from ops.testkit.dialer import callable_number, dialer_env
from ops.testkit.fakes.elevenlabs import OUTBOUND_CALL_PATH, FakeElevenLabs
from ops.testkit.fakes.realgeeks import FakeRealGeeks
from ops.testkit.support import Worker, unique
from tests.integration.helpers import cli, outputs, send_realgeeks
from tests.integration.test_call_loop import wait_for

pytestmark = pytest.mark.integration

HST = ZoneInfo("Pacific/Honolulu")
TOKEN = "dialer-test-token"


def lead(site: str, phone: str, name: str = "Ana") -> dict[str, Any]:
    return {
        "site_uuid": site,
        "id": unique("lead"),
        "first_name": name,
        "phone": phone,
        "source": "Website",
        "role": "Buyer",
    }


def neighbour(stem: str) -> str:
    """A valid number in the same area (same zone) outside ``stem``'s 10,000 numbers."""
    for exchange in range(200, 1000):
        number = f"{stem[:-3]}{exchange:03d}5309"
        if number[:-4] != stem and phonenumbers.is_valid_number(phonenumbers.parse(number)):
            return number
    raise AssertionError(f"no other valid exchange for {stem}")


def dialer_record(worker: Worker, site: str, lead_id: str) -> dict[str, Any] | None:
    """The dialer's record of a lead (GET /tables/dialer), None while it has none."""
    request = urllib.request.Request(
        f"{worker.url}/tables/dialer/{site}/{lead_id}",
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.loads(response.read())  # type: ignore[no-any-return]
    except urllib.error.HTTPError as err:
        if err.code in (404, 503):
            return None
        raise


def status_of(worker: Worker, site: str, lead_id: str) -> str | None:
    found = dialer_record(worker, site, lead_id)
    return found["lead"]["status"] if found else None


def metric(worker: Worker, name: str) -> float:
    with urllib.request.urlopen(f"{worker.url}/metrics", timeout=5) as response:
        text = response.read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name) and not line.startswith("#")
    )


async def test_a_lead_who_opts_out_overnight_is_not_called_in_the_morning_nor_is_the_number(
    start_worker: Callable[..., Worker], tmp_path: Path
) -> None:
    """The issue's Honolulu case: created 23:00, opted out 23:20 (activity_added)."""
    async with FakeRealGeeks() as rg, FakeElevenLabs() as el:
        clock = tmp_path / "clock"
        night = datetime.now(UTC).astimezone(HST).replace(hour=23, minute=0, second=0)
        clock.write_text(str(night.timestamp()))
        env = dialer_env(rg, el, RGSYNC_CLOCK_FILE=str(clock), RGSYNC_ADMIN_TOKEN=TOKEN)
        w = await asyncio.to_thread(start_worker, **env)
        site = unique("site")
        stopper = lead(site, "+18088172382", "Oz")
        control = lead(site, "+18088172383", "Nia")
        for body in (stopper, control):
            assert await asyncio.to_thread(send_realgeeks, w, body, action="created") == 200
        await wait_for(lambda: status_of(w, site, control["id"]) == "waiting")
        clock.write_text(str((night + timedelta(minutes=20)).timestamp()))
        opted_out = {
            "site_uuid": site,
            "id": stopper["id"],
            "activities": [
                {
                    "type": "opted_out",
                    "source": "LeadManager",
                    "description": "Lead asked not to be called",
                    "created": (night + timedelta(minutes=20)).isoformat(),
                }
            ],
        }
        status = await asyncio.to_thread(send_realgeeks, w, opted_out, action="activity_added")
        assert status == 200
        await wait_for(lambda: status_of(w, site, stopper["id"]) == "opted_out")
        # Another lead with the same number, created after the opt-out.
        clock.write_text(str((night + timedelta(minutes=30)).timestamp()))
        same_number = lead(site, stopper["phone"], "Ozzie")
        assert await asyncio.to_thread(send_realgeeks, w, same_number, action="created") == 200
        await wait_for(lambda: status_of(w, site, same_number["id"]) == "opted_out")
        assert el.calls == []
        clock.write_text(str((night + timedelta(hours=9, minutes=10)).timestamp()))  # 08:10
        call = await wait_for(lambda: el.calls[0] if el.calls else None, timeout=40)
        assert call.dynamic_variables["lead_id"] == control["id"]
        await asyncio.sleep(6)
        assert [c.dynamic_variables["lead_id"] for c in el.calls] == [control["id"]]
        record = dialer_record(w, site, same_number["id"])
        assert record is not None and record["lead"]["reason"] == "do_not_call"
        assert record["do_not_call"]["phones"][stopper["phone"]]["source"] == "realgeeks"


async def test_a_call_whose_answer_is_lost_is_never_placed_again(
    start_worker: Callable[..., Worker], kafka_bootstrap: str
) -> None:
    async with FakeRealGeeks() as rg, FakeElevenLabs() as el:
        el.disconnect_next(path=OUTBOUND_CALL_PATH, after_processing=True)
        w = await asyncio.to_thread(start_worker, **dialer_env(rg, el, RGSYNC_ADMIN_TOKEN=TOKEN))
        site = unique("site")
        body = lead(site, callable_number(datetime.now(UTC), allowed=True))
        assert await asyncio.to_thread(send_realgeeks, w, body, action="created") == 200
        await wait_for(lambda: el.calls)  # ElevenLabs placed the call; the answer is lost
        await wait_for(lambda: status_of(w, site, body["id"]) == "uncertain")
        await asyncio.sleep(5)  # ticks, retries: nothing may ring the lead again
        assert len(el.requests_to(OUTBOUND_CALL_PATH)) == 1
        (letter,) = await asyncio.to_thread(
            outputs,
            kafka_bootstrap,
            w,
            "sync.deadletter",
            count=1,
            match=lambda r: r["error_type"] == "UncertainCallError",
        )
        assert json.loads(letter["value"])["lead_id"] == body["id"]
        assert metric(w, 'realgeeks_calls_uncertain_total{cause="dropped"}') == 1.0
        code, out, err = await cli(w.env, "dnc", "list", "--uncertain", "--site-uuid", site)
        assert code == 0, err
        (line, footer) = out.strip().splitlines()
        assert json.loads(line)["lead_id"] == body["id"] and json.loads(line)["cause"] == "dropped"
        assert footer == "# 1 call attempt(s) with an unknown outcome"


async def test_a_worker_killed_during_the_call_request_never_sends_it_twice(
    start_worker: Callable[..., Worker], tmp_path: Path
) -> None:
    async with FakeRealGeeks() as rg, FakeElevenLabs() as el:
        el.delay_next(120, path=OUTBOUND_CALL_PATH)  # holds the request open
        env = dialer_env(rg, el, RGSYNC_ADMIN_TOKEN=TOKEN, RGSYNC_ELEVENLABS_TIMEOUT_S="5")
        w = await asyncio.to_thread(start_worker, **env)
        site = unique("site")
        body = lead(site, callable_number(datetime.now(UTC), allowed=True))
        assert await asyncio.to_thread(send_realgeeks, w, body, action="created") == 200
        await wait_for(lambda: el.requests_to(OUTBOUND_CALL_PATH))
        w.kill()
        again = await asyncio.to_thread(start_worker, w.env, False)
        await asyncio.to_thread(again.wait_ready, 120)
        await wait_for(lambda: status_of(again, site, body["id"]) == "uncertain", timeout=120)
        await asyncio.sleep(5)
        assert len(el.requests_to(OUTBOUND_CALL_PATH)) == 1
        record = dialer_record(again, site, body["id"])
        assert record is not None
        (attempt,) = record["lead"]["attempts"]
        assert attempt["state"] == "uncertain" and "worker stopped" in attempt["reason"]


async def test_ten_thousand_imported_numbers_are_never_called(
    start_worker: Callable[..., Worker], tmp_path: Path
) -> None:
    async with FakeRealGeeks() as rg, FakeElevenLabs() as el:
        w = await asyncio.to_thread(start_worker, **dialer_env(rg, el, RGSYNC_ADMIN_TOKEN=TOKEN))
        site = unique("site")
        stem = callable_number(datetime.now(UTC), allowed=True)[:-4]
        numbers = [f"{stem}{n:04d}" for n in range(10_000)]
        # A first lead is called: the dialer is live, past the wait for the list at its start,
        # so the list written next races the leads that follow it straight away.
        control = lead(site, neighbour(stem))
        assert await asyncio.to_thread(send_realgeeks, w, control, action="created") == 200
        await wait_for(lambda: el.calls, timeout=90)
        listed = tmp_path / "dnc.txt"
        # National format for some lines: the region option completes them. (The number in
        # calling hours now may be in any country.)
        region = phonenumbers.region_code_for_number(phonenumbers.parse(stem + "0000"))
        national = phonenumbers.PhoneNumberFormat.NATIONAL
        listed.write_text(
            "\n".join(
                n if i % 2 else phonenumbers.format_number(phonenumbers.parse(n), national)
                for i, n in enumerate(numbers)
            )
            + "\nnot-a-number\n"
        )
        where = ("--site-uuid", site, "--region", region)
        code, out, err = await cli(w.env, "dnc", "import", str(listed), *where)
        assert code == 1 and "1 line(s) are not valid" in err  # the rest is written
        summary = json.loads(out)
        assert (summary["written"], summary["invalid"], summary["undelivered"]) == (10_000, 1, 0)
        assert "dnc: " in err  # progress lines for a large file
        picked = numbers[:: 10_000 // 20]
        leads = [lead(site, number) for number in picked]
        for body in leads:  # while the dialer still reads the list
            assert await asyncio.to_thread(send_realgeeks, w, body, action="created") == 200
        code, out, _ = await cli(w.env, "dnc", "import", str(listed), *where)
        assert json.loads(out)["written"] == 0  # idempotent: nothing new the second time
        code, out, _ = await cli(w.env, "dnc", "list", "--site-uuid", site)
        assert out.strip().splitlines()[-1] == "# 10000 entr(ies) on the do-not-call list"
        await wait_for(
            lambda: all(status_of(w, site, b["id"]) == "opted_out" for b in leads), timeout=90
        )
        await asyncio.sleep(5)
        assert [c.dynamic_variables["lead_id"] for c in el.calls] == [control["id"]]
        assert {status_of(w, site, b["id"]) for b in leads} == {"opted_out"}
