"""The outbox's transitions without a broker (app/domain/outbox.py): one rule at a time, and
a state machine of random deliveries, answers, crashes and restarts against its promises."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from realgeeks_sync.app.domain.outbox import (
    ERROR_CHARS,
    Accepted,
    Attempting,
    Delivered,
    Done,
    GiveUp,
    InvalidTransitionError,
    Lost,
    OutboxRecord,
    OutcomeUnknown,
    Post,
    Refused,
    RetryLater,
    Send,
    Skip,
    read_record,
    step,
)

NOW = 1_750_000_000.0
BODY = {"first_name": "Ana", "tags": ["buyer", "ai-called"]}


def value(record: OutboxRecord | None) -> dict[str, Any] | None:
    return None if record is None else record.to_value()


# (stored value, event, new stored value, action): the rules as a table. A value of "same"
# means the transition leaves the record as it was.
TRANSITIONS: list[tuple[str, dict[str, Any] | None, Any, Any, Any]] = [
    ("nothing stored: send, body still to fix", None, Delivered(), None, Send(0, None)),
    ("an empty value counts as nothing", {}, Delivered(), None, Send(0, None)),
    (
        "posted is final: a duplicate writes nothing",
        {"status": "posted", "attempts": 2, "at": NOW},
        Delivered(),
        "same",
        Skip(),
    ),
    (
        "in flight when read: outcome unknown, dead-letter",
        {"status": "in_flight", "attempts": 3, "at": NOW, "body": BODY},
        Delivered(),
        "same",
        OutcomeUnknown(3),
    ),
    (
        "failed: send again, attempts and body kept",
        {"status": "failed", "attempts": 2, "error": "HTTP 500", "at": NOW, "body": BODY},
        Delivered(),
        "same",
        Send(2, BODY),
    ),
    (
        "failed without a body: the body is still to fix",
        {"status": "failed", "attempts": 1, "error": "HTTP 500", "at": NOW},
        Delivered(),
        "same",
        Send(1, None),
    ),
    (
        "a stored empty body is a fixed body",
        {"status": "failed", "attempts": 1, "error": "x", "at": NOW, "body": {}},
        Delivered(),
        "same",
        Send(1, {}),
    ),
    (
        "an unknown status is retried like a failure",
        {"status": "queued", "attempts": "4"},
        Delivered(),
        "same",
        Send(4, None),
    ),
    (
        "first attempt: in flight, attempt 1, body stored",
        None,
        Attempting(BODY),
        {"status": "in_flight", "attempts": 1, "at": NOW, "body": BODY},
        Post(1, BODY),
    ),
    (
        "an activity's empty body is not stored",
        None,
        Attempting({}),
        {"status": "in_flight", "attempts": 1, "at": NOW},
        Post(1, {}),
    ),
    (
        "a retry counts on from the failed record",
        {"status": "failed", "attempts": 2, "error": "HTTP 500", "at": 1.0, "body": BODY},
        Attempting(BODY),
        {"status": "in_flight", "attempts": 3, "at": NOW, "body": BODY},
        Post(3, BODY),
    ),
    (
        "success: posted, the body dropped",
        {"status": "in_flight", "attempts": 3, "at": 1.0, "body": BODY},
        Accepted(),
        {"status": "posted", "attempts": 3, "at": NOW},
        Done(3),
    ),
    (
        "a retriable error: failed, retry later",
        {"status": "in_flight", "attempts": 1, "at": 1.0, "body": BODY},
        Refused("HTTP 503", retriable=True),
        {"status": "failed", "attempts": 1, "error": "HTTP 503", "at": NOW, "body": BODY},
        RetryLater(1),
    ),
    (
        "a permanent error: failed, give up",
        {"status": "in_flight", "attempts": 2, "at": 1.0},
        Refused("HTTP 422", retriable=False),
        {"status": "failed", "attempts": 2, "error": "HTTP 422", "at": NOW},
        GiveUp(2),
    ),
    (
        "the error text is cut",
        {"status": "in_flight", "attempts": 1, "at": 1.0},
        Refused("x" * 1000, retriable=True),
        {"status": "failed", "attempts": 1, "error": "x" * ERROR_CHARS, "at": NOW},
        RetryLater(1),
    ),
    (
        "no answer after the request may have arrived: in flight kept, outcome unknown",
        {"status": "in_flight", "attempts": 2, "at": 1.0, "body": BODY},
        Lost(),
        "same",
        OutcomeUnknown(2),
    ),
]


@pytest.mark.parametrize(
    ("stored", "event", "expected", "action"),
    [pytest.param(*row[1:], id=row[0]) for row in TRANSITIONS],
)
def test_transition(stored: Any, event: Any, expected: Any, action: Any) -> None:
    record = read_record(stored)
    result = step(record, event, NOW)
    assert result.action == action
    assert value(result.record) == (value(record) if expected == "same" else expected)


INVALID = [
    (
        "no request may leave for a posted write",
        {"status": "posted", "attempts": 1},
        Attempting({}),
    ),
    (
        "nor a second one while one is in flight",
        {"status": "in_flight", "attempts": 1},
        Attempting({}),
    ),
    ("an answer needs a request in flight", None, Accepted()),
    ("nor for a failed one", {"status": "failed", "attempts": 1}, Accepted()),
    ("an error needs a request in flight", {"status": "posted", "attempts": 1}, Refused("e", True)),
    ("a lost answer needs a request in flight", {"status": "failed", "attempts": 1}, Lost()),
]


@pytest.mark.parametrize(("stored", "event"), [pytest.param(*r[1:], id=r[0]) for r in INVALID])
def test_invalid_transition(stored: Any, event: Any) -> None:
    with pytest.raises(InvalidTransitionError):
        step(read_record(stored), event, NOW)


def test_values_read_back_as_written() -> None:
    # (An empty body is not stored, as before: the next attempt fixes it again, to {}.)
    for _, stored, event, _, _ in TRANSITIONS:
        new = step(read_record(stored), event, NOW).record
        if new is not None:
            written = new.to_value()
            assert value(read_record(written)) == written


# --- the state machine ----------------------------------------------------------------------

# What a request can end in. An HTTP error status or a connection never made means Real
# Geeks wrote nothing; a success, a timeout or a dropped connection (the request may have
# arrived) or a writer stopping mid-request leaves a write that may exist.
REFUSALS = {  # outcome -> retriable
    "500": True,
    "429": True,
    "no_connection": True,
    "422": False,
}
LOST = ("timeout", "dropped")
OUTCOMES = ["ok", *REFUSALS, *LOST, "crash_mid_request"]


class Crash(Exception):
    """The worker process died."""


@dataclass
class Writing:
    """The write the worker is busy with: its message's offset, body and record."""

    offset: int
    write_id: str
    body: dict[str, Any]
    record: OutboxRecord | None
    refused: bool = False  # its last request in this run ended in a retriable error


