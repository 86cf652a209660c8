"""The dialer as a state machine: (records, event, now) -> (changed records, actions).

``step`` is pure: it reads records through a ``DialerView`` and returns what changed and
what to do; the agent (agents/dial_leads.py) stores the changes, sends the records and
places the calls, in that order. Everything that can harm a person is decided here:

* Opt-outs win. A lead on the do-not-call list, or any of whose numbers is, is never
  called again; the check is made when the request is about to be sent.
* At most one request per attempt. An attempt is recorded (durably, by the agent) before
  its request leaves. Only an answer that proves no call was made (``refused``) lets the
  lead wait for another try; anything else leaves the attempt ``uncertain``, for a person.
  A request still unanswered ``orphan_after`` after it left, which this process is not
  waiting for (the worker stopped mid-request), becomes ``uncertain`` too.
* The window is checked when the request is sent: every candidate zone of the number must
  be inside [window_start, window_end) from now until ``dispatch_margin`` later. Storing the
  attempt takes as long as the broker does, so each request carries the last instant it
  may leave by that same rule (``not_after``); one still at home after it is not sent
  (``DialerCore``) and is answered ``refused``/``window_closed``: no call was made, the lead
  waits for its next window. A number whose zone is unknown is never called.
* Caps: ``max_attempts`` calls that may have reached the person, ``max_attempts_per_day``
  per local day, ``redial_after`` between two, redials only after nobody took the call
  (no answer, busy, voicemail), at most ``max_concurrent_calls`` calls in flight per site,
  leads waiting for a line served in order (due time, then arrival).
* New leads only: a context is admitted when it is at most ``max_context_age`` old and the
  lead itself is new (time spent waiting for the window or a line does not count later).
* Operators (``OperatorAction``): a paused site dials nothing (its leads keep waiting and
  are called after ``resume``, inside their window). A pause of every site is a switch of
  its own, kept per partition (``DialerView.all_sites``) and checked before any dispatch of
  any site, one never seen before included; it wins over a site's own ``resume`` and holds
  until the resume of every site. ``never_call`` is final for the lead;
  ``call_now`` puts a known, eligible lead at the head of the line, and the call then
  waits for every rule above like any other: the do-not-call list, the window and days,
  the caps and the spacing, a free line, a site not paused.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, time, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from realgeeks_sync.app.domain.call_context import INELIGIBLE_REASONS, OPTED_OUT
from realgeeks_sync.app.domain.call_outcomes import DEFAULT_ACTIVITY_SOURCE
from realgeeks_sync.app.domain.calling_window import (
    ALL_DAYS,
    DEFAULT_END,
    DEFAULT_START,
    InvalidPhoneNumberError,
    UnknownTimezoneError,
    candidate_zones,
    local_call_window,
)
from realgeeks_sync.app.domain.dialing.events import (
    NO_ANSWER_OUTCOMES,
    WINDOW_CLOSED,
    CallAnswer,
    CallEnded,
    ContextSeen,
    DialerEvent,
    OperatorAction,
    Tick,
    answer_record,
    conversation_record,
)
from realgeeks_sync.app.domain.dialing.optouts import OptOut, e164_or_none, optout_event, optout_key
from realgeeks_sync.app.domain.dialing.records import (
    Attempt,
    AttemptState,
    DncEntry,
    InFlight,
    LeadRecord,
    LeadStatus,
    SiteRecord,
    attempt_id_for,
    is_all_sites,
)
from realgeeks_sync.app.domain.events import activity_event, lead_key, outbound_activity

__all__ = [
    "CallRequest",
    "DeadLetter",
    "DialerPolicy",
    "DialerView",
    "Emit",
    "Step",
    "step",
]

# Skip reasons after which a later context may still admit the lead (something about the
# lead was missing and may be fixed by an update); every other skip is final.
_FIXABLE = frozenset(
    {
        "role_not_callable",
        "missing_consent",
        "invalid_phone",
        "no_phone",
        "unknown_timezone",
        "no_calling_window",
        "ineligible",
    }
)
_CONTEXT_REASONS = frozenset(INELIGIBLE_REASONS)


@dataclass(frozen=True)
class DialerPolicy:
    """The dialer's rules, from settings."""

    enabled: bool = True
    max_concurrent_calls: int = 2
    max_attempts: int = 3
    max_attempts_per_day: int = 2
    redial_after: timedelta = timedelta(hours=4)
    max_context_age: timedelta = timedelta(hours=1)
    window_start: time = DEFAULT_START
    window_end: time = DEFAULT_END
    days: frozenset[int] = ALL_DAYS  # local weekdays calls may be made on (Monday 0)
    # The window must still be open this long after a request leaves: the phone rings
    # for up to a minute after it.
    dispatch_margin: timedelta = timedelta(minutes=2)
    line_hold: timedelta = timedelta(minutes=15)
    orphan_after: timedelta = timedelta(seconds=45)
    max_refusals: int = 10
    refusal_backoff: timedelta = timedelta(seconds=30)
    refusal_backoff_max: timedelta = timedelta(minutes=15)
    activity_source: str = DEFAULT_ACTIVITY_SOURCE


