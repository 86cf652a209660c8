"""The outbox as a state machine: each write to Real Geeks sent at most once.

Real Geeks has no idempotency key, so the outbox table keeps one record per write (an
activity's ``activity_id``, a lead update's ``update_id``) and these transitions decide,
from that record alone, what the writer (agents/write_activities.py) may do:

    (record or None, event, now) -> (new record, action)

* ``posted`` is final: a redelivery, a replay or a restart writes nothing (``Skip``).
* Before every request the record becomes ``in_flight``, with ``attempts`` counted up; the
  agent stores it durably *before* the request leaves. An ``in_flight`` record found when a
  message is read means a writer stopped during a request: nobody knows whether Real Geeks
  wrote it, so it is dead-lettered for a person (``OutcomeUnknown``), never sent again.
* A request that may have reached Real Geeks but got no answer (``Lost``: a timeout, a
  connection dropped after the request was sent) is treated like a writer stopped during
  it: the record stays ``in_flight`` and the write is dead-lettered (``OutcomeUnknown``).
* Any other service error (``Refused``: an HTTP error status, a connection that was never
  made) counts as "nothing was written": the record becomes ``failed`` and
  the write may be sent again, later if the error is retriable (``RetryLater``; the retry
  policy, app/clients/retry.py, says when and for how long), else not (``GiveUp``). A
  ``failed`` record read again (a replay of the dead letter, a restart) starts over with
  its attempts and body kept.
* A lead update's body is fixed at its first attempt and kept in every later record but
  ``posted``; every retry and every restart sends the same body.

Pure: no I/O and no clock of its own, so every rule is tested without a broker
(tests/unit/test_outbox.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, NamedTuple

__all__ = [
    "ERROR_CHARS",
    "FAILED",
    "IN_FLIGHT",
    "POSTED",
    "Accepted",
    "Action",
    "Attempting",
    "Delivered",
    "Done",
    "GiveUp",
    "InvalidTransitionError",
    "Lost",
    "OutboxEvent",
    "OutboxRecord",
    "OutcomeUnknown",
    "Post",
    "Refused",
    "RetryLater",
    "Send",
    "Skip",
    "Status",
    "Step",
    "accept",
    "attempt",
    "deliver",
    "lose",
    "read_record",
    "refuse",
    "step",
]

Status = Literal["in_flight", "failed", "posted"]
IN_FLIGHT: Final = "in_flight"
FAILED: Final = "failed"
POSTED: Final = "posted"

ERROR_CHARS = 300
"""How much of an error's text a ``failed`` record keeps."""


@dataclass(frozen=True, slots=True)
class OutboxRecord:
    """One write's state in the outbox table (its value is ``to_value()``)."""

    status: Status
    attempts: int
    at: float
    error: str | None = None
    # The body fixed at the first attempt; None: not fixed yet (no attempt stored one).
    body: dict[str, Any] | None = None

    def to_value(self) -> dict[str, Any]:
        """The table value: {status, attempts, [error], at, [body]} (an empty body is left out)."""
        value: dict[str, Any] = {"status": self.status, "attempts": self.attempts}
        if self.status == FAILED:
            value["error"] = self.error or ""
        value["at"] = self.at
        if self.body:
            value["body"] = self.body
        return value


def read_record(value: Mapping[str, Any] | None) -> OutboxRecord | None:
    """The record a table value holds; None for no value (or an empty one).

    Any status but ``posted`` and ``in_flight`` reads as ``failed``: the writer sends it
    again, as for a definite failure. ``attempts`` is read with ``int()`` (missing: 0).
    """
    if not value:
        return None
    raw_status = value.get("status")
    status: Status = raw_status if raw_status in (IN_FLIGHT, POSTED) else FAILED
    at = value.get("at")
    error = value.get("error")
    body = value.get("body")
    return OutboxRecord(
        status=status,
        attempts=int(value.get("attempts", 0)),
        at=float(at) if isinstance(at, int | float) else 0.0,
        error=error if isinstance(error, str) else None,
        body=body if isinstance(body, dict) else None,
    )


# --- events -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Delivered:
    """The write's message was read: the first time, again (redelivery, replay) or after a
    restart; the outbox cannot tell these apart and need not."""


@dataclass(frozen=True, slots=True)
class Attempting:
    """A request is about to leave with ``body`` (the rate limiter has let it through)."""

    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Accepted:
    """Real Geeks answered the request with success."""


@dataclass(frozen=True, slots=True)
class Refused:
    """The request raised a service error (app/core/errors.py): nothing was written."""

    error: str
    retriable: bool


