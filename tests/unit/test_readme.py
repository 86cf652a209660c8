"""The README stays true: its event fields match app/domain/events.py, its commands exist, its
list of site-partitioned topics is the catalogue's."""

from __future__ import annotations

import re

from ops.testkit.support import ROOT
from realgeeks_sync.app.domain.dialing.optouts import optout_event
from realgeeks_sync.app.domain.events import (
    ACTIVITY_V1_FIELDS,
    CALL_CONTEXT_V1_FIELDS,
    CALL_OUTCOME_V1_FIELDS,
    CALLER_V1_FIELDS,
    DEADLETTER_FIELDS,
    LEAD_UPDATE_V1_FIELDS,
    LEAD_V1_FIELDS,
    OPTOUT_V1_FIELDS,
    OUTBOUND_ACTIVITY_V1_FIELDS,
)
from realgeeks_sync.app.streaming.topics import SITE_PARTITIONED

README = (ROOT / "README.md").read_text()


def _bullet(schema: str) -> str:
    match = re.search(rf"- \*\*`{re.escape(schema)}`\*\*: (.*?)(?=\n- \*\*|\n\n)", README, re.S)
    assert match, f"README has no bullet for {schema}"
    return match.group(1)


def test_event_fields_are_documented() -> None:
    for schema, fields in (
        ("lead.v1", LEAD_V1_FIELDS),
        ("activity.v1", ACTIVITY_V1_FIELDS),
        ("call_context.v1", CALL_CONTEXT_V1_FIELDS),
        ("outbound_activity.v1", OUTBOUND_ACTIVITY_V1_FIELDS),
        ("optout.v1", OPTOUT_V1_FIELDS),
        ("lead_update.v1", LEAD_UPDATE_V1_FIELDS),
        ("call_outcome.v1", CALL_OUTCOME_V1_FIELDS),
        ("caller.v1", CALLER_V1_FIELDS),
    ):
        text = _bullet(schema)
        missing = [f for f in fields if not re.search(rf"\b{f}\b", text)]
        assert not missing, f"{schema}: README misses {missing}"
    deadletter_row = next(
        line for line in README.splitlines() if line.startswith("| sync.deadletter")
    )
    assert all(f in deadletter_row for f in DEADLETTER_FIELDS)


def test_front_door_commands_exist() -> None:
    assert "ops/run" in README and "ops/test" in README
    for script in ("ops/run", "ops/test", "ops/kafka", "ops/check", ".ci/run"):
        path = ROOT / script
        assert path.exists() and path.stat().st_mode & 0o111, script


def test_bench_installs_wrk() -> None:
    assert "`ops/wrk install`" in README
    wrk = ROOT / "ops" / "wrk"
    assert wrk.exists() and wrk.stat().st_mode & 0o111
    assert "\nops/wrk install" in (ROOT / "ops" / "bench").read_text()


def test_site_partitioned_topics_are_the_catalogues() -> None:
    paragraph = README.split("**Partitioning.** Records of the per-lead topics (", 1)[1]
    listed = paragraph.split(") are keyed", 1)[0]
    assert set(re.findall(r"[a-z]+(?:[.-][a-z]+)+", listed)) == set(SITE_PARTITIONED)


def test_events_keep_the_field_order_of_events_py() -> None:
    # Which fields an event has is tests/unit/test_contracts.py's (the schemas, every event
    # the code writes); here only their order: events.py's, which the schemas follow.
    from realgeeks_sync.app.domain.callers import caller_record
    from realgeeks_sync.app.domain.events import call_outcome_event, lead_update_record

    optout = optout_event(
        site_uuid="s", subject="phone", value="+18088172382", source="operator", at="t"
    )
    update = lead_update_record(
        update_id="u", site_uuid="s", lead_id="l", conversation_id="c", fields={}, tags=[]
    )
    outcome = call_outcome_event(
        site_uuid="s",
        lead_id="l",
        conversation_id="c",
        direction=None,
        outcome="completed",
        opted_out=False,
        kinds=[],
        occurred_at="t",
    )
    caller = caller_record({"site_uuid": "s", "lead_id": "l"}, [])
    assert tuple(optout) == OPTOUT_V1_FIELDS
    assert tuple(update) == LEAD_UPDATE_V1_FIELDS
    assert tuple(outcome) == CALL_OUTCOME_V1_FIELDS
    assert tuple(caller) == CALLER_V1_FIELDS