class DialerView(Protocol):
    """Read access to the dialer's records (Faust tables in the agent, dicts in tests)."""

    def lead(self, site_uuid: str, lead_id: str) -> LeadRecord | None:
        """The lead's record, if any."""

    def site(self, site_uuid: str) -> SiteRecord | None:
        """The site's record, if any."""

    def dnc(self, site_uuid: str, subject: str, value: str) -> DncEntry | None:
        """The do-not-call entry of a lead (subject "lead") or a number ("phone")."""

    def all_sites(self, site_uuid: str) -> SiteRecord | None:
        """The switch for every site that holds ``site_uuid`` (its partition's), if any."""


@dataclass(frozen=True)
class CallRequest:
    """Place one call: the request is sent once, after the records are stored, and only up
    to ``not_after`` (aware, UTC): the last instant at which the number's window is open in
    every candidate zone until ``dispatch_margin`` later, the rule that admitted it."""

    attempt_id: str
    site_uuid: str
    lead_id: str
    phone: str
    variables: Mapping[str, Any]
    not_after: datetime

    def may_leave(self, now: datetime) -> bool:
        """Whether the request may still be sent at ``now`` (aware)."""
        return now <= self.not_after


@dataclass(frozen=True)
class Emit:
    """A record to send: logical topic name (a Pipeline.topics attribute), key, value."""

    topic: str
    key: str
    value: Mapping[str, Any]


@dataclass(frozen=True)
class DeadLetter:
    """A dialer event for a person to look at (the original record is replay-safe)."""

    key: str
    original: Mapping[str, Any]
    error_type: str
    error: str
    retriable: bool = False


@dataclass(frozen=True)
class Step:
    """What one event changed and what must be done, in order: send ``emits`` and
    ``deadletters``, store ``leads``/``site``/``dnc``, then place ``calls``."""

    leads: Mapping[str, LeadRecord]
    site: SiteRecord | None
    dnc: Mapping[tuple[str, str], DncEntry | None]
    calls: tuple[CallRequest, ...]
    emits: tuple[Emit, ...]
    deadletters: tuple[DeadLetter, ...]
    counts: tuple[tuple[str, str], ...]


