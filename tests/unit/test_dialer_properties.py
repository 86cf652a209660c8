"""The dialer's safety rules as invariants over random sequences of events and faults.

A hypothesis state machine drives the real ``DialerCore`` (the agent's order of effects:
send, store, then call) over dict tables: new leads and updates in zones around the world
(and numbers whose zone is unknown), opt-outs and opt-ins from every source, by lead and by
number, clock moves from seconds to days, every kind of answer to a call request (placed,
429, 4xx, refused connection, timeout, dropped, 5xx, success false), call outcomes, timer
ticks, worker restarts (requests in flight lost), crashes in the middle of an event,
a broker that takes minutes or hours to acknowledge a tick's records or the attempt it
stores (the clock moves during the write, maybe past the window's close), redeliveries of
old events, and operators pausing and resuming sites, pausing and resuming every site (one
record per partition, each partition reading its copy when it does: a site never seen
before must wait as well), asking to call a lead now and never to call one. Opt-outs are
written to their topic and read later, after
contexts and ticks written after them (Kafka orders no topic against another), and
contexts may say a lead opted out before the dialer read it. As in the agent, a tick gets
the opt-outs end when it is applied (asked again on every delivery), and opt-outs may be
acknowledged between that ask and the tick's decisions. Every opt-out written, context read
and end asked has its moment, so each call request can be checked against the opt-outs
acknowledged before its lead's context was read and before its tick asked the end.
Each call request is checked against what the dialer promises at the moment it is placed
(the window among them, on the clock as it is then), and a request kept home because its
window closed during the write must end refused, never uncertain, and never be sent.
A failing run prints the sequence of steps that broke it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from realgeeks_sync.app.domain.calling_window import (
    InvalidPhoneNumberError,
    UnknownTimezoneError,
    candidate_zones,
    is_open_everywhere,
)
from realgeeks_sync.app.domain.dialing import (
    CallAnswer,
    CallEnded,
    CallRequest,
    ContextSeen,
    DialerPolicy,
    OperatorAction,
    OptOut,
    Tick,
    may_dial,
)
from realgeeks_sync.app.domain.dialing.records import (
    AttemptState,
    LeadStatus,
    all_sites_key,
    is_all_sites,
)
from realgeeks_sync.app.domain.dialing.store import DialerCore, DialerStore

SITES = ("site-a", "site-b", "site-c")
# Two partitions for the switch for every site (opt-outs are modelled as one stream).
PARTITION = {"site-a": 0, "site-b": 1, "site-c": 0}
PHONES = (
    "+18088172382",  # Honolulu, no daylight saving
    "+12125550123",  # New York
    "+14155550123",  # Los Angeles
    "+442079460958",  # London
    "+61293744000",  # Sydney
    "+81332245000",  # Tokyo
    "+18005551234",  # toll-free: 42 zones from Guam to Newfoundland
    "+80012345678",  # international freephone: zone unknown
    "+79161234567",  # Russian mobile: 16 zones, never all open at once
)
ONE_ZONE = PHONES[:6]
STARTS = (
    datetime(2026, 3, 8, 9, 30, tzinfo=UTC),  # US daylight saving starts that night
    datetime(2026, 6, 15, 19, 0, tzinfo=UTC),
    datetime(2026, 11, 1, 6, 45, tzinfo=UTC),  # ... ends
    datetime(2026, 12, 31, 23, 50, tzinfo=UTC),
)
POLICY = DialerPolicy(
    max_concurrent_calls=2,
    max_attempts=3,
    max_attempts_per_day=2,
    redial_after=timedelta(hours=4),
    max_context_age=timedelta(hours=1),
    line_hold=timedelta(minutes=15),
    orphan_after=timedelta(seconds=45),
    max_refusals=4,
)
ANSWERS = (
    "placed",
    "rate_limited",
    "rejected",
    "not_connected",
    "timeout",
    "dropped",
    "server_error",
    "not_placed",
)
OUTCOMES = ("completed", "no-answer", "busy", "voicemail", "failed", "unknown")
# A broker slow to acknowledge a tick's writes: (which write, how long the clock moves).
Stall = tuple[str, timedelta]
STALLS: tuple[Stall | None, ...] = (
    None,
    None,
    None,
    ("persist", timedelta(seconds=30)),
    ("persist", timedelta(minutes=15)),
    ("persist", timedelta(hours=3)),
    ("send", timedelta(minutes=5)),
    ("send", timedelta(hours=2)),
)


class Crash(Exception):
    """The worker died in the middle of applying an event."""


@dataclass
class Dispatch:
    """One call request as the fake ElevenLabs would see it."""

    at: datetime
    call: CallRequest
    refused: bool = False  # an answer proved no call was made
    ended_at: datetime | None = None  # an outcome said the call ended
    answered: str | None = None


@dataclass
class Lead:
    """What the test itself knows about a lead it created."""

    site: str
    lead: str
    phones: set[str] = field(default_factory=set)
    admissible: bool = False  # its first context was a fresh ``created`` one
    context_read_at: int = 0  # the moment the dialer read its latest context


def _context(
    lead: Lead,
    phone: str | None,
    *,
    trigger: str,
    as_of: datetime,
    eligible: bool,
    n: int,
    reason: str = "role_not_callable",
) -> dict[str, Any]:
    return {
        "schema": "call_context.v1",
        "event_id": f"ctx-{lead.lead}-{n}",
        "site_uuid": lead.site,
        "lead_id": lead.lead,
        "as_of": as_of.isoformat(),
        "lead": {"phone": phone, "phone2": None, "created": None},
        "eligible": eligible,
        "reason": None if eligible else reason,
        "trigger": trigger,
        "dynamic_variables": {"lead_id": lead.lead, "site_uuid": lead.site, "first": "Ana"},
    }


class DialerMachine(RuleBasedStateMachine):
    """Random events and faults against the dialer, with the promises checked throughout."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: tuple[dict[str, Any], dict[str, Any], dict[str, Any]] = ({}, {}, {})
        self.store = DialerStore(*self.tables, partition_of=PARTITION.__getitem__)
        self.now = STARTS[0]
        self.live: set[str] = set()
        self.in_flight: list[CallRequest] = []  # requests whose answer has not come back
        self.dispatches: list[Dispatch] = []
        self.leads: dict[tuple[str, str], Lead] = {}
        self.blocked: set[tuple[str, str, str]] = set()  # (site, "lead"|"phone", value)
        # The opt-outs topic: what was written (in force for the person from then on), the
        # moment the broker acknowledged each record, and the next offset the dialer reads
        # (None: nothing read yet, as the agent's _CaughtUp.next_offset says).
        self.optouts_topic: list[OptOut] = []
        self.written_at: list[int] = []
        self.optouts_read: int | None = None
        # A logical clock: opt-outs written, contexts read and opt-outs ends asked, in order.
        self.moment = 0
        self.asked_at: int | None = None  # when the tick being applied asked its end
        self.told_opted_out: set[tuple[str, str]] = set()  # a context said so
        self.paused: set[str] = set()  # sites an operator paused
        # Partitions that read a pause of every site (and no resume of every site since), and
        # the copies of such records written to each partition and not read yet, in order.
        self.paused_all: set[int] = set()
        self.unread_all: dict[int, list[str]] = {0: [], 1: []}
        self.never: set[tuple[str, str]] = set()  # leads an operator said never to call
        self.applied: list[Any] = []
        self.crash_at: str | None = None
        self.stall: Stall | None = None  # the next write of that kind takes time
        self.kept_home: set[tuple[str, str, str]] = set()  # (site, lead, attempt) never sent
        self.catching_up = False
        self.reading_optouts = False
        # At least once: what a restart finds is the tables as of the last offset commit
        # (Faust flushes the producer first) plus every durable write since; the events
        # after that commit are read again, in order.
        self.committed: list[dict[str, Any]] = [{}, {}, {}]
        self.durable_since: list[tuple[int, str, Any]] = []
        self.uncommitted: list[Any] = []
        self.counter = 0
        self.loop = asyncio.new_event_loop()
        self.core = DialerCore(
            self.store,
            POLICY,
            lambda: self.now,
            send=self._send,
            persist=self._persist,
            place=self._place,
            live=lambda: frozenset(self.live),
            dispatching=lambda event: (
                not (self.catching_up or self.reading_optouts)
                and may_dial(event, self.optouts_read)
            ),
        )

    # -- the effects, as the agent performs them -------------------------------------------

    async def _send(self, emits: Any, deadletters: Any) -> None:
        if self.crash_at == "send":
            raise Crash
        self._stall("send")

    async def _persist(self, writes: list[Any], durable: bool) -> None:
        if self.crash_at == "persist":
            raise Crash
        if durable:
            self._stall("persist")
        for table, key, value in writes:
            if value is None:
                table.pop(key, None)
            else:
                table[key] = value
            if durable:
                index = next(i for i, t in enumerate(self.tables) if t is table)
                self.durable_since.append((index, key, value))
        if self.crash_at == "place":
            raise Crash  # stored, but the process died before the request left

    def _stall(self, write: str) -> None:
        """The broker acknowledges the write only after ``self.stall``'s time (the agent
        retries until it does), maybe past the window's close."""
        if self.stall is not None and self.stall[0] == write:
            self.now += self.stall[1]
            self.stall = None

    def _place(self, call: CallRequest) -> None:
        self._check_dispatch(call)
        self.dispatches.append(Dispatch(self.now, call))
        self.in_flight.append(call)
        self.live.add(call.attempt_id)

    def _next_moment(self) -> int:
        self.moment += 1
        return self.moment

    def _deliver(self, event: Any, *, known: bool = True, meanwhile: Any = None) -> None:
        """Apply one record as the agent does: a tick gets the opt-outs end asked now (None
        when the broker does not answer); ``meanwhile`` runs between that ask and the tick."""
        self.asked_at = None
        if isinstance(event, Tick):
            self.asked_at = self._next_moment()
            end = len(self.optouts_topic) if known else None
            if meanwhile is not None:
                meanwhile()
            event = Tick(event.site_uuid, optouts_end=end)
        elif isinstance(event, ContextSeen):
            self.leads[(event.site_uuid, event.lead_id)].context_read_at = self._next_moment()
        before = {attempt for attempt, _ in self._attempts()}
        placed = len(self.dispatches)
        self.run(self.core.apply(event))
        self.stall = None
        sent = {d.call.attempt_id for d in self.dispatches[placed:]}
        for (site, lead_id, attempt_id), record in self._attempts():
            if (site, lead_id, attempt_id) in before or attempt_id in sent:
                continue
            # Stored as leaving but not sent: its window closed while it was being stored.
            attempt = record.attempt(attempt_id)
            assert attempt is not None and attempt.state is AttemptState.REFUSED, (
                f"attempt {attempt_id} of lead {lead_id}: kept home but {attempt}"
            )
            assert record.status is LeadStatus.WAITING, f"lead {lead_id} kept home: {record}"
            self.kept_home.add((site, lead_id, attempt_id))

    def _attempts(self) -> list[tuple[tuple[str, str, str], Any]]:
        """Every stored attempt as ((site, lead, attempt id), its lead's record)."""
        found = []
        for site, lead_id in self.leads:
            record = self.store.lead(site, lead_id)
            for attempt in record.attempts if record is not None else ():
                found.append(((site, lead_id, attempt.attempt_id), record))
        return found

    def apply(
        self,
        event: Any,
        *,
        crash_at: str | None = None,
        known: bool = True,
        meanwhile: Any = None,
        stall: Stall | None = None,
    ) -> None:
        if isinstance(event, OptOut):
            # In force from the moment it is applied: a call in the same step must honour it.
            key = (event.site_uuid, event.subject, event.value)
            if event.action == "opt_out":
                self.blocked.add(key)
            else:
                self.blocked.discard(key)
        if isinstance(event, OperatorAction) and is_all_sites(event.site_uuid):
            partition = int(event.site_uuid.split(":")[1])
            if event.action == "pause":
                self.paused_all.add(partition)
            else:
                self.paused_all.discard(partition)
        elif isinstance(event, OperatorAction):
            if event.action == "pause":
                self.paused.add(event.site_uuid)
            elif event.action == "resume":
                self.paused.discard(event.site_uuid)
            elif event.action == "never_call":
                self.never.add((event.site_uuid, event.lead_id or ""))
        self.crash_at = crash_at
        self.stall = stall
        try:
            self._deliver(event, known=known, meanwhile=meanwhile)
        except Crash:
            self.crash_at = self.stall = None
            self._restart()
            self._deliver(event)  # at least once: read again after the crash
        self.crash_at = None
        self.applied.append(event)
        self.uncommitted.append(event)

    def run(self, coroutine: Any) -> Any:
        return self.loop.run_until_complete(coroutine)

    def teardown(self) -> None:
        self.loop.close()

    def _restart(self) -> None:
        """The process dies: requests in flight and unflushed writes are lost; the events
        after the last commit come again."""
        self.live.clear()
        self.in_flight.clear()  # their answers are lost with the process
        for table, committed in zip(self.tables, self.committed, strict=True):
            table.clear()
            table.update(committed)
        for index, key, value in self.durable_since:
            if value is None:
                self.tables[index].pop(key, None)
            else:
                self.tables[index][key] = value
        # The agent holds every call until it has read the partition's opt-outs and operator
        # actions again (_CaughtUp): model it by replaying with calls held up to the last.
        replay = list(self.uncommitted)
        last_optout = max(
            (n for n, e in enumerate(replay) if isinstance(e, OptOut | OperatorAction)),
            default=-1,
        )
        for n, event in enumerate(replay):
            self.reading_optouts = n < last_optout
            self._deliver(event)
        self.reading_optouts = False

    # -- rules -------------------------------------------------------------------------

    @initialize(start=st.sampled_from(STARTS), offset=st.integers(0, 24 * 60))
    def start(self, start: datetime, offset: int) -> None:
        self.now = start + timedelta(minutes=offset)

    @rule(
        site=st.sampled_from(SITES),
        phone=st.sampled_from(PHONES),
        trigger=st.sampled_from(("created", "created", "created", "backfill")),
        age_min=st.sampled_from((0, 0, 0, 5, 59, 61, 600)),
        eligible=st.sampled_from((True, True, True, False)),
        reason=st.sampled_from(("role_not_callable", "opted_out")),
        crash=st.sampled_from((None, None, None, "send", "persist", "place")),
    )
    def new_lead(
        self,
        site: str,
        phone: str,
        trigger: str,
        age_min: int,
        eligible: bool,
        reason: str,
        crash: str | None,
    ) -> None:
        self.counter += 1
        lead = Lead(site, f"lead{self.counter}", {phone})
        lead.admissible = trigger == "created" and age_min <= 60
        self.leads[(site, lead.lead)] = lead
        as_of = self.now - timedelta(minutes=age_min)
        context = _context(
            lead, phone, trigger=trigger, as_of=as_of, eligible=eligible, n=0, reason=reason
        )
        self._told(lead, eligible, reason)
        self.apply(ContextSeen(site, lead.lead, context), crash_at=crash)

    @precondition(lambda self: self.leads)
    @rule(
        data=st.data(),
        phone=st.sampled_from((*PHONES, None)),
        trigger=st.sampled_from(("updated", "activity_added")),
        eligible=st.booleans(),
        reason=st.sampled_from(("role_not_callable", "opted_out")),
    )
    def update_lead(
        self, data: st.DataObject, phone: str | None, trigger: str, eligible: bool, reason: str
    ) -> None:
        lead = data.draw(st.sampled_from(sorted(self.leads.values(), key=lambda x: x.lead)))
        if phone:
            lead.phones.add(phone)
        self.counter += 1
        context = _context(
            lead,
            phone,
            trigger=trigger,
            as_of=self.now,
            eligible=eligible,
            n=self.counter,
            reason=reason,
        )
        self._told(lead, eligible, reason)
        self.apply(ContextSeen(lead.site, lead.lead, context))

    def _told(self, lead: Lead, eligible: bool, reason: str) -> None:
        if not eligible and reason == "opted_out":
            self.told_opted_out.add((lead.site, lead.lead))

    @precondition(lambda self: self.leads)
    @rule(
        data=st.data(),
        by_number=st.booleans(),
        source=st.sampled_from(("realgeeks", "elevenlabs", "operator")),
        action=st.sampled_from(("opt_out", "opt_out", "opt_out", "opt_in")),
        read_now=st.booleans(),
    )
    def opt_out(
        self, data: st.DataObject, by_number: bool, source: str, action: str, read_now: bool
    ) -> None:
        lead = data.draw(st.sampled_from(sorted(self.leads.values(), key=lambda x: x.lead)))
        if action == "opt_in":
            source = "operator"
        if by_number:
            number = data.draw(st.sampled_from(sorted(lead.phones)))
            event = OptOut(
                f"o{self.counter}",
                lead.site,
                "phone",
                lead.lead,
                number,
                action,
                source,
                self.now.isoformat(),
            )
        else:
            event = OptOut(
                f"o{self.counter}",
                lead.site,
                "lead",
                lead.lead,
                None,
                action,
                source,
                self.now.isoformat(),
            )
        self.counter += 1
        self._write_optout(event)
        if read_now:
            self.read_optouts(len(self.optouts_topic))

    @rule(site=st.sampled_from(SITES), phone=st.sampled_from(PHONES))
    def list_number(self, site: str, phone: str) -> None:
        """An operator lists a number (a do-not-call import), maybe before any lead has it;
        the dialer reads it later."""
        self.counter += 1
        at = self.now.isoformat()
        self._write_optout(
            OptOut(f"o{self.counter}", site, "phone", None, phone, "opt_out", "operator", at)
        )

    def _write_optout(self, event: OptOut) -> None:
        """On the topic, acknowledged now: in force for the person from this moment, for the
        dialer once it reads it."""
        self.optouts_topic.append(event)
        self.written_at.append(self._next_moment())

    def _in_force(self, key: tuple[str, str, str], before: int) -> int | None:
        """The moment of the opt-out of ``key`` in force among those written before
        ``before`` (None: none, or an opt-in after it)."""
        written: int | None = None
        for at, event in zip(self.written_at, self.optouts_topic, strict=True):
            if at >= before:
                break
            if (event.site_uuid, event.subject, event.value) == key:
                written = at if event.action == "opt_out" else None
        return written

    @precondition(lambda self: (self.optouts_read or 0) < len(self.optouts_topic))
    @rule(count=st.integers(1, 3))
    def read_optouts(self, count: int) -> None:
        """The dialer reads the next opt-outs of the topic, in order."""
        start = self.optouts_read or 0
        for offset, event in enumerate(self.optouts_topic[start : start + count], start):
            self.optouts_read = offset + 1
            self.apply(event)
            if event.action == "opt_in" and event.subject == "lead":
                self.told_opted_out.discard((event.site_uuid, event.value))
            if event.action == "opt_out" and event.subject == "lead":
                # The lead's known numbers are blocked with it (the dialer emits those events).
                record = self.store.lead(event.site_uuid, event.value)
                lead = self.leads.get((event.site_uuid, event.value))
                for number in lead.phones if lead else ():
                    if record is not None and number in record.phones:
                        self.blocked.add((event.site_uuid, "phone", number))

    @rule(step=st.sampled_from((1, 20, 50, 60, 300, 1800, 3600, 4 * 3600, 13 * 3600, 2 * 86400)))
    def advance_clock(self, step: int) -> None:
        self.now += timedelta(seconds=step)

    @rule(
        data=st.data(),
        site=st.sampled_from(SITES),
        known=st.sampled_from((True, True, True, False)),
        meanwhile=st.sampled_from((None, None, None, "lead", "phone")),
        stall=st.sampled_from(STALLS),
    )
    def tick(
        self,
        data: st.DataObject,
        site: str,
        known: bool,
        meanwhile: str | None,
        stall: Stall | None,
    ) -> None:
        """A tick: the agent asks the opt-outs end (unknown when the broker does not
        answer), then applies it; an opt-out of one of the site's leads may be acknowledged
        in between (too late for this tick: its call may leave). The broker may take its
        time to acknowledge the tick's records or the attempts it stores (``stall``)."""
        mine = sorted((x for x in self.leads.values() if x.site == site), key=lambda x: x.lead)
        late = None
        if meanwhile and mine:
            lead = data.draw(st.sampled_from(mine))
            value = (
                data.draw(st.sampled_from(sorted(lead.phones)))
                if meanwhile == "phone"
                else lead.lead
            )
            late = self._optout_of(lead, meanwhile, value)
        self.apply(
            Tick(site),
            known=known,
            meanwhile=None if late is None else (lambda: self._write_optout(late)),
            stall=stall,
        )

    @precondition(lambda self: self._due_leads())
    @rule(
        data=st.data(),
        write=st.sampled_from(("persist", "persist", "send")),
        across=st.sampled_from((None, -1.0, -1e-6, 0.0, 1e-6, 1.0, 90.0)),
    )
    def slow_tick(self, data: st.DataObject, write: str, across: float | None) -> None:
        """A tick that may dial (every opt-out read, no catch-up: a worker's usual state)
        while the broker takes its time to acknowledge: calls decided in their window may
        be stored after it closed. ``across``: the write ends that many seconds after the
        last moment a call to the drawn lead may leave (else a stall from STALLS).
        (Random ticks seldom dial: opt-outs unread, catch-ups pending.)"""
        if (self.optouts_read or 0) < len(self.optouts_topic):
            self.read_optouts(len(self.optouts_topic))
        self.catching_up = False
        due = self._due_leads()
        if not due:
            return
        lead = data.draw(st.sampled_from(due))
        record = self.store.lead(lead.site, lead.lead)
        last = self._last_moment(record.phone) if record is not None and record.phone else None
        if across is None or last is None or last < self.now:
            stall = data.draw(st.sampled_from([s for s in STALLS if s is not None]))
        else:
            stall = (write, last - self.now + timedelta(seconds=across))
        self.apply(Tick(lead.site), stall=stall)

    def _last_moment(self, phone: str) -> datetime | None:
        """The last second a call to ``phone`` may leave today by the test's own reckoning:
        2 minutes before 21:00 in the first of its zones to reach it (None: zone unknown)."""
        try:
            zones = candidate_zones(phone)
        except (UnknownTimezoneError, InvalidPhoneNumberError):
            return None
        closes = [
            datetime.combine(self.now.astimezone(_zone(z)).date(), time(21), tzinfo=_zone(z))
            for z in zones
        ]
        return min(closes).astimezone(UTC) - POLICY.dispatch_margin

    def _optout_of(self, lead: Lead, subject: str, value: str) -> OptOut:
        """An opt-out of the lead (``value``: its id) or of one of its numbers."""
        self.counter += 1
        return OptOut(
            f"o{self.counter}",
            lead.site,
            subject,  # type: ignore[arg-type]
            lead.lead if subject == "lead" else None,
            value if subject == "phone" else None,
            "opt_out",
            "realgeeks",
            self.now.isoformat(),
        )

    @rule(
        data=st.data(),
        subject=st.sampled_from(("lead", "phone")),
        before_context=st.booleans(),
        read_first=st.booleans(),
    )
    def race(
        self, data: st.DataObject, subject: str, before_context: bool, read_first: bool
    ) -> None:
        """An opt-out races a lead's call: acknowledged before the tick that would dial the
        lead (and maybe before its context), read by the dialer only after that tick. With
        ``read_first`` every earlier opt-out was read: the tick is exactly one short."""
        due = self._due_leads()
        if read_first and (self.optouts_read or 0) < len(self.optouts_topic):
            self.read_optouts(len(self.optouts_topic))
        if before_context or not due:
            # A do-not-call import racing a new lead the dialer would call now.
            open_now = [p for p in ONE_ZONE if is_open_everywhere(candidate_zones(p), self.now)]
            self.counter += 1
            site = data.draw(st.sampled_from(SITES))
            lead = Lead(
                site, f"lead{self.counter}", {data.draw(st.sampled_from(open_now or PHONES))}, True
            )
            self.leads[(site, lead.lead)] = lead
            (phone,) = lead.phones
            self._write_optout(
                self._optout_of(lead, subject, phone if subject == "phone" else lead.lead)
            )
            context = _context(lead, phone, trigger="created", as_of=self.now, eligible=True, n=0)
            self.apply(ContextSeen(site, lead.lead, context))
        else:
            lead = data.draw(st.sampled_from(due))
            value = (
                data.draw(st.sampled_from(sorted(lead.phones))) if subject == "phone" else lead.lead
            )
            self._write_optout(self._optout_of(lead, subject, value))
        self.apply(Tick(lead.site))

    def _due_leads(self) -> list[Lead]:
        """Leads waiting for a call whose time has come (by the dialer's own records)."""
        due = []
        for site in SITES:
            record = self.store.site(site)
            for lead_id, (when, _) in sorted((record.waiting if record else {}).items()):
                if when <= self.now.timestamp() and (site, lead_id) in self.leads:
                    due.append(self.leads[(site, lead_id)])
        return due

    @precondition(lambda self: self.in_flight)
    @rule(data=st.data(), kind=st.sampled_from(ANSWERS), really_placed=st.booleans())
    def answer(self, data: st.DataObject, kind: str, really_placed: bool) -> None:
        call = data.draw(st.sampled_from(self.in_flight))
        self.in_flight.remove(call)
        self.live.discard(call.attempt_id)
        dispatch = next(d for d in self.dispatches if d.call.attempt_id == call.attempt_id)
        dispatch.answered = kind
        if kind == "placed":
            answer = CallAnswer(
                call.site_uuid,
                call.lead_id,
                call.attempt_id,
                "placed",
                cause="placed",
                conversation_id=f"conv-{call.attempt_id}",
            )
        elif kind in ("rate_limited", "rejected", "not_connected"):
            dispatch.refused = True
            answer = CallAnswer(
                call.site_uuid,
                call.lead_id,
                call.attempt_id,
                "refused",
                cause=kind,
                retriable=kind != "rejected",
                retry_after=1.0,
            )
        else:
            # The call may or may not exist; the test decides what really happened.
            dispatch.answered = kind + (":placed" if really_placed else ":none")
            answer = CallAnswer(
                call.site_uuid, call.lead_id, call.attempt_id, "unknown", cause=kind
            )
        self.apply(answer)

    @precondition(lambda self: self._ended_candidates())
    @rule(
        data=st.data(),
        outcome=st.sampled_from(OUTCOMES),
        opted_out=st.booleans(),
        by_attempt=st.booleans(),
    )
    def outcome(self, data: st.DataObject, outcome: str, opted_out: bool, by_attempt: bool) -> None:
        dispatch = data.draw(st.sampled_from(self._ended_candidates()))
        dispatch.ended_at = self.now
        call = dispatch.call
        opted_out = opted_out and outcome == "completed"
        self.apply(
            CallEnded(
                call.site_uuid,
                call.lead_id,
                f"conv-{call.attempt_id}" if dispatch.answered == "placed" else None,
                outcome,
                attempt_id=call.attempt_id if by_attempt else None,
                opted_out=opted_out,
            )
        )
        if opted_out:
            self._write_optout(
                OptOut(
                    f"el{self.counter}",
                    call.site_uuid,
                    "lead",
                    call.lead_id,
                    None,
                    "opt_out",
                    "elevenlabs",
                    self.now.isoformat(),
                )
            )
            self.counter += 1

    @rule(site=st.sampled_from(SITES), action=st.sampled_from(("pause", "resume")))
    def operator_switch(self, site: str, action: str) -> None:
        self.counter += 1
        self.apply(
            OperatorAction(site, action, "ops", self.now.isoformat(), event_id=f"op{self.counter}")  # type: ignore[arg-type]
        )

    @rule(
        action=st.sampled_from(("pause", "resume")),
        read_now=st.sampled_from(((), (0,), (1,), (0, 1), (1, 0))),
    )
    def operator_every_site(self, action: str, read_now: tuple[int, ...]) -> None:
        """Pause or resume every site: a copy on each partition; ``read_now`` read at once,
        the others later (read_every_site), each in order with its partition's records."""
        for queue in self.unread_all.values():
            queue.append(action)
        for partition in read_now:
            self.read_every_site(partition)

    @precondition(lambda self: any(self.unread_all.values()))
    @rule(partition=st.sampled_from((0, 1)))
    def read_every_site(self, partition: int) -> None:
        """A partition's dialer reads its next copy of a pause or resume of every site."""
        queue = self.unread_all[partition]
        if queue:
            self.counter += 1
            action = queue.pop(0)
            scope = all_sites_key(partition)
            self.apply(
                OperatorAction(
                    scope, action, "ops", self.now.isoformat(), event_id=f"op{self.counter}"
                )  # type: ignore[arg-type]
            )

    @precondition(lambda self: self.leads)
    @rule(data=st.data(), action=st.sampled_from(("call_now", "call_now", "never_call")))
    def operator_lead(self, data: st.DataObject, action: str) -> None:
        lead = data.draw(st.sampled_from(sorted(self.leads.values(), key=lambda x: x.lead)))
        if action == "call_now":
            # The operator vouches for the lead: age and backfill no longer keep it from a
            # call. Every other rule still must (checked at each dispatch).
            lead.admissible = True
        self.counter += 1
        self.apply(
            OperatorAction(
                lead.site,
                action,  # type: ignore[arg-type]
                "ops",
                self.now.isoformat(),
                lead.lead,
                f"op{self.counter}",
            )
        )

    @rule()
    def restart(self) -> None:
        self._restart()

    @rule()
    def commit(self) -> None:
        """Offsets committed (every second in the worker), after a producer flush."""
        self.committed = [dict(table) for table in self.tables]
        self.durable_since.clear()
        self.uncommitted.clear()

    @precondition(lambda self: self.applied)
    @rule(data=st.data())
    def redeliver(self, data: st.DataObject) -> None:
        event = data.draw(st.sampled_from(self.applied[-30:]))
        if isinstance(event, OptOut | OperatorAction):
            return  # re-applying an old opt-out after a newer opt-in is not a redelivery
        self._deliver(event)

    @rule(on=st.booleans())
    def catch_up(self, on: bool) -> None:
        self.catching_up = on

    # Rules are drawn uniformly: aliases make the common ones (leads, answers, outcomes,
    # time) come up more often than the rare faults.
    new_lead_again = new_lead
    answer_again = answer
    answer_once_more = answer
    outcome_again = outcome
    advance_clock_again = advance_clock
    tick_again = tick
    read_optouts_again = read_optouts
    list_number_again = list_number
    operator_lead_again = operator_lead

    # -- the promises ------------------------------------------------------------------------

    def _ended_candidates(self) -> list[Dispatch]:
        return [
            d
            for d in self.dispatches
            if d.ended_at is None
            and (d.answered == "placed" or (d.answered or "").endswith(":placed"))
        ]

    def _open_lines(self, site: str) -> int:
        """Calls that may be live at ElevenLabs now, by the test's own account."""
        hold = POLICY.line_hold
        return sum(
            1
            for d in self.dispatches
            if d.call.site_uuid == site
            and not d.refused
            and d.ended_at is None
            and self.now - d.at < hold
            and not (d.answered or "").endswith(":none")
        )

    def _check_dispatch(self, call: CallRequest) -> None:
        lead = self.leads[(call.site_uuid, call.lead_id)]
        where = f"call {call.attempt_id} to lead {call.lead_id} at {self.now.isoformat()}"
        assert not (self.catching_up or self.reading_optouts), (
            f"{where}: dialed before reading every opt-out"
        )
        assert lead.admissible, f"{where}: a stale, backfilled or not-new lead was dialed"
        # 0. never while the site is paused, never a lead an operator said never to call
        assert call.site_uuid not in self.paused, f"{where}: dialed while the site is paused"
        partition = PARTITION[call.site_uuid]
        assert partition not in self.paused_all, (
            f"{where}: dialed while every site is paused (partition {partition} read the pause)"
        )
        assert (call.site_uuid, call.lead_id) not in self.never, f"{where}: a never-call lead"
        # 1. never after an opt-out of the lead or of any of its numbers
        assert (call.site_uuid, "lead", call.lead_id) not in self.blocked, f"{where}: opted out"
        record = self.store.lead(call.site_uuid, call.lead_id)
        numbers = {call.phone, *(record.phones if record else ())}
        for number in numbers:
            assert (call.site_uuid, "phone", number) not in self.blocked, (
                f"{where}: number {number} is on the do-not-call list"
            )
        # 1b. calls leave on ticks only, and none reaches a lead or number whose opt-out was
        # acknowledged before the tick asked the opt-outs end, read or not; in particular
        # none written before the lead's latest context was read (the ask comes after it)
        assert self.asked_at is not None, f"{where}: a call left on a record that is not a tick"
        keys = {(call.site_uuid, "lead", call.lead_id)} | {
            (call.site_uuid, "phone", number) for number in numbers
        }
        for key in sorted(keys):
            at = self._in_force(key, self.asked_at)
            when = (
                "its context was read"
                if at is not None and at < lead.context_read_at
                else "the tick asked the end"
            )
            assert at is None, (
                f"{where}: {key[1]} {key[2]} opted out (moment {at}) before {when} "
                f"(context read at {lead.context_read_at}, end asked at {self.asked_at})"
            )
        # 1c. nor after a context said the lead opted out
        assert (call.site_uuid, call.lead_id) not in self.told_opted_out, (
            f"{where}: its context said the lead opted out"
        )
        # 2. only inside 08:00-21:00 in every zone the number may be in, also 2 minutes on,
        # on the clock as the request leaves (the broker may have taken its time to store it)
        try:
            zones = candidate_zones(call.phone)
        except (UnknownTimezoneError, InvalidPhoneNumberError):
            raise AssertionError(f"{where}: a number without a known zone was dialed") from None
        for moment in (self.now, self.now + POLICY.dispatch_margin):
            assert is_open_everywhere(zones, moment), f"{where}: outside calling hours"
        # 2b. before its deadline, which is itself inside the window with the margin
        assert self.now <= call.not_after, f"{where}: after its not_after {call.not_after}"
        for moment in (call.not_after, call.not_after + POLICY.dispatch_margin):
            assert is_open_everywhere(zones, moment), f"{where}: not_after outside the window"
        assert (call.site_uuid, call.lead_id, call.attempt_id) not in self.kept_home, (
            f"{where}: an attempt kept home was sent after all"
        )
        # 3. never a second request for an attempt; never again after an uncertain one
        mine = [
            d
            for d in self.dispatches
            if d.call.lead_id == call.lead_id and d.call.site_uuid == call.site_uuid
        ]
        assert all(d.call.attempt_id != call.attempt_id for d in mine), f"{where}: sent twice"
        if mine:
            last = mine[-1]
            unresolved = (
                (last.answered is None or ":" in last.answered)
                and last.ended_at is None
                and not last.refused
            )
            assert not unresolved, f"{where}: the previous request's outcome is unknown"
        # 4. caps: attempts in total and per local day, spacing between them
        counted = [d for d in mine if not d.refused]
        assert len(counted) < POLICY.max_attempts, f"{where}: more than max_attempts"
        if counted:
            gap = self.now - counted[-1].at
            assert gap >= POLICY.redial_after, f"{where}: redial after only {gap}"
        day = self.now.astimezone(_zone(zones[0])).date()
        today = [d for d in counted if d.at.astimezone(_zone(zones[0])).date() == day]
        assert len(today) < POLICY.max_attempts_per_day, f"{where}: daily cap exceeded"
        # 5. never more calls in flight than the site's lines
        lines = self._open_lines(call.site_uuid)
        assert lines < POLICY.max_concurrent_calls, f"{where}: {lines} calls already in flight"

    @invariant()
    def site_lines_within_limit(self) -> None:
        for site in SITES:
            record = self.store.site(site)
            if record is not None:
                assert len(record.in_flight) <= POLICY.max_concurrent_calls

    @invariant()
    def requests_kept_home_stay_refused(self) -> None:
        # They provably never left: never uncertain (not after a restart either).
        for site, lead_id, attempt_id in self.kept_home:
            record = self.store.lead(site, lead_id)
            attempt = record.attempt(attempt_id) if record is not None else None
            assert attempt is not None and attempt.state is AttemptState.REFUSED, (
                f"attempt {attempt_id} of lead {lead_id} was kept home but is {attempt}"
            )

    @invariant()
    def opted_out_leads_stay_opted_out(self) -> None:
        for site, subject, value in self.blocked:
            if subject == "lead":
                record = self.store.lead(site, value)
                assert record is None or record.status is LeadStatus.OPTED_OUT, (
                    f"lead {value} opted out but is {record.status}"
                )
        for site, lead_id in self.told_opted_out:
            record = self.store.lead(site, lead_id)
            # (A lead an operator said never to call keeps that final state.)
            assert record is None or record.never_call or record.status is LeadStatus.OPTED_OUT, (
                f"lead {lead_id}: its context said it opted out, but it is {record.status}"
            )


def _zone(name: str) -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)


DialerMachine.TestCase.settings = settings(
    max_examples=int(__import__("os").environ.get("RGSYNC_DIALER_EXAMPLES", "200")),
    stateful_step_count=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
test_dialer_keeps_its_promises = pytest.mark.filterwarnings("ignore")(DialerMachine.TestCase)
