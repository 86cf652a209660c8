"""The opt-outs gate (app/domain/dialing/gate.py) through the real DialerCore, step by step.

One site's partition as the agent sees it: the sync.optouts records in order, the agent's
next offset in them, contexts read in between, and ticks whose end of sync.optouts is
asked of the broker (here: the topic's length) when the agent applies them. Each story
below fails if may_dial lets a tick through before its end was read (``return True``, or
one opt-out short); see the commit that added this file.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

import pytest

from realgeeks_sync.app.domain.dialing import (
    CallAnswer,
    CallEnded,
    CallRequest,
    ContextSeen,
    DialerEvent,
    DialerPolicy,
    LeadStatus,
    OptOut,
    Step,
    Tick,
    may_dial,
)
from realgeeks_sync.app.domain.dialing.store import DialerCore, DialerStore, TableWrite

SITE = "site-1"
HONOLULU = "+18088172382"
HONOLULU_2 = "+18088172383"
HONOLULU_3 = "+18088172384"
OTHER = "+18088170000"  # someone else's number: its opt-outs only move the offsets
NOON_HST = datetime(2026, 6, 1, 12, 0, tzinfo=ZoneInfo("Pacific/Honolulu")).astimezone(UTC)
POLICY = DialerPolicy(max_concurrent_calls=5)


class Partition:
    """The dialer on one site's partition: DialerCore over dict tables, gated by may_dial on
    the agent's next offset of the opt-outs topic (None: nothing read yet)."""

    def __init__(self) -> None:
        self.tables: tuple[dict[str, Any], dict[str, Any], dict[str, Any]] = ({}, {}, {})
        self.store = DialerStore(*self.tables)
        self.now = NOON_HST
        self.optouts: list[OptOut] = []  # the topic: index = offset
        self.next_optout: int | None = None
        self.calls: list[CallRequest] = []
        self.core = DialerCore(
            self.store,
            POLICY,
            lambda: self.now,
            send=self._send,
            persist=self._persist,
            place=self.calls.append,
            dispatching=lambda event: may_dial(event, self.next_optout),
        )

    async def _send(self, _emits: Sequence[Any], _deadletters: Sequence[Any]) -> None:
        return None

    async def _persist(self, writes: list[TableWrite], _durable: bool) -> None:
        for table, key, value in writes:
            if value is None:
                table.pop(key, None)
            else:
                table[key] = value

    def write_optout(self, subject: Literal["lead", "phone"], value: str) -> int:
        """An opt-out acknowledged by the broker (not yet read by the dialer): its offset."""
        lead, phone = (value, None) if subject == "lead" else (None, value)
        at = self.now.isoformat()
        offset = len(self.optouts)
        self.optouts.append(
            OptOut(f"o{offset}", SITE, subject, lead, phone, "opt_out", "realgeeks", at)
        )
        return offset

    def end(self) -> int:
        """The broker's end offset of the opt-outs partition now (asked when a tick is applied)."""
        return len(self.optouts)

    async def read_optouts(self, upto: int | None = None) -> None:
        """The dialer reads the opt-outs in order up to offset ``upto`` (default: all)."""
        start = self.next_optout or 0
        for offset in range(start, len(self.optouts) if upto is None else upto):
            await self.apply(self.optouts[offset])
            self.next_optout = offset + 1

    async def context(self, lead_id: str, phone: str) -> Step:
        """A fresh calls.context record of a new lead, read now."""
        context = {
            "schema": "call_context.v1",
            "event_id": f"ctx-{lead_id}-{self.now.timestamp()}",
            "site_uuid": SITE,
            "lead_id": lead_id,
            "as_of": self.now.isoformat(),
            "lead": {"phone": phone, "phone2": None, "created": None},
            "eligible": True,
            "reason": None,
            "trigger": "created",
            "dynamic_variables": {"lead_id": lead_id, "site_uuid": SITE},
        }
        return await self.apply(ContextSeen(SITE, lead_id, context))

    async def tick(self, end: int | None) -> Step:
        """A tick applied with the opt-outs end ``end``."""
        return await self.apply(Tick(SITE, optouts_end=end))

    async def apply(self, event: DialerEvent) -> Step:
        return await self.core.apply(event)

    def status(self, lead_id: str) -> LeadStatus | None:
        record = self.store.lead(SITE, lead_id)
        return record.status if record is not None else None

    def called(self) -> list[str]:
        return [call.lead_id for call in self.calls]