def step(
    view: DialerView,
    event: DialerEvent,
    now: datetime,
    policy: DialerPolicy,
    *,
    dispatching: bool = True,
) -> Step:
    """Apply one event at ``now`` (aware) and return the changes and actions.

    ``dispatching`` False holds every call (the agent has not yet read every opt-out of
    the partition); leads keep waiting.

    Raises:
        ValueError: ``now`` is naive.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    work = _Work(view, event.site_uuid, now.astimezone(UTC), policy)
    if is_all_sites(event.site_uuid):
        # The switch for every site: only an operator's pause or resume changes it.
        if isinstance(event, OperatorAction) and event.action in ("pause", "resume"):
            _on_operator(work, event)
        return work.result()
    if isinstance(event, ContextSeen):
        _on_context(work, event)
    elif isinstance(event, OptOut):
        _on_optout(work, event)
    elif isinstance(event, CallAnswer):
        _on_answer(work, event)
    elif isinstance(event, CallEnded):
        _on_outcome(work, event)
    elif isinstance(event, Tick):
        _on_tick(work, event)
    elif isinstance(event, OperatorAction):
        _on_operator(work, event)
    if not policy.enabled:
        _cancel_waiting(work)
    elif dispatching and work.paused is None and work.paused_everywhere is None:
        _dispatch(work)
    return work.result()


# -- the working set: reads fall through to the view, writes stay here ---------------------


class _Work:
    def __init__(
        self, view: DialerView, site_uuid: str, now: datetime, policy: DialerPolicy
    ) -> None:
        self.view = view
        self.site_uuid = site_uuid
        self.now = now
        self.ts = now.timestamp()
        self.policy = policy
        self._leads: dict[str, LeadRecord] = {}
        self._lines: dict[str, InFlight] | None = None
        self._waiting: dict[str, tuple[float, int]] = {}
        self._next_seq = 0
        self._paused: str | None = None
        self._site_changed = False
        self._dnc: dict[tuple[str, str], DncEntry | None] = {}
        self.calls: list[CallRequest] = []
        self.emits: list[Emit] = []
        self.deadletters: list[DeadLetter] = []
        self.counts: list[tuple[str, str]] = []

    def lead(self, lead_id: str) -> LeadRecord | None:
        if lead_id in self._leads:
            return self._leads[lead_id]
        return self.view.lead(self.site_uuid, lead_id)

    def put(self, record: LeadRecord) -> None:
        self._leads[record.lead_id] = record

    # The site's lines and queue are edited in place here (copies of the stored record)
    # and become a SiteRecord again only in ``result``.

    def _load_site(self) -> None:
        if self._lines is None:
            stored = self.view.site(self.site_uuid) or SiteRecord(self.site_uuid)
            self._lines = dict(stored.in_flight)
            self._waiting = dict(stored.waiting)
            self._next_seq = stored.next_seq
            self._paused = stored.paused

    @property
    def lines(self) -> dict[str, InFlight]:
        """Calls in flight (attempt id -> line): read-only for callers."""
        self._load_site()
        assert self._lines is not None
        return self._lines

    @property
    def waiting(self) -> dict[str, tuple[float, int]]:
        """Waiting leads (lead id -> (due, seq)): read-only for callers."""
        self._load_site()
        return self._waiting

    @property
    def paused(self) -> str | None:
        """Who paused the site's dialer and when (None: not paused)."""
        self._load_site()
        return self._paused

    @property
    def paused_everywhere(self) -> str | None:
        """Who paused every site and when, as the site's partition has it (None: not)."""
        switch = self.view.all_sites(self.site_uuid)
        return switch.paused if switch is not None else None

    def set_paused(self, value: str | None) -> None:
        # The switch for every site is written each time: a resume also mends a damaged one
        # (which DialerStore.all_sites reads as paused).
        if self.paused != value or is_all_sites(self.site_uuid):
            self._paused = value
            self._site_changed = True

    def wait(self, lead_id: str, due: float, seq: int) -> None:
        if self.waiting.get(lead_id) != (due, seq):
            self._waiting[lead_id] = (due, seq)
            self._site_changed = True

    def unwait(self, lead_id: str) -> None:
        if lead_id in self.waiting:
            del self._waiting[lead_id]
            self._site_changed = True

    def take_seq(self) -> int:
        self._load_site()
        self._next_seq += 1
        self._site_changed = True
        return self._next_seq - 1

    def hold(self, attempt_id: str, lead_id: str) -> None:
        self.lines[attempt_id] = InFlight(lead_id, self.ts)
        self._site_changed = True

    def settle(self, attempt_id: str) -> None:
        """The request got its answer (or never will): only the call's end frees the line."""
        line = self.lines.get(attempt_id)
        if line is not None and not line.answered:
            self.lines[attempt_id] = replace(line, answered=True)
            self._site_changed = True

    def release(self, attempt_id: str) -> None:
        if attempt_id in self.lines:
            del self.lines[attempt_id]
            self._site_changed = True

    def dnc(self, subject: str, value: str) -> DncEntry | None:
        if (subject, value) in self._dnc:
            return self._dnc[(subject, value)]
        return self.view.dnc(self.site_uuid, subject, value)

    def put_dnc(self, subject: str, value: str, entry: DncEntry | None) -> None:
        self._dnc[(subject, value)] = entry

    def blocked(self, record: LeadRecord) -> bool:
        """True when the lead or any number it is known by is on the do-not-call list."""
        if self.dnc("lead", record.lead_id) is not None:
            return True
        numbers = {*record.phones, *((record.phone,) if record.phone else ())}
        return any(self.dnc("phone", number) is not None for number in numbers)

    def count(self, name: str, label: str = "") -> None:
        self.counts.append((name, label))

    def result(self) -> Step:
        site = None
        if self._site_changed:
            site = SiteRecord(
                self.site_uuid, self.lines, self.waiting, self._next_seq, self._paused
            )
        return Step(
            leads=dict(self._leads),
            site=site,
            dnc=dict(self._dnc),
            calls=tuple(self.calls),
            emits=tuple(self.emits),
            deadletters=tuple(self.deadletters),
            counts=tuple(self.counts),
        )


# -- transitions ------------------------------------------------------------------------


