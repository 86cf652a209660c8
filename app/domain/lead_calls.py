"""A lead's AI calls and opt-outs, folded from sync.call-outcomes and sync.optouts (pure).

The call context needs both and normalize_leads sees neither: the lead's webhooks come
from Real Geeks, its calls' outcomes from ElevenLabs and its opt-outs from four sources.
``track_lead_calls`` folds them, on the lead's site partition, into the ``lead_calls``
table, whose values this module builds:

    <site>|lead|<lead id>     {"count", "inbound", "by_outcome", "last_outcome", "last_at",
                               "seen", "optout"}
    <site>|phone|<E.164>      {"action", "source", "reason", "at", "event_id"}

``opt_out_of`` says whether a lead is opted out (itself, or any of its numbers) and by
whom; ``summary`` is what the context carries of its AI calls. Values read from the
table are never changed in place: each change builds a new value.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from realgeeks_sync.app.domain.dialing.optouts import OptOut

__all__ = [
    "add_call",
    "key",
    "opt_out_of",
    "optout_entry",
    "set_optout",
    "summary",
]

_SEEN = 200  # conversation ids remembered per lead, so a call is counted once


def key(site_uuid: str, subject: str, value: str) -> str:
    """The table key of a lead (``subject`` "lead") or a number ("phone") of a site."""
    return f"{site_uuid}|{subject}|{value}"


def add_call(state: Mapping[str, Any] | None, event: Mapping[str, Any]) -> dict[str, Any] | None:
    """The lead's state with one more call (a call_outcome.v1 event); None when the
    conversation was already counted."""
    current = dict(state) if isinstance(state, Mapping) else {}
    conversation = str(event.get("conversation_id") or "")
    seen = [c for c in current.get("seen") or [] if isinstance(c, str)]
    if conversation and conversation in seen:
        return None
    outcome = str(event.get("outcome") or "unknown")[:40]
    at = event.get("occurred_at") if isinstance(event.get("occurred_at"), str) else None
    inbound = event.get("direction") == "inbound"
    current.pop("calls", None)  # a list of recent calls earlier versions kept; nothing read it
    by_outcome = dict(current.get("by_outcome") or {})
    by_outcome[outcome] = int(by_outcome.get(outcome, 0)) + 1
    last_at = current.get("last_at")
    newest = not isinstance(last_at, str) or (at is not None and at >= last_at)
    return {
        **current,
        "seen": [*seen, conversation][-_SEEN:] if conversation else seen,
        "count": int(current.get("count") or 0) + 1,
        "inbound": int(current.get("inbound") or 0) + inbound,
        "by_outcome": by_outcome,
        "last_outcome": outcome if newest else current.get("last_outcome"),
        "last_at": at if newest else last_at,
    }


def optout_entry(optout: OptOut) -> dict[str, Any]:
    """What is kept of one opt-out or opt-in."""
    return {
        "action": optout.action,
        "source": optout.source,
        "reason": optout.reason,
        "at": optout.at,
        "event_id": optout.event_id,
    }


def set_optout(state: Mapping[str, Any] | None, optout: OptOut) -> dict[str, Any]:
    """The lead's state after an opt-out (or an operator's opt-in) of the lead itself."""
    current = dict(state) if isinstance(state, Mapping) else {}
    return {**current, "optout": optout_entry(optout)}


def opt_out_of(
    lead_state: Mapping[str, Any] | None, phone_states: Iterable[Mapping[str, Any] | None]
) -> dict[str, Any] | None:
    """The opt-out in force for a lead: its own, else one of its numbers' (None: none).

    The latest word of each subject counts, as on the do-not-call list: an operator's
    opt-in lifts that subject's opt-out.
    """
    own = lead_state.get("optout") if isinstance(lead_state, Mapping) else None
    if isinstance(own, Mapping) and own.get("action") == "opt_out":
        return {**own, "subject": "lead"}
    for state in phone_states:
        if isinstance(state, Mapping) and state.get("action") == "opt_out":
            return {**state, "subject": "phone"}
    return None


def summary(state: Mapping[str, Any] | None) -> dict[str, Any]:
    """What a call context carries of the lead's AI calls (zeros when there were none)."""
    current = state if isinstance(state, Mapping) else {}
    raw = current.get("by_outcome")
    by_outcome = {str(k): int(v) for k, v in raw.items()} if isinstance(raw, Mapping) else {}
    return {
        "count": int(current.get("count") or 0),
        "conversations": by_outcome.get("completed", 0),
        "inbound": int(current.get("inbound") or 0),
        "by_outcome": by_outcome,
        "last_outcome": current.get("last_outcome"),
        "last_at": current.get("last_at"),
    }
