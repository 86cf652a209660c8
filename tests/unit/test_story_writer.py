"""StoryWriter.sent: the writers of lead events and contexts record their entries."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

from realgeeks_sync.agents.processing import Output
from realgeeks_sync.agents.record_stories import StoryWriter
from realgeeks_sync.app.core.metrics import Metrics
from realgeeks_sync.app.core.settings import Settings
from realgeeks_sync.app.domain.story import story_key
from realgeeks_sync.app.streaming.partitioning import site_partition
from realgeeks_sync.app.streaming.table_batch import TableBatch
from tests.unit.test_table_batch import FakeTable

SITE = "0f8fad5b-d9cb-469f-a165-70867728950e"
NOW = 1_764_000_000.0  # 2025-11-24 16:00 UTC


def writer() -> tuple[StoryWriter, Any]:
    settings = Settings.from_env({"RGSYNC_REALGEEKS_SECRETS": "x"})
    tables = SimpleNamespace(
        lead_stories=FakeTable(),
        site_days=FakeTable(),
        identity_index=FakeTable(),
        lead_snapshots=FakeTable(),
        dialer_leads=FakeTable(),
    )
    p = SimpleNamespace(
        settings=settings, tables=tables, metrics=Metrics(), sites=None, clock=lambda: NOW
    )
    p.count_write_retry = lambda _exc: None
    return StoryWriter(cast(Any, p)), tables


def event(partition: int) -> Any:
    return SimpleNamespace(message=SimpleNamespace(partition=partition))


def outputs(lead: str) -> list[Output]:
    key = f"{SITE}:{lead}"
    return [
        Output("leads", key, {"site_uuid": SITE, "lead_id": lead, "op": "created", "event_id": f"e-{lead}"}),
        Output("calls_context", key, {"site_uuid": SITE, "lead_id": lead, "eligible": True, "event_id": f"c-{lead}", "trigger": "created"}),
        Output("callers", key, {"site_uuid": SITE, "lead_id": lead}),  # tells no story
    ]  # fmt: skip


async def test_a_lead_event_and_its_context_are_told_with_the_writers_batch() -> None:
    stories, tables = writer()
    partition = site_partition(SITE, stories._p.settings.partitions)
    writes = TableBatch()
    for lead in ("l1", "l2"):
        stories.sent(event(partition), outputs(lead), writes)
    stories.sent(event(partition), outputs("l1"), writes)  # sent again after a crash
    assert tables.lead_stories.sent == [] and tables.site_days.sent == []  # with the batch
    await writes.flush()
    told = {k: [e["title"] for e in v["entries"]] for k, v in tables.lead_stories.sent}
    assert told == {
        story_key(SITE, lead): ["New lead from a Real Geeks webhook", "Call context: callable"]
        for lead in ("l1", "l2")
    }
    # One record of the site's day for the batch, each new lead counted once.
    [(_day, figures)] = tables.site_days.sent
    assert figures["leads"] == 2


async def test_outputs_off_the_sites_partition_tell_nothing_there() -> None:
    stories, tables = writer()
    partition = site_partition(SITE, stories._p.settings.partitions)
    writes = TableBatch()
    stories.sent(event(partition + 1), outputs("l1"), writes)
    await writes.flush()
    assert tables.lead_stories.sent == [] and tables.site_days.sent == []


async def test_a_story_that_cannot_be_told_never_holds_the_writers_message() -> None:
    stories, _tables = writer()

    def broken(*_args: Any) -> None:
        raise KeyError("a record the story does not understand")

    stories.add = broken  # type: ignore[method-assign]
    writes = TableBatch()
    stories.sent(event(0), outputs("l1"), writes)  # would leave the message unfinished
    failed = stories._p.metrics.sync_errors.labels("StoryRecordFailed")._value.get()
    assert failed == 1 and writes.pending() == 0