def _on_context(w: _Work, event: ContextSeen) -> None:
    """A call context: refresh what the lead carries; admit a new, fresh, eligible lead."""
    context = event.context
    if context.get("schema") != "call_context.v1":
        return
    view = context.get("lead")
    view = view if isinstance(view, Mapping) else {}
    phone = e164_or_none(view.get("phone"))
    second = e164_or_none(view.get("phone2"))
    as_of = _epoch(context.get("as_of")) or w.ts
    trigger = context.get("trigger")
    record = w.lead(event.lead_id)
    new = record is None
    if record is None:
        if not w.policy.enabled:
            return  # a switched-off dialer does not collect leads to call later
        first_seen = as_of if trigger == "created" else _epoch(view.get("created"))
        record = LeadRecord(
            event.site_uuid, event.lead_id, LeadStatus.SKIPPED, first_seen=first_seen
        )
    elif record.first_seen is None and trigger == "created":
        record = replace(record, first_seen=as_of)
    eligible = context.get("eligible") is True and phone is not None
    known = (phone, second, *record.phones)
    record = replace(
        record,
        phone=phone,
        phones=tuple(dict.fromkeys(p for p in known if p)),
        eligible=eligible,
        variables=_variables(context) if eligible else record.variables,
        context_event_id=_text_or_none(context.get("event_id")) or record.context_event_id,
    )
    if record.status is LeadStatus.OPTED_OUT or record.never_call:
        w.put(record)
        return
    if w.blocked(record):
        _opt_out_record(w, record, "do_not_call")
        return
    if not eligible:
        reason = str(context.get("reason") or ("no_phone" if phone is None else "ineligible"))
        reason = reason if reason in _CONTEXT_REASONS else "ineligible"
        if reason == OPTED_OUT:
            # The lead opted out by a record this agent may not have read yet (another topic):
            # as final as its own list says.
            _opt_out_record(w, record, OPTED_OUT)
            return
        if new or record.status in (LeadStatus.WAITING, LeadStatus.SKIPPED):
            _skip(w, record, reason)
        else:
            w.put(record)  # a call already happened: ``eligible`` False stops redials
        return
    if not new and not (record.status is LeadStatus.SKIPPED and record.reason in _FIXABLE):
        w.put(record)  # waiting, in a call, done or finally skipped: refreshed only
        return
    problem = _admission_problem(w, record, trigger, as_of)
    if problem is not None:
        _skip(w, record, problem)
        return
    seq = w.take_seq()
    w.put(
        replace(record, status=LeadStatus.WAITING, reason=None, admitted_at=w.ts, due=w.ts, seq=seq)
    )
    w.wait(record.lead_id, w.ts, seq)


def _admission_problem(w: _Work, record: LeadRecord, trigger: Any, as_of: float) -> str | None:
    """Why a context may not start calls for this lead (None: it may)."""
    max_age = w.policy.max_context_age.total_seconds()
    if trigger == "backfill":
        return "backfill"
    if w.ts - as_of > max_age:
        return "stale_context"
    if record.first_seen is None or as_of - record.first_seen > max_age:
        return "not_a_new_lead"
    try:
        candidate_zones(record.phone or "")
    except UnknownTimezoneError:
        return "unknown_timezone"
    except InvalidPhoneNumberError:
        return "invalid_phone"
    return None


def _on_optout(w: _Work, event: OptOut) -> None:
    """An opt-out stops every call to the lead or number at once; an opt-in lifts the entry."""
    subject, value = event.subject, event.value
    if event.action == "opt_in":
        if w.dnc(subject, value) is not None:
            w.put_dnc(subject, value, None)
        record = w.lead(value) if subject == "lead" else None
        if record is not None and record.status is LeadStatus.OPTED_OUT:
            # Lifted by an operator: the lead is no longer blocked, but nothing calls it on
            # its own (an operator can start a call).
            w.put(replace(record, status=LeadStatus.SKIPPED, reason="opt_out_removed"))
        return
    if w.dnc(subject, value) is None:
        entry = DncEntry(event.source, event.at, event.reason, event.by, event.event_id)
        w.put_dnc(subject, value, entry)
        w.count("optout", event.source)
    if subject != "lead":
        return
    record = w.lead(value)
    if record is None:
        return
    if record.status is not LeadStatus.OPTED_OUT:
        _opt_out_record(w, record, "opted_out")
    # The lead's numbers are blocked too: as events, so the list of record holds them.
    for number in record.phones:
        if w.dnc("phone", number) is None:
            w.put_dnc("phone", number, DncEntry(event.source, event.at, "lead_opted_out", "dialer"))
            w.emits.append(
                Emit(
                    "optouts",
                    optout_key(w.site_uuid, number),
                    optout_event(
                        site_uuid=w.site_uuid,
                        subject="phone",
                        value=number,
                        lead_id=record.lead_id,
                        source=event.source,
                        at=event.at,
                        reason="lead_opted_out",
                        by="dialer",
                    ),
                )
            )


