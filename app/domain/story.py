"""A lead's story: every record about it, as short entries kept in one bounded table value.

``story_entries`` turns one record of a per-lead topic into the entries it adds to the
stories of the leads it names (pure; agents/record_stories.py stores them). ``add_entry``
keeps a story bounded and free of repeats (records are read at least once). ``count_day``
adds an entry to its site's figures of the day (the dashboard's: leads, calls placed, calls
ended, contacts, inbound calls, tours, opt-outs, dead letters, speed to lead).

A call's end is told once: one the dialer placed by its dialer event (sync.dialer-events,
which names the attempt), one the lead made to the AI by its call outcome
(sync.call-outcomes, the only record of it); both carry ``outcome:<id>`` entry ids.

An entry: ``{id, at, kind, title, detail}``; ``kind`` is one of ``KINDS``, ``detail`` a
small flat mapping (never a whole body).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

__all__ = [
    "KINDS",
    "MAX_ENTRIES",
    "MAX_SPEED_SAMPLES",
    "StoryEntry",
    "add_entry",
    "count_day",
    "percentile",
    "site_day_key",
    "story_entries",
    "story_key",
]

MAX_ENTRIES = 200  # per lead: the oldest go first
MAX_SPEED_SAMPLES = 500  # per site and day
KINDS = (
    "webhook",  # lead.v1: created, updated, merged, with the rule that matched
    "activity",  # activity.v1, inbound or outbound
    "context",  # call_context.v1: eligible or not, why, trigger
    "call",  # the dialer: request answered, call ended; an inbound call ended
    "operator",  # pause/resume/call now/never call
    "writeback",  # an activity or lead fields to write to Real Geeks (status: the outbox)
    "optout",  # optout.v1
    "deadletter",  # something about the lead went to sync.deadletter
)

StoryEntry = dict[str, Any]
Named = tuple[str, str, StoryEntry]  # (site, lead id, entry)

_TEXT = 160


def story_key(site_uuid: str, lead_id: str) -> str:
    """Key of a lead's story in lead_stories."""
    return f"{site_uuid}|{lead_id}"


def site_day_key(site_uuid: str, when: datetime, zone: str | None = None) -> str:
    """Key of a site's figures of a day in site_days: its date in ``zone`` (else UTC)."""
    local = when.astimezone(ZoneInfo(zone)) if zone else when.astimezone(UTC)
    return f"{site_uuid}|{local.date().isoformat()}"


def story_entries(topic: str, record: Mapping[str, Any], at: str) -> list[Named]:
    """The entries one record adds, for each lead it is about (``topic`` unprefixed).

    ``at``: the record's time (ISO 8601) where the record carries none.
    """
    site = _text(record.get("site_uuid"))
    lead = _text(record.get("lead_id"))
    if topic == "sync.deadletter":
        return _deadletter(record, at)
    if not site:
        return []
    if topic == "sync.dialer-events":
        return _dialer(site, record, at)
    if topic == "sync.call-outcomes":
        return _call_outcome(site, record, at)
    if not lead:
        return []
    if topic == "leads.normalized":
        entry = _lead_event(record, at)
    elif topic == "activities.normalized":
        entry = _activity(record, at)
    elif topic == "calls.context":
        entry = _context(record, at)
    elif topic == "realgeeks.activities.outbound":
        entry = _outbound(record, at)
    elif topic == "realgeeks.leads.outbound":
        entry = _lead_update(record, at)
    elif topic == "sync.optouts":
        entry = _optout(record, at)
    else:
        return []
    return [(site, lead, entry)] if entry is not None else []


def add_entry(story: Sequence[StoryEntry], entry: StoryEntry) -> list[StoryEntry] | None:
    """The story with ``entry`` added in time order and at most MAX_ENTRIES kept; None
    when the entry is already there (a record read again)."""
    if any(e.get("id") == entry["id"] for e in story):
        return None
    kept = [*story, entry]
    kept.sort(key=lambda e: str(e.get("at") or ""))
    return kept[-MAX_ENTRIES:]


def count_day(day: Mapping[str, Any] | None, entry: StoryEntry) -> dict[str, Any] | None:
    """The site's figures of the day with ``entry`` counted; None when it counts nothing."""
    field = _COUNTED.get((entry["kind"], entry["detail"].get("event", "")))
    if field is None:
        return None
    figures: dict[str, Any] = dict(day or {})
    figures[field] = int(figures.get(field) or 0) + 1
    if field == "calls_ended":
        # Contact rate: AI calls that were a conversation, of the AI calls that ended,
        # whichever side dialled (README, "The pages"); inbound ones are counted apart too.
        if entry["detail"].get("outcome") == "completed":
            figures["contacts"] = int(figures.get("contacts") or 0) + 1
        if entry["detail"].get("direction") == "inbound":
            figures["calls_inbound"] = int(figures.get("calls_inbound") or 0) + 1
    return figures