@pytest.mark.parametrize("subject", ["lead", "phone"])
async def test_an_opt_out_written_before_a_context_but_read_after_it_wins(
    subject: Literal["lead", "phone"],
) -> None:
    p = Partition()
    p.write_optout("phone", OTHER)
    await p.read_optouts()  # the agent has read something: next offset 1, not None
    # A do-not-call import races a new lead: the opt-out is acknowledged (offset 1) before
    # the lead's context is written, but the dialer reads the context first.
    offset = p.write_optout(subject, "l1" if subject == "lead" else HONOLULU)
    assert (await p.context("l1", HONOLULU)).calls == ()  # contexts never dial
    await p.context("l2", HONOLULU_2)  # no opt-out: callable once the gate opens
    assert p.status("l1") is LeadStatus.WAITING
    # The tick's end is asked after both contexts were read: it covers the opt-out.
    end = p.end()
    assert (end, p.next_optout) == (offset + 1, offset)
    assert (await p.tick(end)).calls == ()  # one opt-out short: nobody is called yet
    assert p.status("l1") is LeadStatus.WAITING
    await p.read_optouts()
    result = await p.tick(p.end())
    assert [call.lead_id for call in result.calls] == ["l2"]
    assert p.status("l1") is LeadStatus.OPTED_OUT
    p.now += timedelta(days=1)
    assert (await p.tick(p.end())).calls == ()
    assert "l1" not in p.called() and all(c.phone != HONOLULU for c in p.calls)


async def test_an_opt_out_written_after_the_tick_asked_its_end_holds_the_ticks_after_it() -> None:
    # The agent asks the end, then applies the tick; an opt-out acknowledged in between
    # (after the lead's context was read, too) is not that tick's to wait for: the call
    # leaves, as it would have had the opt-out come a moment later. Every later tick waits
    # for it, so no further call reaches the number.
    p = Partition()
    p.write_optout("phone", OTHER)
    await p.read_optouts()
    await p.context("l1", HONOLULU)
    end = p.end()  # asked: 1
    offset = p.write_optout("phone", HONOLULU)  # acknowledged after the ask: offset 1
    assert offset == end == p.next_optout
    (first,) = (await p.tick(end)).calls
    assert first.lead_id == "l1" and first.phone == HONOLULU
    await p.apply(CallAnswer(SITE, "l1", first.attempt_id, "placed", conversation_id="c1"))
    await p.apply(CallEnded(SITE, "l1", "c1", "no-answer", first.attempt_id))
    assert p.status("l1") is LeadStatus.WAITING  # a redial is due after redial_after
    p.now += POLICY.redial_after + timedelta(minutes=1)
    # The next tick's end (2) covers the opt-out, unread: the redial is held...
    assert (await p.tick(p.end())).calls == ()
    assert p.status("l1") is LeadStatus.WAITING
    # ... and once it is read, the lead is done with.
    await p.read_optouts()
    assert (await p.tick(p.end())).calls == ()
    assert p.status("l1") is LeadStatus.OPTED_OUT
    assert p.calls == [first]


async def test_a_tick_dials_only_with_a_known_end_the_dialer_has_read() -> None:
    p = Partition()
    # Nothing written, nothing read: an unknown end (the broker did not answer) holds the
    # call; an end of 0 (an empty partition) lets it go.
    await p.context("l1", HONOLULU)
    assert (await p.tick(None)).calls == ()
    assert [c.lead_id for c in (await p.tick(0)).calls] == ["l1"]
    # One opt-out written, nothing read yet (next offset None): held.
    p.write_optout("phone", OTHER)
    await p.context("l2", HONOLULU_2)
    assert (await p.tick(p.end())).calls == ()
    await p.read_optouts()
    # Everything read, but the end unknown: still held; known and read: called.
    assert (await p.tick(None)).calls == ()
    assert [c.lead_id for c in (await p.tick(p.end())).calls] == ["l2"]
    # Two more written, one read: one short of the end, held; then called.
    p.write_optout("phone", OTHER)
    p.write_optout("lead", "someone")
    await p.read_optouts(upto=2)
    await p.context("l3", HONOLULU_3)
    assert (p.end(), p.next_optout) == (3, 2)
    assert (await p.tick(p.end())).calls == ()
    await p.read_optouts()
    assert [c.lead_id for c in (await p.tick(p.end())).calls] == ["l3"]
    assert p.called() == ["l1", "l2", "l3"]