def _on_answer(w: _Work, event: CallAnswer) -> None:
    """The answer to a call request: placed, refused (no call made), or unknown."""
    record = w.lead(event.lead_id)
    attempt = record.attempt(event.attempt_id) if record is not None else None
    if record is None or attempt is None:
        w.count("ignored", "unknown_attempt")
        return
    if event.result == "placed" and attempt.state in (AttemptState.SENT, AttemptState.UNCERTAIN):
        placed = replace(
            attempt, state=AttemptState.PLACED, conversation_id=event.conversation_id, reason=None
        )
        status = record.status
        if status in (LeadStatus.CALLING, LeadStatus.UNCERTAIN) and _is_latest(record, attempt):
            status = LeadStatus.PLACED
        w.put(replace(record.with_attempt(placed), status=status))
        w.settle(attempt.attempt_id)
        _announce(w, record, placed)
        w.count("started")
        return
    if event.result == "placed" and attempt.state is AttemptState.PLACED:
        _announce(w, record, attempt)  # a redelivered answer: the same records again
        return
    if attempt.state is not AttemptState.SENT:
        return  # a late or repeated answer changes nothing settled
    if event.result == "refused":
        _refused(w, record, attempt, event)
    else:
        _uncertain(
            w, record, attempt, event.cause, event.reason or event.cause, answer_record(event)
        )


def _refused(w: _Work, record: LeadRecord, attempt: Attempt, event: CallAnswer) -> None:
    """No call was made: try again later when that can help, else give up with a reason."""
    reason = event.reason or "refused"
    refused = replace(attempt, state=AttemptState.REFUSED, reason=reason[:200])
    # A request kept home because its window closed was refused by nobody: it neither
    # counts toward ``max_refusals`` nor backs off.
    kept_home = event.cause == WINDOW_CLOSED
    record = replace(
        record.with_attempt(refused), refusals=record.refusals + (0 if kept_home else 1)
    )
    w.release(attempt.attempt_id)
    w.count("refused", event.cause)
    if record.status is not LeadStatus.CALLING or not _is_latest(record, attempt):
        w.put(record)
        return
    if kept_home:
        # Due now: the next dispatch defers it to its window's next opening (same rule).
        w.put(replace(record, status=LeadStatus.WAITING, reason=WINDOW_CLOSED, due=w.ts))
        w.wait(record.lead_id, w.ts, record.seq)
        return
    if event.retriable and record.refusals < w.policy.max_refusals:
        backoff = min(
            w.policy.refusal_backoff.total_seconds() * 2 ** (record.refusals - 1),
            w.policy.refusal_backoff_max.total_seconds(),
        )
        due = w.ts + max(backoff, event.retry_after or 0.0)
        w.put(replace(record, status=LeadStatus.WAITING, reason="call_refused", due=due))
        w.wait(record.lead_id, due, record.seq)
        return
    _skip(w, record, "call_rejected")
    w.deadletters.append(
        DeadLetter(
            key=lead_key(w.site_uuid, record.lead_id),
            original=answer_record(event),
            error_type="CallRejectedError",
            error=f"ElevenLabs refused the call (attempt {attempt.number}): {reason}"[:500],
        )
    )


def _uncertain(
    w: _Work,
    record: LeadRecord,
    attempt: Attempt,
    cause: str,
    reason: str,
    original: Mapping[str, Any],
) -> None:
    """The call may exist: never sent again, counted, dead-lettered for a person."""
    settled = replace(attempt, state=AttemptState.UNCERTAIN, reason=reason[:200])
    status = record.status
    if status is LeadStatus.CALLING and _is_latest(record, attempt):
        status = LeadStatus.UNCERTAIN
    w.put(replace(record.with_attempt(settled), status=status))
    w.settle(attempt.attempt_id)
    w.count("uncertain", cause)
    # It may have rung the person: the lead's history in Real Geeks shows it.
    _attempt_activity(
        w,
        record,
        settled,
        f"AI call attempted to {attempt.phone}; outcome unknown ({cause}), not retried",
    )
    w.deadletters.append(
        DeadLetter(
            key=lead_key(w.site_uuid, record.lead_id),
            original=original,
            error_type="UncertainCallError",
            error=(
                f"outcome of call attempt {attempt.number} ({attempt.attempt_id}) is unknown: "
                f"{reason}; it is not retried: check the call in ElevenLabs"
            )[:500],
        )
    )


