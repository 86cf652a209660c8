"""The dialer's inputs: what happened, as values the state machine takes one at a time.

Three topics feed the dialer, all partitioned by site (app/streaming/partitioning.py): calls.context
(``ContextSeen``), sync.optouts (``OptOut``, app/domain/dialing/optouts.py) and sync.dialer-events,
whose records this module reads and writes: the answer to a call request (``CallAnswer``),
a call's outcome from ElevenLabs (``CallEnded``), timer ticks (``Tick``) and what an
operator asked for (``OperatorAction``: pause, resume, call one lead now, never call one
lead; who and when, so the topic is the record of every such decision). A pause or resume
of every site names the site ``ALL_SITES`` ("*") and is written to every partition.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from realgeeks_sync.app.domain.dialing.optouts import OptOut
from realgeeks_sync.app.domain.dialing.records import ALL_SITES, is_all_sites

__all__ = [
    "ANSWER_RESULTS",
    "CAUSES",
    "NO_ANSWER_OUTCOMES",
    "OPERATOR_ACTIONS",
    "WINDOW_CLOSED",
    "CallAnswer",
    "CallEnded",
    "ContextSeen",
    "DialerEvent",
    "DialerRecordError",
    "OperatorAction",
    "Tick",
    "answer_record",
    "conversation_record",
    "operator_record",
    "outcome_record",
    "parse_dialer_record",
    "tick_record",
]

ANSWER_RESULTS = ("placed", "refused", "unknown")
# Why a request got no placement: bounded labels for metrics.
CAUSES = (
    "placed",
    "rejected",  # 4xx: the request itself was refused (no retry helps)
    "rate_limited",  # 429 / 408: no call made, try later
    "not_connected",  # the connection failed before the request was written
    "timeout",  # no answer in time
    "dropped",  # the connection closed without an answer
    "server_error",  # 5xx
    "not_placed",  # 2xx with success false or without a conversation id
    "lost",  # the worker stopped with the request in flight
    "window_closed",  # not sent: still at home when its window (with the margin) closed
    "other",
)
WINDOW_CLOSED = "window_closed"
# Outcomes after which a lead may be called again (nobody took the call).
NO_ANSWER_OUTCOMES = frozenset({"no-answer", "busy", "voicemail"})


class DialerRecordError(ValueError):
    """A record on sync.dialer-events the dialer cannot read."""


@dataclass(frozen=True)
class ContextSeen:
    """A calls.context record for one lead."""

    site_uuid: str
    lead_id: str
    context: Mapping[str, Any]


@dataclass(frozen=True)
class CallAnswer:
    """What the outbound-call request got back.

    ``placed``: a conversation id. ``refused``: an answer proving no call was made (4xx,
    429, connection refused, or the request was never sent: ``window_closed``);
    ``retriable`` says whether trying later can help.
    ``unknown``: anything else (timeout, dropped connection, 5xx, ``success: false``).
    ``cause`` is a short label from ``CAUSES`` (metrics); ``reason`` the readable detail.
    """

    site_uuid: str
    lead_id: str
    attempt_id: str
    result: Literal["placed", "refused", "unknown"]
    cause: str = "other"
    conversation_id: str | None = None
    retriable: bool = False
    retry_after: float | None = None
    reason: str | None = None


@dataclass(frozen=True)
class CallEnded:
    """How a call ended, from ElevenLabs' post-call webhook."""

    site_uuid: str
    lead_id: str
    conversation_id: str | None
    outcome: str  # completed | voicemail | failed | busy | no-answer | unknown
    attempt_id: str | None = None
    opted_out: bool = False


@dataclass(frozen=True)
class Tick:
    """Time passed: wake due leads, free expired lines, settle orphaned requests.

    ``live`` holds the attempt ids whose request this process still has in flight; the
    agent fills it in when it applies the tick. ``optouts_end``: the end offset of the
    site's sync.optouts partition, asked by the agent when it applies the tick (None: not
    known, so no call leaves on this tick; see may_dial).
    """

    site_uuid: str
    live: frozenset[str] = field(default_factory=frozenset)
    optouts_end: int | None = None


OPERATOR_ACTIONS = ("pause", "resume", "call_now", "never_call")
_LEAD_ACTIONS = frozenset({"call_now", "never_call"})
_ALL_SITES_ACTIONS = frozenset({"pause", "resume"})


@dataclass(frozen=True)
class OperatorAction:
    """An operator's decision: pause or resume a site's dialer, call one lead now (inside
    its window and every rule), or never call one lead.

    ``site_uuid`` ``ALL_SITES`` on the topic: pause or resume every site, including sites
    the dialer has not seen yet; the agent names its partition's switch instead
    (records.all_sites_key) before the machine applies it."""

    site_uuid: str
    action: Literal["pause", "resume", "call_now", "never_call"]
    by: str
    at: str  # ISO 8601
    lead_id: str | None = None
    event_id: str = ""


DialerEvent = ContextSeen | OptOut | CallAnswer | CallEnded | Tick | OperatorAction