def percentile(samples: Sequence[float], q: float) -> float | None:
    """The q-th quantile (0..1) of the samples, nearest rank; None without samples."""
    if not samples:
        return None
    ordered = sorted(samples)
    rank = max(0, min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1))
    return float(ordered[rank])


_COUNTED = {
    ("webhook", "created"): "leads",
    ("call", "placed"): "calls_placed",
    ("call", "ended"): "calls_ended",
    ("activity", "tour_requested"): "tours",
    ("optout", "opt_out"): "optouts",
    ("deadletter", "deadletter"): "deadletters",
}


def _entry(entry_id: str, at: str, kind: str, title: str, **detail: Any) -> StoryEntry:
    return {
        "id": entry_id[:120],
        "at": at,
        "kind": kind,
        "title": title[:_TEXT],
        "detail": {k: v for k, v in detail.items() if v is not None and v != ""},
    }


def _lead_event(record: Mapping[str, Any], at: str) -> StoryEntry | None:
    op = _text(record.get("op")) or "updated"
    match = record.get("match") if isinstance(record.get("match"), Mapping) else {}
    rule = _text(match.get("rule")) if match else ""
    score = match.get("score") if match else None
    changed = record.get("changed")
    fields = ", ".join(str(x) for x in changed[:12]) if isinstance(changed, list) else ""
    title = {
        "created": "New lead from a Real Geeks webhook",
        "merged": f"Webhook matched this lead by {rule or 'a rule'}",
        "updated": "Webhook updated the lead",
    }.get(op, f"Webhook: {op}")
    return _entry(
        f"lead:{record.get('event_id')}",
        _text(record.get("processed_at")) or at,
        "webhook",
        title,
        event=op,
        rule=rule,
        score=round(float(score), 4) if isinstance(score, int | float) else None,
        source_lead_id=_text(record.get("source_lead_id")),
        changed=fields,
        source_timestamp=_text(record.get("source_timestamp")),
    )


def _activity(record: Mapping[str, Any], at: str) -> StoryEntry | None:
    kind = _text(record.get("type")) or "activity"
    direction = _text(record.get("direction")) or "inbound"
    description = _text(record.get("description"))
    title = f"{'AI' if direction == 'outbound' else 'Real Geeks'} activity: {kind}"
    if description:
        title += f": {description}"
    return _entry(
        f"activity:{record.get('event_id')}",
        _text(record.get("created")) or at,
        "activity",
        title,
        event=kind,
        direction=direction,
        source=_text(record.get("source")),
        own_writeback=True if record.get("own_writeback") else None,
    )


def _context(record: Mapping[str, Any], at: str) -> StoryEntry | None:
    eligible = record.get("eligible") is True
    reason = _text(record.get("reason"))
    trigger = _text(record.get("trigger"))
    title = "Call context: callable" if eligible else f"Call context: not callable ({reason})"
    return _entry(
        f"context:{record.get('event_id')}",
        _text(record.get("as_of")) or at,
        "context",
        title,
        event="eligible" if eligible else "ineligible",
        trigger=trigger,
        reason=reason,
    )


def _outbound(record: Mapping[str, Any], at: str) -> StoryEntry | None:
    activity = record.get("activity") if isinstance(record.get("activity"), Mapping) else {}
    activity_id = _text(record.get("activity_id"))
    kind = _text(activity.get("type")) if activity else ""
    return _entry(
        f"writeback:{activity_id}",
        _text(activity.get("created")) if activity else at,
        "writeback",
        f"Write to Real Geeks: {kind} activity",
        event="queued",
        activity_id=activity_id,
        type=kind,
    )


def _lead_update(record: Mapping[str, Any], at: str) -> StoryEntry | None:
    """What a call taught about the lead, to PATCH onto it: the names, not the values."""
    raw_fields, raw_tags = record.get("fields"), record.get("tags")
    fields = raw_fields if isinstance(raw_fields, Mapping) else {}
    tags = raw_tags if isinstance(raw_tags, list) else []
    names = ", ".join(sorted(_text(k) for k in fields)[:8])
    update_id = _text(record.get("update_id"))
    return _entry(
        f"writeback:{update_id}",
        at,
        "writeback",
        f"Write to Real Geeks: lead fields ({names or 'none'}), {len(tags)} tag(s)",
        event="lead_update",
        update_id=update_id,
        conversation_id=_text(record.get("conversation_id")),
    )


def _optout(record: Mapping[str, Any], at: str) -> StoryEntry | None:
    action = _text(record.get("action")) or "opt_out"
    subject = _text(record.get("subject")) or "lead"
    source = _text(record.get("source"))
    words = "Opted out" if action == "opt_out" else "Opt-out lifted"
    return _entry(
        f"optout:{record.get('event_id')}",
        _text(record.get("at")) or at,
        "optout",
        f"{words} ({subject}, from {source})",
        # The dashboard counts people who opted out: the numbers of a lead that did are
        # recorded too (subject phone), and are not counted again.
        event=action if subject == "lead" else f"{action}_number",
        subject=subject,
        source=source,
        reason=_text(record.get("reason")),
        by=_text(record.get("by")),
    )