def _on_outcome(w: _Work, event: CallEnded) -> None:
    """A call ended: free its line, then finish the lead or plan a redial."""
    record = w.lead(event.lead_id)
    if record is None:
        return
    attempt = _attempt_for_outcome(record, event)
    if attempt is None or attempt.outcome is not None:
        return
    ended = replace(
        attempt,
        state=AttemptState.PLACED,
        outcome=event.outcome[:40],
        conversation_id=attempt.conversation_id or event.conversation_id,
    )
    w.release(attempt.attempt_id)
    latest = _is_latest(record, attempt)
    record = record.with_attempt(ended)
    active = (LeadStatus.CALLING, LeadStatus.PLACED, LeadStatus.UNCERTAIN)
    if not latest or record.status not in active:
        w.put(record)
        return
    if event.opted_out:
        _opt_out_record(w, record, "opted_out")
    elif event.outcome == "completed":
        w.put(replace(record, status=LeadStatus.DONE, reason="conversation_held"))
    elif event.outcome not in NO_ANSWER_OUTCOMES:
        w.put(replace(record, status=LeadStatus.DONE, reason="call_failed"))
    elif len(record.counted_attempts) >= w.policy.max_attempts:
        w.put(replace(record, status=LeadStatus.DONE, reason="max_attempts"))
    elif not record.eligible:
        w.put(replace(record, status=LeadStatus.DONE, reason="ineligible"))
    else:
        due = attempt.sent_at + w.policy.redial_after.total_seconds()
        w.put(replace(record, status=LeadStatus.WAITING, reason="redial", due=due))
        w.wait(record.lead_id, due, record.seq)


def _on_tick(w: _Work, event: Tick) -> None:
    """Settle requests nobody is waiting for any more, and free lines held too long."""
    orphan_after = w.policy.orphan_after.total_seconds()
    hold = w.policy.line_hold.total_seconds()
    for attempt_id, line in list(w.lines.items()):
        record = w.lead(line.lead_id)
        attempt = record.attempt(attempt_id) if record is not None else None
        if record is None or attempt is None:
            w.release(attempt_id)
            continue
        if (
            attempt.state is AttemptState.SENT
            and w.ts - attempt.sent_at >= orphan_after
            and attempt_id not in event.live
        ):
            lost = CallAnswer(
                w.site_uuid,
                record.lead_id,
                attempt_id,
                "unknown",
                cause="lost",
                reason="no answer recorded: the worker stopped during the request",
            )
            _uncertain(w, record, attempt, "lost", lost.reason or "", answer_record(lost))
        elif attempt.state is not AttemptState.SENT and w.ts - line.since >= hold:
            w.release(attempt_id)


def _on_operator(w: _Work, event: OperatorAction) -> None:
    """Pause or resume the site (or every site: ``w`` is then the partition's switch for
    all of them); call one lead now (within every rule), or never."""
    who = f"{event.by} at {event.at}"
    scope = "_all" if is_all_sites(w.site_uuid) else ""
    if event.action == "pause":
        w.set_paused(w.paused or who)
        w.count("operator", "pause" + scope)
        return
    if event.action == "resume":
        w.set_paused(None)
        w.count("operator", "resume" + scope)
        return
    lead_id = event.lead_id or ""
    record = w.lead(lead_id)
    if event.action == "never_call":
        if record is None:
            record = LeadRecord(w.site_uuid, lead_id, LeadStatus.SKIPPED, reason="never_call")
        elif record.never_call:
            return
        record = replace(record, never_call=who)
        if record.status in (LeadStatus.WAITING, LeadStatus.SKIPPED, LeadStatus.DONE):
            record = replace(record, status=LeadStatus.SKIPPED, reason="never_call", due=None)
        w.put(record)  # a call already in flight ends as it will; none follows it
        w.unwait(lead_id)
        w.count("operator", "never_call")
        return
    refusal = _call_now_refusal(w, record)
    if refusal is not None or record is None:
        w.count("operator", f"call_now_refused_{refusal}")
        return
    due = w.ts
    if record.status is LeadStatus.WAITING and lead_id in w.waiting:
        seq = w.waiting[lead_id][1]
    else:
        seq = w.take_seq()
    w.put(replace(record, status=LeadStatus.WAITING, reason="call_now", due=due, seq=seq))
    w.wait(lead_id, due, seq)
    w.count("operator", "call_now")


def _call_now_refusal(w: _Work, record: LeadRecord | None) -> str | None:
    """Why an operator's call-now cannot put the lead in line (None: it can)."""
    if record is None:
        return "unknown_lead"  # the dialer never saw it: no number, no context
    if record.never_call or record.status is LeadStatus.OPTED_OUT or w.blocked(record):
        return "do_not_call"
    if record.status in (LeadStatus.CALLING, LeadStatus.PLACED, LeadStatus.UNCERTAIN):
        return "call_in_progress"
    latest = record.attempts[-1] if record.attempts else None
    if (
        latest is not None
        and latest.outcome is None
        and latest.state
        in (
            AttemptState.SENT,
            AttemptState.UNCERTAIN,
        )
    ):
        return "call_in_progress"  # the last request's outcome is not known
    if not record.eligible or record.phone is None:
        return "ineligible"
    if not w.policy.enabled:
        return "dialer_disabled"
    return None


