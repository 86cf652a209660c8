"""record_stories: every per-lead record -> the lead's story and its site's figures of the day.

The records that say what happened to a lead are all on the site's partition. This agent
reads those no other agent reads (activities.normalized, sync.deadletter). The writers of
leads.normalized and calls.context (normalize_leads, track_lead_calls) add their records'
entries with their own table writes; dial_leads (sync.optouts, sync.dialer-events),
write_activities (realgeeks.activities.outbound, realgeeks.leads.outbound) and
track_lead_calls (sync.call-outcomes: an inbound call's end, which no dialer event tells)
hand the records they read to the same ``StoryWriter`` as they go: two agents reading one
topic would each need the offsets the other one commits. Per lead the last entries
(lead_stories), per site and day the dashboard's figures (site_days), so the lead's page and
the dashboard read table values instead of scanning topics (app/domain/story.py). A record
read twice adds nothing (entries carry ids). What the dashboard shows is also counted for
Prometheus: calls ended by outcome, tours requested.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import faust

from realgeeks_sync.agents.processing import Output
from realgeeks_sync.app.core import json_codec
from realgeeks_sync.app.domain.dialing.store import lead_record_key
from realgeeks_sync.app.domain.normalize import normalize_lead_id
from realgeeks_sync.app.domain.story import (
    MAX_SPEED_SAMPLES,
    StoryEntry,
    add_entry,
    count_day,
    site_day_key,
    story_entries,
    story_key,
)
from realgeeks_sync.app.streaming import topics as names
from realgeeks_sync.app.streaming.partitioning import site_partition
from realgeeks_sync.app.streaming.pipeline import Pipeline
from realgeeks_sync.app.streaming.table_batch import TableBatch, TableView
from realgeeks_sync.tables.identity import IdentityIndex

__all__ = ["StoryWriter", "register", "site_day"]

log = logging.getLogger(__name__)

_TOPICS = (
    names.LEADS,
    names.ACTIVITIES,
    names.CALLS_CONTEXT,
    names.ACTIVITIES_OUTBOUND,
    names.LEADS_OUTBOUND,
    names.OPTOUTS,
    names.DIALER_EVENTS,
    names.CALL_OUTCOMES,
    names.DEADLETTER,
)
# Read by no other agent: this one reads them (the rest reach the writer through theirs).
_OWN_TOPICS = (names.ACTIVITIES, names.DEADLETTER)
# Their writers (normalize_leads; track_lead_calls for contexts) add these records' entries
# with their own table writes (``StoryWriter.sent``): nothing reads them back for a story.
_WRITERS_RECORD = (names.LEADS, names.CALLS_CONTEXT)


def site_day(p: Pipeline, site_uuid: str, when: datetime) -> str:
    """Key of a site's figures in site_days: its local date (sites file time zone, else UTC)."""
    zone = p.sites.current.config(site_uuid).dialer.timezone if p.sites is not None else None
    return site_day_key(site_uuid, when, zone)