def _dialer(site: str, record: Mapping[str, Any], at: str) -> list[Named]:
    kind = record.get("kind")
    lead = _text(record.get("lead_id"))
    if kind == "operator":
        action = _text(record.get("action"))
        if not lead:
            return []  # a site's pause or resume: on the dashboard, not a lead's story
        titles = {"call_now": "Operator asked to call now", "never_call": "Operator: never call"}
        return [
            (
                site,
                lead,
                _entry(
                    f"operator:{record.get('event_id') or action + ':' + str(record.get('at'))}",
                    _text(record.get("at")) or at,
                    "operator",
                    titles.get(action, f"Operator: {action}"),
                    event=action,
                    by=_text(record.get("by")),
                ),
            )
        ]
    if not lead:
        return []
    attempt = _text(record.get("attempt_id"))
    if kind == "answer":
        result = _text(record.get("result"))
        title = {
            "placed": "AI call placed",
            "refused": "Call request refused (no call made)",
            "unknown": "Call request outcome unknown (not retried)",
        }.get(result, f"Call request: {result}")
        reason = _text(record.get("reason"))
        return [
            (
                site,
                lead,
                _entry(
                    f"answer:{attempt}",
                    at,
                    "call",
                    title + (f": {reason}" if reason and result != "placed" else ""),
                    event=result,
                    attempt_id=attempt,
                    cause=_text(record.get("cause")),
                    conversation_id=_text(record.get("conversation_id")),
                ),
            )
        ]
    if kind == "outcome":
        outcome = _text(record.get("outcome"))
        conversation = _text(record.get("conversation_id"))
        return [
            (
                site,
                lead,
                _entry(
                    f"outcome:{attempt or conversation}",
                    at,
                    "call",
                    f"Call ended: {outcome}"
                    + (" (asked not to be called)" if record.get("opted_out") else ""),
                    event="ended",
                    outcome=outcome,
                    attempt_id=attempt,
                    conversation_id=conversation,
                ),
            )
        ]
    return []


def _call_outcome(site: str, record: Mapping[str, Any], at: str) -> list[Named]:
    """An inbound call's end (call_outcome.v1); an outbound one is the dialer event's."""
    lead = _text(record.get("lead_id"))
    conversation = _text(record.get("conversation_id"))
    if record.get("direction") != "inbound" or not lead or not conversation:
        return []
    outcome = _text(record.get("outcome"))
    kinds = record.get("kinds")
    entry = _entry(
        f"outcome:{conversation}",
        _text(record.get("occurred_at")) or at,
        "call",
        f"Call ended: {outcome} (the lead called the AI)"
        + (" (asked not to be called)" if record.get("opted_out") else ""),
        event="ended",
        outcome=outcome,
        direction="inbound",
        conversation_id=conversation,
        kinds=", ".join(str(k) for k in kinds[:8]) if isinstance(kinds, list) else None,
        reconciled=True if record.get("reconciled") else None,
    )
    return [(site, lead, entry)]


def _deadletter(record: Mapping[str, Any], at: str) -> list[Named]:
    """A dead letter about a lead: from its key ``<site>:<lead>``, or a raw webhook's body."""
    key = _text(record.get("key"))
    topic = _text(record.get("topic"))
    site, lead = "", ""
    if ":" in key:
        site, _, lead = key.partition(":")
    elif topic.endswith("realgeeks.webhooks.raw"):
        site, lead = _raw_webhook_lead(record.get("value"))
    if not site or not lead:
        return []
    error_type = _text(record.get("error_type"))
    error = _text(record.get("error"))
    entry = _entry(
        f"deadletter:{topic}:{record.get('first_failed_at')}:{error_type}",
        _text(record.get("first_failed_at")) or at,
        "deadletter",
        f"Dead letter ({error_type}): {error}",
        event="deadletter",
        topic=topic,
        error_type=error_type,
        retriable=record.get("retriable"),
    )
    return [(site.strip().lower(), lead, entry)]


def _raw_webhook_lead(value: Any) -> tuple[str, str]:
    """(site, lead id as received) of a raw Real Geeks envelope, or empty strings."""
    try:
        envelope = json.loads(value) if isinstance(value, str) else value
        body = json.loads(envelope["body"]) if isinstance(envelope, Mapping) else None
    except (ValueError, KeyError, TypeError):
        return "", ""
    if not isinstance(body, Mapping):
        return "", ""
    return _text(body.get("site_uuid")), _text(body.get("id"))


def _text(value: Any) -> str:
    return value.strip()[:_TEXT] if isinstance(value, str) else ""