def _cancel_waiting(w: _Work) -> None:
    """A switched-off dialer keeps nobody waiting: switching it on later calls no backlog."""
    for lead_id in list(w.waiting):
        record = w.lead(lead_id)
        w.unwait(lead_id)
        if record is not None and record.status is LeadStatus.WAITING:
            w.put(replace(record, status=LeadStatus.SKIPPED, reason="dialer_disabled", due=None))
            w.count("skipped", "dialer_disabled")


def _dispatch(w: _Work) -> None:
    """Call waiting leads whose time has come, in order, while the site has free lines."""
    due = sorted((when, seq, lead) for lead, (when, seq) in w.waiting.items() if when <= w.ts)
    for _, _, lead_id in due:
        if len(w.lines) >= w.policy.max_concurrent_calls:
            return
        _consider(w, lead_id)


def _consider(w: _Work, lead_id: str) -> None:
    """Call one waiting lead now, or give it a new due time, or let it go (with a reason)."""
    record = w.lead(lead_id)
    if record is None or record.status is not LeadStatus.WAITING:
        w.unwait(lead_id)
        return
    if w.blocked(record):
        _opt_out_record(w, record, "do_not_call")
        return
    if record.never_call:
        _finish(w, record, "never_call")
        return
    if not record.eligible or record.phone is None:
        _skip(w, record, "ineligible")
        return
    counted = record.counted_attempts
    if len(counted) >= w.policy.max_attempts:
        _finish(w, record, "max_attempts")
        return
    if counted:
        next_try = counted[-1].sent_at + w.policy.redial_after.total_seconds()
        if next_try > w.ts:
            _defer(w, record, next_try, "redial_wait")
            return
    try:
        not_after, local_day, next_open = _window(record.phone, w.now, w.policy)
    except UnknownTimezoneError:
        _skip(w, record, "unknown_timezone")
        return
    except InvalidPhoneNumberError:
        _skip(w, record, "invalid_phone")
        return
    if not_after is None:
        if next_open is None:
            _skip(w, record, "no_calling_window")
        else:
            _defer(w, record, next_open.timestamp(), "outside_calling_hours")
        return
    if sum(a.local_day == local_day for a in counted) >= w.policy.max_attempts_per_day:
        tomorrow = _next_day_opening(record.phone, w.now, w.policy)
        if tomorrow is None:
            _skip(w, record, "no_calling_window")
        else:
            _defer(w, record, tomorrow.timestamp(), "daily_attempt_limit")
        return
    number = len(record.attempts) + 1
    attempt_id = attempt_id_for(w.site_uuid, lead_id, number)
    attempt = Attempt(attempt_id, number, w.ts, local_day, record.phone)
    w.put(replace(record.with_attempt(attempt), status=LeadStatus.CALLING, reason=None, due=None))
    w.unwait(lead_id)
    w.hold(attempt_id, lead_id)
    variables = {
        **record.variables,
        "lead_id": lead_id,
        "site_uuid": w.site_uuid,
        "call_attempt_id": attempt_id,
    }
    w.calls.append(
        CallRequest(attempt_id, w.site_uuid, lead_id, record.phone, variables, not_after)
    )
    w.count("requested")


# -- helpers ---------------------------------------------------------------------------


def _skip(w: _Work, record: LeadRecord, reason: str) -> None:
    w.put(replace(record, status=LeadStatus.SKIPPED, reason=reason, due=None))
    w.unwait(record.lead_id)
    w.count("skipped", reason)


def _finish(w: _Work, record: LeadRecord, reason: str) -> None:
    w.put(replace(record, status=LeadStatus.DONE, reason=reason, due=None))
    w.unwait(record.lead_id)


def _opt_out_record(w: _Work, record: LeadRecord, reason: str) -> None:
    w.put(replace(record, status=LeadStatus.OPTED_OUT, reason=reason, due=None))
    w.unwait(record.lead_id)
    w.count("skipped", reason)


def _defer(w: _Work, record: LeadRecord, due: float, reason: str) -> None:
    w.put(replace(record, due=due, reason=reason))
    w.wait(record.lead_id, due, record.seq)
    w.count("deferred", reason)


def _is_latest(record: LeadRecord, attempt: Attempt) -> bool:
    return bool(record.attempts) and record.attempts[-1].attempt_id == attempt.attempt_id


