"""What the dialer keeps: one record per lead, one per site, and do-not-call entries.

Records are frozen dataclasses stored as plain JSON in the dialer's tables. Times are unix
seconds (float) so a record reads the same on every worker.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

__all__ = [
    "ALL_SITES",
    "Attempt",
    "AttemptState",
    "DncEntry",
    "InFlight",
    "LeadRecord",
    "LeadStatus",
    "SiteRecord",
    "all_sites_key",
    "attempt_id_for",
    "is_all_sites",
]

# The site_uuid of an operator's pause or resume of every site, as written on
# sync.dialer-events: one record on every partition, since the dialer is partitioned by site
# and a site it has never seen must be held as well.
ALL_SITES = "*"


class LeadStatus(StrEnum):
    """Where a lead stands with the dialer."""

    WAITING = "waiting"  # admitted; waits for its due time, its window or a free line
    CALLING = "calling"  # a call request was sent (or is about to be); no answer yet
    PLACED = "placed"  # ElevenLabs accepted the call; its outcome comes by webhook
    UNCERTAIN = "uncertain"  # the request's outcome is unknown: never sent again
    DONE = "done"  # nothing more to do (conversation held, attempts spent, call failed)
    SKIPPED = "skipped"  # not called, for ``reason``
    OPTED_OUT = "opted_out"  # the lead or one of its numbers is on the do-not-call list


class AttemptState(StrEnum):
    """What became of one call request."""

    SENT = "sent"  # recorded before the request left; no answer yet
    PLACED = "placed"  # answered with a conversation id (or an outcome arrived)
    REFUSED = "refused"  # answered in a way that proves no call was made
    UNCERTAIN = "uncertain"  # timeout, dropped connection, 5xx, success false, lost answer


def attempt_id_for(site_uuid: str, lead_id: str, number: int) -> str:
    """Return the deterministic id of a lead's ``number``-th call request."""
    raw = f"dial\x1f{site_uuid}\x1f{lead_id}\x1f{number}"
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()[:32]


def all_sites_key(partition: int) -> str:
    """The reserved dialer_sites key of a partition's switch for every site (a SiteRecord of
    which only ``paused`` counts); the agent names it as the site of a pause of every site."""
    return f"{ALL_SITES}:{partition}"


def is_all_sites(site_uuid: str) -> bool:
    """True for ``ALL_SITES`` and the keys of ``all_sites_key``: never a real site."""
    return site_uuid.startswith(ALL_SITES)