@dataclass
class RealGeeks:
    """What reached Real Geeks: every request per write, and what it stored."""

    requests: dict[str, list[tuple[str, dict[str, Any]]]] = field(default_factory=dict)
    stored: dict[str, int] = field(default_factory=dict)


class OutboxMachine(RuleBasedStateMachine):
    """Messages for a few writes on one partition, read at least once, with random answers,
    crashes (between the mark and the request, during a request, anywhere else), restarts,
    offset commits, redeliveries and dead-letter replays. The writer below does what
    agents/write_activities.py does with the transitions, in the same order."""

    def __init__(self) -> None:
        super().__init__()
        self.topic: list[str] = []  # the input partition: write ids, duplicates allowed
        self.position = 0  # the next offset the worker reads
        self.committed_offset = 0
        # The outbox table: the worker's copy, what the changelog holds for sure, and the
        # records handed to the producer without waiting (lost in a crash, a suffix first).
        self.table: dict[str, dict[str, Any]] = {}
        self.changelog: dict[str, dict[str, Any]] = {}
        self.unacknowledged: list[tuple[str, dict[str, Any]]] = []
        self.writing: Writing | None = None
        self.realgeeks = RealGeeks()
        self.deadletters: list[tuple[str, str]] = []
        self.marks: dict[str, int] = {}  # in_flight records stored per write (= attempts)
        self.bodies_fixed = 0

    # -- the table, as app/streaming/table_writes.py writes it ----------------------------

    def _store(self, write_id: str, record: OutboxRecord, *, durable: bool) -> None:
        self.table[write_id] = record.to_value()
        self.unacknowledged.append((write_id, record.to_value()))
        if durable:
            # Acknowledged in order: everything handed to the producer before is too.
            self._acknowledge(len(self.unacknowledged))

    def _acknowledge(self, count: int) -> None:
        for write_id, stored in self.unacknowledged[:count]:
            self.changelog[write_id] = stored
        del self.unacknowledged[:count]

    def _first_body(self, write_id: str) -> dict[str, Any]:
        # Each call may differ (the lead's known tags change): a body fixed once must stay.
        self.bodies_fixed += 1
        return {"write": write_id, "tags": [f"t{self.bodies_fixed}"]}

    # -- the writer --------------------------------------------------------------------------

    def _done(self) -> None:
        assert self.writing is not None
        self.position = self.writing.offset + 1
        self.writing = None

    @rule(data=st.data())
    def new_write(self, data: st.DataObject) -> None:
        write_id = f"w{data.draw(st.integers(0, 3))}"
        self.topic.append(write_id)

    @precondition(lambda self: self.topic)
    @rule(data=st.data())
    def redeliver(self, data: st.DataObject) -> None:
        """A duplicate message, or a dead letter replayed (ops dlq replay)."""
        self.topic.append(data.draw(st.sampled_from(sorted(set(self.topic)))))

    @precondition(lambda self: self.writing is None and self.position < len(self.topic))
    @rule()
    def read(self) -> None:
        write_id = self.topic[self.position]
        record = read_record(self.table.get(write_id))
        new, action = step(record, Delivered(), 0.0)
        assert new == record
        if isinstance(action, Skip):
            self.position += 1
        elif isinstance(action, OutcomeUnknown):
            self.deadletters.append((write_id, "OutcomeUnknownError"))
            self.position += 1
        else:
            assert isinstance(action, Send)
            body = action.body if action.body is not None else self._first_body(write_id)
            self.writing = Writing(self.position, write_id, body, record)

    def _mark(self) -> Writing:
        w = self.writing
        assert w is not None
        new, action = step(w.record, Attempting(w.body), float(self.marks.get(w.write_id, 0)))
        assert isinstance(action, Post) and new is not None and action.body == w.body
        w.record = new
        self.marks[w.write_id] = self.marks.get(w.write_id, 0) + 1
        self._store(w.write_id, new, durable=True)
        return w

    @precondition(lambda self: self.writing is not None)
    @rule(outcome=st.sampled_from(OUTCOMES), processed=st.booleans(), kept=st.integers(0, 3))
    def request(self, outcome: str, processed: bool, kept: int) -> None:
        w = self._mark()
        self.realgeeks.requests.setdefault(w.write_id, []).append((outcome, w.body))
        if outcome == "ok" or (outcome in ("crash_mid_request", *LOST) and processed):
            self.realgeeks.stored[w.write_id] = self.realgeeks.stored.get(w.write_id, 0) + 1
        if outcome == "crash_mid_request":
            self.crash(kept)
            return
        if outcome == "ok":
            new, action = step(w.record, Accepted(), 0.0)
            assert isinstance(action, Done) and action.attempts == self.marks[w.write_id]
            assert new is not None
            self._store(w.write_id, new, durable=False)
            self._done()
            return
        if outcome in LOST:
            # The record stays in_flight (stored durably before the request): dead-lettered
            # now, and any later delivery finds it in flight.
            new, action = step(w.record, Lost(), 0.0)
            assert new == w.record and isinstance(action, OutcomeUnknown), (new, action)
            self.deadletters.append((w.write_id, "OutcomeUnknownError"))
            self._done()
            return
        new, action = step(w.record, Refused(f"HTTP {outcome}", REFUSALS[outcome]), 0.0)
        assert new is not None
        w.record = new
        self._store(w.write_id, new, durable=False)
        # Only a retriable error lets the write be sent again in this run.
        assert isinstance(action, RetryLater) == REFUSALS[outcome], (outcome, action)
        if isinstance(action, GiveUp):
            self.deadletters.append((w.write_id, "PermanentApiError"))
            self._done()
        else:
            assert isinstance(action, RetryLater)
            w.refused = True

    @precondition(lambda self: self.writing is not None)
    @rule(kept=st.integers(0, 3))
    def crash_between_mark_and_request(self, kept: int) -> None:
        self._mark()
        self.crash(kept)

    @precondition(lambda self: self.writing is not None and self.writing.refused)
    @rule()
    def retries_spent(self) -> None:
        """The retry policy's budget ran out after a retriable error: dead-letter."""
        assert self.writing is not None and self.writing.record is not None
        assert self.writing.record.status == "failed"
        self.deadletters.append((self.writing.write_id, "TransientApiError"))
        self._done()

    @precondition(lambda self: self.writing is None)
    @rule()
    def commit(self) -> None:
        # Faust flushes the producer before it commits an offset.
        self._acknowledge(len(self.unacknowledged))
        self.committed_offset = self.position

    @rule(kept=st.integers(0, 3))
    def crash(self, kept: int) -> None:
        """The worker dies: the records not yet acknowledged survive in order, up to ``kept``;
        the restarted worker reads the changelog and the messages after the commit again."""
        self._acknowledge(min(kept, len(self.unacknowledged)))
        self.unacknowledged.clear()
        self.table = dict(self.changelog)
        self.writing = None
        self.position = self.committed_offset

    @rule()
    def restart(self) -> None:
        """A clean stop (the current write abandoned between attempts) and a start."""
        if self.writing is None:
            self.commit()
        self.crash(kept=len(self.unacknowledged))

    # -- the promises -----------------------------------------------------------------------

    @invariant()
    def never_two_requests_unless_the_first_was_not_received(self) -> None:
        for write_id, requests in self.realgeeks.requests.items():
            for outcome, _ in requests[:-1]:
                assert outcome in REFUSALS, f"{write_id} sent again after {outcome}: {requests}"
            assert self.realgeeks.stored.get(write_id, 0) <= 1

    @invariant()
    def every_request_sends_the_same_body(self) -> None:
        for write_id, requests in self.realgeeks.requests.items():
            assert len({repr(body) for _, body in requests}) == 1, (write_id, requests)

    @invariant()
    def attempts_count_every_request_that_left(self) -> None:
        for write_id, stored in self.table.items():
            assert stored["attempts"] == self.marks[write_id], (write_id, stored)

    @invariant()
    def posted_means_stored_at_realgeeks(self) -> None:
        for write_id, stored in self.table.items():
            if stored["status"] == "posted":
                assert self.realgeeks.stored.get(write_id) == 1, write_id

    @invariant()
    def nothing_lost(self) -> None:
        pending = set(self.topic[self.position :])
        if self.writing is not None:
            pending.add(self.writing.write_id)
        dead = {write_id for write_id, _ in self.deadletters}
        for write_id in set(self.topic):
            stored = self.table.get(write_id, {}).get("status") == "posted"
            assert write_id in pending or stored or write_id in dead, write_id

    def teardown(self) -> None:
        """Real Geeks recovers and the worker reads to the end: every write ends posted or
        dead-lettered."""
        self.restart()
        for _ in range(4 * len(self.topic) + 4):
            if self.writing is not None:
                self.request("ok", processed=True, kept=0)
            elif self.position < len(self.topic):
                self.read()
        assert self.writing is None and self.position == len(self.topic)
        self.never_two_requests_unless_the_first_was_not_received()
        self.every_request_sends_the_same_body()
        dead = {write_id for write_id, _ in self.deadletters}
        for write_id in set(self.topic):
            posted = self.table.get(write_id, {}).get("status") == "posted"
            assert posted or write_id in dead, write_id
            if write_id in dead and not posted:
                # Dead-lettered without a known post: unknown outcome or refused, never stored
                # twice, and a person can tell which from the dead letter.
                assert self.realgeeks.stored.get(write_id, 0) <= 1


OutboxMachine.TestCase.settings = settings(
    max_examples=int(__import__("os").environ.get("RGSYNC_OUTBOX_EXAMPLES", "300")),
    stateful_step_count=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_outbox_keeps_its_promises = OutboxMachine.TestCase
