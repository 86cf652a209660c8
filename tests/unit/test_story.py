"""A lead's story from its records: entries, repeats dropped, bounded, the day's figures."""

from __future__ import annotations

import json

from realgeeks_sync.app.domain.story import (
    MAX_ENTRIES,
    add_entry,
    count_day,
    percentile,
    story_entries,
)

SITE, LEAD = "site-1", "a27c20af4497415d9e4e7334dd1d40d2"
AT = "2026-06-01T22:00:00+00:00"


def test_each_kind_of_record_tells_its_step() -> None:
    lead = {
        "site_uuid": SITE,
        "lead_id": LEAD,
        "event_id": "e1",
        "op": "merged",
        "match": {"rule": "email", "score": 1.0, "lead_id": LEAD},
        "changed": ["phone"],
        "processed_at": AT,
    }
    ((site, lead_id, entry),) = story_entries("leads.normalized", lead, AT)
    assert (site, lead_id) == (SITE, LEAD)
    assert entry["kind"] == "webhook" and entry["detail"]["rule"] == "email"
    assert "matched this lead by email" in entry["title"]
    answer = {
        "kind": "answer",
        "site_uuid": SITE,
        "lead_id": LEAD,
        "attempt_id": "a1",
        "result": "placed",
        "conversation_id": "conv1",
    }
    ((_, _, placed),) = story_entries("sync.dialer-events", answer, AT)
    assert placed["title"] == "AI call placed" and placed["detail"]["conversation_id"] == "conv1"
    assert story_entries("sync.dialer-events", {"kind": "tick", "site_uuid": SITE}, AT) == []
    pause = {"kind": "operator", "site_uuid": SITE, "action": "pause", "by": "x", "at": AT}
    assert story_entries("sync.dialer-events", pause, AT) == []  # a site's, not a lead's
    envelope = {"body": json.dumps({"site_uuid": "SITE-1", "id": "A27C-20AF"})}
    letter = {
        "topic": "p.realgeeks.webhooks.raw",
        "key": "SITE-1",
        "value": json.dumps(envelope),
        "error": "bad",
        "error_type": "PoisonMessageError",
        "first_failed_at": AT,
    }
    ((site, lead_id, dead),) = story_entries("sync.deadletter", letter, AT)
    assert (site, lead_id, dead["kind"]) == ("site-1", "A27C-20AF", "deadletter")


def test_a_story_drops_repeats_and_keeps_the_latest() -> None:
    story: list = []
    for n in range(MAX_ENTRIES + 20):
        entry = {
            "id": f"e{n}",
            "at": f"2026-06-01T{n // 60:02d}:{n % 60:02d}:00",
            "kind": "activity",
            "title": "",
            "detail": {},
        }
        story = add_entry(story, entry) or story
    assert len(story) == MAX_ENTRIES and story[-1]["id"] == f"e{MAX_ENTRIES + 19}"
    assert add_entry(story, dict(story[-1])) is None


def test_the_day_counts_what_the_dashboard_shows() -> None:
    ended = {"kind": "call", "detail": {"event": "ended", "outcome": "completed"}}
    day = count_day(None, ended)
    assert day == {"calls_ended": 1, "contacts": 1}
    assert count_day(day, {"kind": "context", "detail": {"event": "eligible"}}) is None
    assert percentile([3.0, 1.0, 2.0, 10.0], 0.5) == 2.0
    assert percentile([3.0, 1.0, 2.0, 10.0], 0.99) == 10.0 and percentile([], 0.5) is None


def test_a_lead_update_tells_which_fields_not_their_values() -> None:
    update = {
        "update_id": "u1",
        "site_uuid": SITE,
        "lead_id": LEAD,
        "conversation_id": "conv1",
        "fields": {"timeframe": "3-6 months", "budget": "$650,000"},
        "tags": ["ai-call", "pre-approved"],
    }
    ((site, lead_id, entry),) = story_entries("realgeeks.leads.outbound", update, AT)
    assert (site, lead_id, entry["kind"]) == (SITE, LEAD, "writeback")
    assert entry["title"] == "Write to Real Geeks: lead fields (budget, timeframe), 2 tag(s)"
    assert entry["detail"]["update_id"] == "u1"
    assert "650" not in json.dumps(entry)


def _call_outcome(direction: str, outcome: str = "completed") -> dict:
    return {
        "schema": "call_outcome.v1",
        "event_id": "0" * 32,
        "site_uuid": SITE,
        "lead_id": LEAD,
        "conversation_id": "conv-in-1",
        "direction": direction,
        "outcome": outcome,
        "opted_out": False,
        "kinds": ["call_completed"],
        "occurred_at": AT,
        "reconciled": False,
    }


def test_an_inbound_call_ends_once_in_the_story_and_counts_as_a_contact() -> None:
    ((site, lead_id, entry),) = story_entries("sync.call-outcomes", _call_outcome("inbound"), AT)
    assert (site, lead_id, entry["id"], entry["kind"]) == (SITE, LEAD, "outcome:conv-in-1", "call")
    assert entry["title"] == "Call ended: completed (the lead called the AI)"
    assert entry["detail"]["event"] == "ended" and entry["detail"]["direction"] == "inbound"
    # Read again (a redelivery, a replay): one entry, counted once.
    story = add_entry([], entry)
    assert story is not None and add_entry(story, dict(entry)) is None
    assert count_day(None, entry) == {"calls_ended": 1, "contacts": 1, "calls_inbound": 1}
    missed = story_entries("sync.call-outcomes", _call_outcome("inbound", "no-answer"), AT)
    assert count_day({"calls_ended": 1}, missed[0][2]) == {"calls_ended": 2, "calls_inbound": 1}


def test_an_outbound_calls_end_is_told_by_the_dialer_event_only() -> None:
    # Its dialer event (which names the attempt) tells it: a second entry would count twice.
    assert story_entries("sync.call-outcomes", _call_outcome("outbound"), AT) == []
    ended = {
        "kind": "outcome",
        "site_uuid": SITE,
        "lead_id": LEAD,
        "attempt_id": "a1",
        "conversation_id": "conv-out-1",
        "outcome": "completed",
    }
    ((_, _, entry),) = story_entries("sync.dialer-events", ended, AT)
    assert count_day(None, entry) == {"calls_ended": 1, "contacts": 1}