def operator_record(action: OperatorAction) -> dict[str, Any]:
    """The sync.dialer-events value for an operator's action."""
    return {
        "kind": "operator",
        "site_uuid": action.site_uuid,
        "action": action.action,
        "lead_id": action.lead_id,
        "by": action.by,
        "at": action.at,
        "event_id": action.event_id,
    }


def answer_record(answer: CallAnswer) -> dict[str, Any]:
    """The sync.dialer-events value for a call answer."""
    return {
        "kind": "answer",
        "site_uuid": answer.site_uuid,
        "lead_id": answer.lead_id,
        "attempt_id": answer.attempt_id,
        "result": answer.result,
        "cause": answer.cause,
        "conversation_id": answer.conversation_id,
        "retriable": answer.retriable,
        "retry_after": answer.retry_after,
        "reason": answer.reason,
    }


def outcome_record(outcome: CallEnded) -> dict[str, Any]:
    """The sync.dialer-events value for a call outcome."""
    return {
        "kind": "outcome",
        "site_uuid": outcome.site_uuid,
        "lead_id": outcome.lead_id,
        "conversation_id": outcome.conversation_id,
        "attempt_id": outcome.attempt_id,
        "outcome": outcome.outcome,
        "opted_out": outcome.opted_out,
    }


def conversation_record(
    *,
    conversation_id: str,
    site_uuid: str,
    lead_id: str,
    started_at: str,
    attempt_id: str | None = None,
    direction: str | None = None,
) -> dict[str, Any]:
    """The sync.conversations value of a call: which lead its conversation is with (the
    dialer's attempt id for a call it placed; ``direction`` "inbound" for one the pre-call
    webhook answered, left out when not given)."""
    record: dict[str, Any] = {
        "conversation_id": conversation_id,
        "site_uuid": site_uuid,
        "lead_id": lead_id,
        "attempt_id": attempt_id,
        "started_at": started_at,
    }
    if direction is not None:
        record["direction"] = direction
    return record


def tick_record(site_uuid: str, optouts_end: int | None = None) -> dict[str, Any]:
    """The sync.dialer-events value for a timer tick of one site. The timer sends
    ``optouts_end`` None: the agent asks the end itself when it applies the tick."""
    return {"kind": "tick", "site_uuid": site_uuid, "optouts_end": optouts_end}


def parse_dialer_record(raw: Any) -> CallAnswer | CallEnded | Tick | OperatorAction:
    """Read a sync.dialer-events value.

    Raises:
        DialerRecordError: not an object, an unknown kind, or a missing field.
    """
    if not isinstance(raw, Mapping):
        raise DialerRecordError("dialer event is not a JSON object")
    kind = raw.get("kind")
    site = _text(raw, "site_uuid")
    if is_all_sites(site) and not (
        kind == "operator" and site == ALL_SITES and raw.get("action") in _ALL_SITES_ACTIONS
    ):
        # The reserved scope of every site is only ever paused or resumed, as a whole.
        raise DialerRecordError(f"site_uuid {site[:40]!r} on a {str(kind)[:40]} record")
    if kind == "tick":
        end = raw.get("optouts_end")
        valid = isinstance(end, int) and not isinstance(end, bool) and end >= 0
        return Tick(site, optouts_end=end if valid else None)
    if kind == "operator":
        action = raw.get("action")
        if action not in OPERATOR_ACTIONS:
            raise DialerRecordError(f"operator action {str(action)[:40]!r}")
        lead_id = _optional_text(raw.get("lead_id"))
        if action in _LEAD_ACTIONS and lead_id is None:
            raise DialerRecordError(f"operator action {action} without lead_id")
        return OperatorAction(
            site_uuid=site,
            action=action,
            by=_text(raw, "by")[:120],
            at=_text(raw, "at")[:40],
            lead_id=lead_id,
            event_id=_optional_text(raw.get("event_id")) or "",
        )
    lead = _text(raw, "lead_id")
    if kind == "answer":
        result = raw.get("result")
        if result not in ANSWER_RESULTS:
            raise DialerRecordError(f"dialer answer with result {result!r}")
        retry_after = raw.get("retry_after")
        return CallAnswer(
            site_uuid=site,
            lead_id=lead,
            attempt_id=_text(raw, "attempt_id"),
            result=result,
            cause=str(raw["cause"]) if raw.get("cause") in CAUSES else "other",
            conversation_id=_optional_text(raw.get("conversation_id")),
            retriable=raw.get("retriable") is True,
            retry_after=float(retry_after) if isinstance(retry_after, int | float) else None,
            reason=_optional_text(raw.get("reason")),
        )
    if kind == "outcome":
        return CallEnded(
            site_uuid=site,
            lead_id=lead,
            conversation_id=_optional_text(raw.get("conversation_id")),
            outcome=_text(raw, "outcome"),
            attempt_id=_optional_text(raw.get("attempt_id")),
            opted_out=raw.get("opted_out") is True,
        )
    raise DialerRecordError(f"unknown dialer event kind {str(kind)[:40]!r}")


def _text(raw: Mapping[str, Any], name: str) -> str:
    value = raw.get(name)
    if not isinstance(value, str) or not value:
        raise DialerRecordError(f"dialer event without {name}")
    return value


def _optional_text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