@dataclass(frozen=True, slots=True)
class Lost:
    """No answer came after the request may have left (timeout, dropped connection)."""


OutboxEvent = Delivered | Attempting | Accepted | Refused | Lost


# --- actions ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Skip:
    """Already posted: write nothing (a duplicate message)."""


@dataclass(frozen=True, slots=True)
class OutcomeUnknown:
    """A request was in flight when a writer stopped, or its answer was lost: dead-letter,
    never send again."""

    attempts: int


@dataclass(frozen=True, slots=True)
class Send:
    """Start sending: ``attempts`` made so far; ``body`` None means "fix the first body now"."""

    attempts: int
    body: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class Post:
    """Store the new (in_flight) record durably, then send the request with ``body``."""

    attempts: int
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Done:
    """Written: store the posted record."""

    attempts: int


@dataclass(frozen=True, slots=True)
class RetryLater:
    """Store the failed record; the request may be sent again when the retry policy allows."""

    attempts: int


@dataclass(frozen=True, slots=True)
class GiveUp:
    """Store the failed record and dead-letter the write (a replay may send it again)."""

    attempts: int


Action = Skip | OutcomeUnknown | Send | Post | Done | RetryLater | GiveUp


class Step(NamedTuple):
    """A transition's result: the record to store (None: none yet) and what to do."""

    record: OutboxRecord | None
    action: Action


class InvalidTransitionError(ValueError):
    """An event the record's state does not allow (a writer bug, never a message's fault)."""


# --- transitions --------------------------------------------------------------------------


def deliver(record: OutboxRecord | None) -> Skip | OutcomeUnknown | Send:
    """What a read message leads to; the record itself does not change."""
    if record is None:
        return Send(attempts=0, body=None)
    if record.status == POSTED:
        return Skip()
    if record.status == IN_FLIGHT:
        return OutcomeUnknown(record.attempts)
    return Send(attempts=record.attempts, body=record.body)


def attempt(record: OutboxRecord | None, body: dict[str, Any], now: float) -> OutboxRecord:
    """The in_flight record to store durably before a request leaves (one more attempt).

    Raises:
        InvalidTransitionError: the write was posted, or its last request's outcome is unknown.
    """
    if record is not None and record.status != FAILED:
        raise InvalidTransitionError(f"no request may leave for a write that is {record.status}")
    attempts = record.attempts if record is not None else 0
    return OutboxRecord(IN_FLIGHT, attempts + 1, now, body=body)


def accept(record: OutboxRecord | None, now: float) -> OutboxRecord:
    """The posted record after a success (its body is no longer needed).

    Raises:
        InvalidTransitionError: no request was in flight.
    """
    if record is None or record.status != IN_FLIGHT:
        raise InvalidTransitionError("an answer came for a write with no request in flight")
    return OutboxRecord(POSTED, record.attempts, now)


def refuse(
    record: OutboxRecord | None, error: str, retriable: bool, now: float
) -> tuple[OutboxRecord, RetryLater | GiveUp]:
    """The failed record after a service error, and whether the write may be sent again.

    Raises:
        InvalidTransitionError: no request was in flight.
    """
    if record is None or record.status != IN_FLIGHT:
        raise InvalidTransitionError("an error came for a write with no request in flight")
    failed = OutboxRecord(FAILED, record.attempts, now, error[:ERROR_CHARS], record.body)
    action: RetryLater | GiveUp = (
        RetryLater(record.attempts) if retriable else GiveUp(record.attempts)
    )
    return failed, action


def lose(record: OutboxRecord | None) -> OutcomeUnknown:
    """The request may have been written: the record stays in_flight (as stored before the
    request left), so neither this delivery nor any later one sends it again.

    Raises:
        InvalidTransitionError: no request was in flight.
    """
    if record is None or record.status != IN_FLIGHT:
        raise InvalidTransitionError("an answer was lost for a write with no request in flight")
    return OutcomeUnknown(record.attempts)


def step(record: OutboxRecord | None, event: OutboxEvent, now: float) -> Step:
    """One transition: (record or None, event, now) -> (new record, action).

    Raises:
        InvalidTransitionError: an event the record's state does not allow.
    """
    match event:
        case Delivered():
            return Step(record, deliver(record))
        case Attempting(body=body):
            new = attempt(record, body, now)
            return Step(new, Post(new.attempts, body))
        case Accepted():
            new = accept(record, now)
            return Step(new, Done(new.attempts))
        case Refused(error=error, retriable=retriable):
            new, action = refuse(record, error, retriable, now)
            return Step(new, action)
        case Lost():
            return Step(record, lose(record))
    raise InvalidTransitionError(f"unknown outbox event {event!r}")
