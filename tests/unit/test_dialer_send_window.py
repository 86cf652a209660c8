"""The window at the moment a request leaves, through the real DialerCore.

The window is decided at the step; sending the records and storing the attempt then wait
for the broker as long as it takes (app/streaming/broker_retry.py). A stall across the
window's close must keep the request home: no call, the attempt refused (never uncertain),
the lead called in its next window under a new attempt.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from realgeeks_sync.app.domain.dialing import (
    AttemptState,
    CallRequest,
    ContextSeen,
    DialerEvent,
    DialerPolicy,
    LeadStatus,
    Step,
    Tick,
    answer_for_window_closed,
    answer_record,
    parse_dialer_record,
)
from realgeeks_sync.app.domain.dialing.events import CAUSES
from realgeeks_sync.app.domain.dialing.store import DialerCore, DialerStore, TableWrite

SITE = "site-1"
HONOLULU = "+18088172382"  # Pacific/Honolulu: no daylight saving, 21:00 HST = 07:00 UTC
HST = ZoneInfo("Pacific/Honolulu")
POLICY = DialerPolicy()


def hst(day: int, hour: int, minute: int = 0, second: int = 0, micro: int = 0) -> datetime:
    return datetime(2026, 6, day, hour, minute, second, micro, tzinfo=HST).astimezone(UTC)


class Partition:
    """DialerCore over dict tables; a durable write may take ``stall`` of the clock's time."""

    def __init__(self, now: datetime) -> None:
        self.tables: tuple[dict[str, Any], dict[str, Any], dict[str, Any]] = ({}, {}, {})
        self.store = DialerStore(*self.tables)
        self.now = now
        self.stall: datetime | None = None  # the broker acknowledges the next durable write then
        self.placed: list[tuple[datetime, CallRequest]] = []
        self.durable: list[list[TableWrite]] = []
        self.core = DialerCore(
            self.store,
            POLICY,
            lambda: self.now,
            send=self._send,
            persist=self._persist,
            place=lambda call: self.placed.append((self.now, call)),
            dispatching=lambda event: isinstance(event, Tick),  # as the agent: on ticks only
        )

    async def _send(self, _emits: Sequence[Any], _deadletters: Sequence[Any]) -> None:
        return None

    async def _persist(self, writes: list[TableWrite], durable: bool) -> None:
        for table, key, value in writes:
            if value is None:
                table.pop(key, None)
            else:
                table[key] = value
        if durable:
            self.durable.append(writes)
            if self.stall is not None:
                self.now, self.stall = self.stall, None

    def apply(self, event: DialerEvent) -> Step:
        return asyncio.run(self.core.apply(event))

    def new_lead(self, lead_id: str) -> Step:
        context = {
            "schema": "call_context.v1",
            "event_id": f"ctx-{lead_id}",
            "site_uuid": SITE,
            "lead_id": lead_id,
            "as_of": self.now.isoformat(),
            "lead": {"phone": HONOLULU, "phone2": None, "created": None},
            "eligible": True,
            "reason": None,
            "trigger": "created",
            "dynamic_variables": {"lead_id": lead_id, "site_uuid": SITE},
        }
        return self.apply(ContextSeen(SITE, lead_id, context))

    def lead(self, lead_id: str) -> Any:
        return self.store.lead(SITE, lead_id)


def test_a_broker_stall_across_the_close_keeps_the_call_home_until_next_morning() -> None:
    d = Partition(hst(1, 20, 50))
    d.new_lead("l1")
    d.stall = hst(1, 21, 5)  # the attempt's write is acknowledged 15 minutes later
    result = d.apply(Tick(SITE))

    assert d.placed == []  # decided at 20:50, still home at 21:05: not sent
    assert result.calls == ()
    assert ("refused", "window_closed") in result.counts
    assert ("requested", "") not in result.counts  # calls_requested counts requests sent
    record = d.lead("l1")
    (attempt,) = record.attempts
    assert attempt.state is AttemptState.REFUSED  # provably never left: not uncertain
    assert record.status is LeadStatus.WAITING and record.refusals == 0
    assert d.tables[1][SITE]["in_flight"] == {}  # its line is free again
    # The settlement was stored durably after the attempt (a restart keeps it refused).
    assert len(d.durable) == 2

    d.now = hst(1, 21, 6)  # the next tick, past orphan_after: still refused, deferred
    assert d.apply(Tick(SITE)).calls == ()
    record = d.lead("l1")
    assert record.attempts[0].state is AttemptState.REFUSED
    assert record.status is LeadStatus.WAITING and record.reason == "outside_calling_hours"
    assert record.due == hst(2, 8).timestamp()

    d.now = hst(2, 8)
    d.apply(Tick(SITE))
    ((at, call),) = d.placed
    assert at == hst(2, 8) and call.lead_id == "l1"
    assert call.attempt_id == d.lead("l1").attempts[1].attempt_id != attempt.attempt_id
    assert d.lead("l1").status is LeadStatus.CALLING


def test_a_request_leaves_up_to_its_not_after_and_not_a_microsecond_later() -> None:
    # 21:00 HST closes the window; it must still be open 2 minutes after the request leaves.
    last = hst(1, 20, 57, 59, 999999)
    on_time = Partition(hst(1, 20, 50))
    on_time.new_lead("l1")
    on_time.stall = last
    (call,) = on_time.apply(Tick(SITE)).calls
    assert call.not_after == last
    assert [at for at, _ in on_time.placed] == [last]

    late = Partition(hst(1, 20, 50))
    late.new_lead("l1")
    late.stall = last + timedelta(microseconds=1)
    assert late.apply(Tick(SITE)).calls == () and late.placed == []


def test_a_lead_admitted_after_its_not_after_waits_for_the_next_window() -> None:
    d = Partition(hst(1, 20, 58))  # open now, but not 2 minutes on
    d.new_lead("l1")
    assert d.apply(Tick(SITE)).calls == ()
    assert d.lead("l1").due == hst(2, 8).timestamp()


def test_the_window_closed_answer_reads_back_as_a_retriable_refusal() -> None:
    answer = answer_for_window_closed(SITE, "l1", "a1")
    assert parse_dialer_record(answer_record(answer)) == answer
    assert answer.result == "refused" and answer.retriable and answer.cause == "window_closed"
    # The agent writes it to sync.dialer-events when its task starts too late: in the contract.
    schema = Path(__file__).parents[2] / "docs" / "schemas" / "dialer_event.v1.json"
    causes = json.loads(schema.read_text())["$defs"]["answer"]["properties"]["cause"]["enum"]
    assert causes == list(CAUSES)