def _attempt_for_outcome(record: LeadRecord, event: CallEnded) -> Attempt | None:
    """The attempt an outcome is about: by attempt id, by conversation, else the open one."""
    if event.attempt_id:
        found = record.attempt(event.attempt_id)
        if found is not None:
            return found
    if event.conversation_id:
        for attempt in record.attempts:
            if attempt.conversation_id == event.conversation_id:
                return attempt
    # A webhook can beat the call request's answer: the open attempt is the one. Only for
    # an outcome naming its conversation (which the attempt then keeps): one naming nothing,
    # read again after a later attempt was sent, would end that attempt and free a redial.
    if (
        record.attempts
        and record.attempts[-1].outcome is None
        and event.attempt_id is None
        and event.conversation_id
    ):
        latest = record.attempts[-1]
        if latest.conversation_id is None and latest.state is not AttemptState.REFUSED:
            return latest
    return None


def _announce(w: _Work, record: LeadRecord, attempt: Attempt) -> None:
    """The attempt as an activity on the lead (through the outbox) and the conversation map."""
    _attempt_activity(w, record, attempt, f"AI call initiated to {attempt.phone}")
    _map_conversation(w, record, attempt)


def _attempt_activity(w: _Work, record: LeadRecord, attempt: Attempt, description: str) -> None:
    """One activity per attempt (its id is the attempt's): the outbox posts the first one
    emitted, so an uncertain attempt confirmed later is not announced twice."""
    key = lead_key(w.site_uuid, record.lead_id)
    started = datetime.fromtimestamp(attempt.sent_at, UTC).isoformat()
    activity_id = hashlib.sha256(f"dial-activity\x1f{attempt.attempt_id}".encode()).hexdigest()[:32]
    activity = {
        "activity_id": activity_id,
        "type": "called",
        "source": w.policy.activity_source,
        "description": description,
        "created": started,
        "notify_users": False,
    }
    w.emits.append(
        Emit(
            "activities",
            key,
            activity_event(
                event_id=activity_id,
                site_uuid=w.site_uuid,
                lead_id=record.lead_id,
                direction="outbound",
                activity=activity,
            ),
        )
    )
    w.emits.append(
        Emit(
            "activities_outbound",
            key,
            outbound_activity(
                activity_id=activity_id,
                site_uuid=w.site_uuid,
                lead_id=record.lead_id,
                activity=activity,
            ),
        )
    )


def _map_conversation(w: _Work, record: LeadRecord, attempt: Attempt) -> None:
    """The placed attempt's conversation id, mapped to its lead for the call's outcome."""
    started = datetime.fromtimestamp(attempt.sent_at, UTC).isoformat()
    if attempt.conversation_id:
        w.emits.append(
            Emit(
                "conversations",
                attempt.conversation_id,
                conversation_record(
                    conversation_id=attempt.conversation_id,
                    site_uuid=w.site_uuid,
                    lead_id=record.lead_id,
                    attempt_id=attempt.attempt_id,
                    started_at=started,
                ),
            )
        )


# The clock's resolution: the window is half-open, so the last instant in it is one tick
# before its close.
_TICK = timedelta(microseconds=1)


def _window(
    phone: str, now: datetime, policy: DialerPolicy
) -> tuple[datetime | None, str, datetime | None]:
    """(the last instant a request may leave if it may leave now, the local day, the next
    opening if not). A request may leave at t when every candidate zone is inside the window
    from t until t + ``dispatch_margin``: t + margin before the window's close.

    Raises:
        UnknownTimezoneError, InvalidPhoneNumberError: from app/domain/calling_window.py.
    """
    start, end, days = policy.window_start, policy.window_end, policy.days
    decision = local_call_window(phone, now, start, end, days)
    day = decision.local_date.isoformat()
    if decision.closes_utc is None:
        return None, day, decision.next_open_utc
    not_after = decision.closes_utc - policy.dispatch_margin - _TICK
    if now <= not_after:
        return not_after, day, None
    later = local_call_window(phone, now + policy.dispatch_margin, start, end, days)
    return None, day, later.next_open_utc


def _next_day_opening(phone: str, now: datetime, policy: DialerPolicy) -> datetime | None:
    """The first opening of the window on the next local day of the number's first zone."""
    zone = ZoneInfo(candidate_zones(phone)[0])
    local = now.astimezone(zone)
    midnight = datetime.combine(local.date() + timedelta(days=1), time(0), tzinfo=zone)
    decision = local_call_window(
        phone, midnight.astimezone(UTC), policy.window_start, policy.window_end, policy.days
    )
    return decision.next_open_utc


def _variables(context: Mapping[str, Any]) -> dict[str, Any]:
    raw = context.get("dynamic_variables")
    if not isinstance(raw, Mapping):
        return {}
    return {
        str(k): v
        for k, v in raw.items()
        if isinstance(v, str | int | float | bool) and not str(k).startswith("system__")
    }


def _epoch(value: Any) -> float | None:
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def _text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