@dataclass(frozen=True)
class Attempt:
    """One call request: sent at most once, whatever happens after."""

    attempt_id: str
    number: int
    sent_at: float
    local_day: str
    phone: str
    state: AttemptState = AttemptState.SENT
    conversation_id: str | None = None
    outcome: str | None = None
    reason: str | None = None

    @property
    def counts(self) -> bool:
        """True unless the answer proved that no call was made."""
        return self.state is not AttemptState.REFUSED

    def to_json(self) -> dict[str, Any]:
        """Return the record as JSON-ready data."""
        return {
            "attempt_id": self.attempt_id,
            "number": self.number,
            "sent_at": self.sent_at,
            "local_day": self.local_day,
            "phone": self.phone,
            "state": str(self.state),
            "conversation_id": self.conversation_id,
            "outcome": self.outcome,
            "reason": self.reason,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Attempt:
        """Read an attempt written by ``to_json``."""
        return cls(
            attempt_id=str(raw["attempt_id"]),
            number=int(raw["number"]),
            sent_at=float(raw["sent_at"]),
            local_day=str(raw.get("local_day") or ""),
            phone=str(raw.get("phone") or ""),
            state=AttemptState(raw.get("state", AttemptState.UNCERTAIN)),
            conversation_id=raw.get("conversation_id"),
            outcome=raw.get("outcome"),
            reason=raw.get("reason"),
        )


@dataclass(frozen=True)
class LeadRecord:
    """The dialer's view of one lead: its status, what to dial, and every attempt."""

    site_uuid: str
    lead_id: str
    status: LeadStatus
    reason: str | None = None
    # The number to dial and every number the lead is known by (do-not-call checks).
    phone: str | None = None
    phones: tuple[str, ...] = ()
    # From the latest call context: whether it allows a call, and what the call carries.
    eligible: bool = False
    variables: Mapping[str, Any] = field(default_factory=dict)
    context_event_id: str | None = None
    # When the dialer first saw the lead as new (the age of a lead is counted from it).
    first_seen: float | None = None
    admitted_at: float | None = None
    due: float | None = None
    seq: int = 0
    refusals: int = 0
    attempts: tuple[Attempt, ...] = ()
    # An operator said never to call this lead (who, when): final, like an opt-out, but no
    # do-not-call entry (the person did not ask; an operator can still call by hand).
    never_call: str | None = None

    def attempt(self, attempt_id: str) -> Attempt | None:
        """Return the attempt with this id, if any."""
        return next((a for a in self.attempts if a.attempt_id == attempt_id), None)

    def with_attempt(self, attempt: Attempt) -> LeadRecord:
        """Return a copy with ``attempt`` replacing the one of the same id (or appended)."""
        others = [a for a in self.attempts if a.attempt_id != attempt.attempt_id]
        ordered = sorted([*others, attempt], key=lambda a: a.number)
        return replace(self, attempts=tuple(ordered))

    @property
    def counted_attempts(self) -> tuple[Attempt, ...]:
        """Attempts that may have reached the person (every one not proved refused)."""
        return tuple(a for a in self.attempts if a.counts)

    def to_json(self) -> dict[str, Any]:
        """Return the record as JSON-ready data."""
        # By hand: dataclasses.asdict deep-copies every value, several times the cost.
        return {
            "site_uuid": self.site_uuid,
            "lead_id": self.lead_id,
            "status": str(self.status),
            "reason": self.reason,
            "phone": self.phone,
            "phones": list(self.phones),
            "eligible": self.eligible,
            "variables": dict(self.variables),
            "context_event_id": self.context_event_id,
            "first_seen": self.first_seen,
            "admitted_at": self.admitted_at,
            "due": self.due,
            "seq": self.seq,
            "refusals": self.refusals,
            "attempts": [a.to_json() for a in self.attempts],
            "never_call": self.never_call,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> LeadRecord:
        """Read a record written by ``to_json``.

        Raises:
            KeyError, ValueError, TypeError: the value is not a lead record.
        """
        return cls(
            site_uuid=str(raw["site_uuid"]),
            lead_id=str(raw["lead_id"]),
            status=LeadStatus(raw["status"]),
            reason=raw.get("reason"),
            phone=raw.get("phone"),
            phones=tuple(str(p) for p in raw.get("phones") or ()),
            eligible=bool(raw.get("eligible")),
            variables=dict(raw.get("variables") or {}),
            context_event_id=raw.get("context_event_id"),
            first_seen=_float_or_none(raw.get("first_seen")),
            admitted_at=_float_or_none(raw.get("admitted_at")),
            due=_float_or_none(raw.get("due")),
            seq=int(raw.get("seq") or 0),
            refusals=int(raw.get("refusals") or 0),
            attempts=tuple(Attempt.from_json(a) for a in raw.get("attempts") or ()),
            never_call=raw.get("never_call") or None,
        )


@dataclass(frozen=True)
class InFlight:
    """A call that holds one of the site's lines: sent, and its outcome not yet known."""

    lead_id: str
    since: float
    answered: bool = False  # the request is settled; the line waits for the call's end


@dataclass(frozen=True)
class SiteRecord:
    """A site's calls in flight and its line of waiting leads."""

    site_uuid: str
    in_flight: Mapping[str, InFlight] = field(default_factory=dict)  # attempt id -> call
    waiting: Mapping[str, tuple[float, int]] = field(default_factory=dict)  # lead -> (due, seq)
    next_seq: int = 0
    # Paused by an operator ("<who> at <when>"): nothing is dialed; leads keep waiting.
    paused: str | None = None

    def to_json(self) -> dict[str, Any]:
        """Return the record as JSON-ready data."""
        return {
            "site_uuid": self.site_uuid,
            "in_flight": {
                k: {"lead_id": v.lead_id, "since": v.since, "answered": v.answered}
                for k, v in self.in_flight.items()
            },
            "waiting": {k: [due, seq] for k, (due, seq) in self.waiting.items()},
            "next_seq": self.next_seq,
            "paused": self.paused,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> SiteRecord:
        """Read a record written by ``to_json``.

        Raises:
            KeyError, ValueError, TypeError: the value is not a site record.
        """
        return cls(
            site_uuid=str(raw["site_uuid"]),
            in_flight={
                str(k): InFlight(str(v["lead_id"]), float(v["since"]), bool(v.get("answered")))
                for k, v in (raw.get("in_flight") or {}).items()
            },
            waiting={
                str(k): (float(v[0]), int(v[1])) for k, v in (raw.get("waiting") or {}).items()
            },
            next_seq=int(raw.get("next_seq") or 0),
            paused=raw.get("paused") or None,
        )


@dataclass(frozen=True)
class DncEntry:
    """Why a lead or a number is on the do-not-call list."""

    source: str
    at: str
    reason: str | None = None
    by: str | None = None
    event_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        """Return the entry as JSON-ready data."""
        return {
            "source": self.source,
            "at": self.at,
            "reason": self.reason,
            "by": self.by,
            "event_id": self.event_id,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> DncEntry:
        """Read an entry written by ``to_json``."""
        return cls(
            source=str(raw.get("source") or "unknown"),
            at=str(raw.get("at") or ""),
            reason=raw.get("reason"),
            by=raw.get("by"),
            event_id=raw.get("event_id"),
        )


def _float_or_none(value: Any) -> float | None:
    return None if value is None else float(value)