class StoryWriter:
    """Adds one record's entries to the stories and figures of the leads it names."""

    def __init__(self, p: Pipeline) -> None:
        self._p = p
        self._names = {p.settings.topic(name): name for name in _TOPICS}
        self._recorded = {names.ATTRIBUTES[name]: name for name in _WRITERS_RECORD}
        self._identity = IdentityIndex(p.tables.identity_index, p.tables.lead_snapshots)

    async def note_raw(self, message: Any) -> None:
        """``note`` for a record still in JSON bytes (one that is not JSON tells nothing)."""
        try:
            value = json_codec.loads(message.value or b"")
        except (ValueError, UnicodeDecodeError):
            return  # not ours to judge: the writer of the topic answers for it
        await self.note(message, value)

    async def note(self, message: Any, value: Any) -> None:
        """Record what ``value`` (a decoded record of ``message``) tells about its leads.

        Never raises: a story is for people, and one that cannot be told must not stop the
        agent that calls it (counted as StoryRecordFailed).
        """
        try:
            await self._note(message, value)
        except Exception:
            log.exception("recording a lead's story failed")
            self._p.metrics.sync_errors.labels("StoryRecordFailed").inc()

    async def _note(self, message: Any, value: Any) -> None:
        topic = self._names.get(message.topic)
        if topic is None or not isinstance(value, dict):
            return
        when = datetime.fromtimestamp((message.timestamp or 0) or self._p.clock(), UTC)
        writes = TableBatch(on_retry=self._p.count_write_retry)
        self.add(topic, value, message.partition, when, writes)
        await writes.flush("stories")

    def sent(self, event: Any, outputs: Sequence[Output], writes: TableBatch) -> None:
        """Write the entries of ``event``'s acknowledged outputs to leads.normalized and
        calls.context into ``writes`` (process_batch's ``sent`` hook).

        Never raises, as ``note``: the message would stay unfinished and come back to
        fail the same way, holding its partition (counted as StoryRecordFailed).
        """
        try:
            when = datetime.fromtimestamp(self._p.clock(), UTC)
            for output in outputs:
                topic = self._recorded.get(output.topic)
                if topic is not None:
                    self.add(topic, output.value, event.message.partition, when, writes)
        except Exception:
            log.exception("recording a lead's story failed")
            self._p.metrics.sync_errors.labels("StoryRecordFailed").inc()

    def add(
        self,
        topic: str,
        value: Mapping[str, Any],
        partition: int,
        when: datetime,
        writes: TableBatch,
    ) -> None:
        """Write the entries a record of ``topic`` (unprefixed) tells into ``writes``.

        ``partition``: the one whose tables are written (the current event's).
        """
        stories, days = (
            writes.view(self._p.tables.lead_stories),
            writes.view(self._p.tables.site_days),
        )
        for site, lead, entry in story_entries(topic, value, when.isoformat()):
            site = site.strip().lower()
            if site_partition(site, self._p.settings.partitions) != partition:
                continue  # a record off its site's partition: its table is elsewhere
            if entry["kind"] == "deadletter" or topic == names.CALL_OUTCOMES:
                # Ids as received (a dead letter's key) or as the caller's number found
                # them: the story is kept under the lead's canonical id.
                lead = self._canonical(site, lead)
            self._record(site, lead, entry, when, stories, days)

    def _canonical(self, site: str, lead: str) -> str:
        normalized = normalize_lead_id(lead) or lead
        return self._identity.canonical_id(site, normalized) or normalized

    def _speed(self, site: str, lead: str, entry: StoryEntry) -> float | None:
        """Seconds from the webhook to the lead's first call request (placed calls only)."""
        raw = self._p.tables.dialer_leads.get(lead_record_key(site, lead))
        if not isinstance(raw, dict) or not raw.get("first_seen"):
            return None
        for attempt in raw.get("attempts") or ():
            if attempt.get("attempt_id") == entry["detail"].get("attempt_id"):
                if attempt.get("number") != 1:
                    return None
                return max(0.0, float(attempt["sent_at"]) - float(raw["first_seen"]))
        return None

    def _record(
        self,
        site: str,
        lead: str,
        entry: StoryEntry,
        when: datetime,
        stories: TableView,
        days: TableView,
    ) -> None:
        """Add ``entry`` to the lead's story and count it in its site's day."""
        m = self._p.metrics
        key = story_key(site, lead)
        stored = stories.get(key)
        entries = stored.get("entries", []) if isinstance(stored, dict) else []
        updated = add_entry(entries, entry)
        if updated is None:
            return  # read again: counted the first time
        stories[key] = {"entries": updated}
        day_key = site_day(self._p, site, when)
        figures = count_day(days.get(day_key), entry)
        if figures is None:
            return
        detail = entry["detail"]
        if entry["kind"] == "call" and detail.get("event") == "placed":
            sample = self._speed(site, lead, entry)
            if sample is not None:
                speed = [*(figures.get("speed") or []), round(sample, 3)]
                figures["speed"] = speed[-MAX_SPEED_SAMPLES:]
        elif entry["kind"] == "call" and detail.get("event") == "ended":
            m.calls_ended.labels(str(detail.get("outcome") or "unknown")[:20]).inc()
        elif entry["kind"] == "activity" and detail.get("event") == "tour_requested":
            m.tours_requested.inc()
        days[day_key] = figures


def register(p: Pipeline) -> StoryWriter:
    """Register the agent; returns the writer the other agents share."""
    s = p.settings
    writer = StoryWriter(p)
    topic = p.app.topic(
        *(s.topic(name) for name in _OWN_TOPICS),
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
    )

    @p.app.agent(topic, name=s.topic("record_stories"), concurrency=1)
    async def record_stories(stream: faust.StreamT) -> None:
        async for event in p.sequence.events(stream):
            await writer.note_raw(event.message)

    return writer
