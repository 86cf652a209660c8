"""The idempotent-processing rule without a broker: duplicates, batches, crashes mid-batch."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any, cast

import pytest
from faust.types import TP

from realgeeks_sync.agents.processing import (
    Output,
    as_datetime,
    loads_object,
    process_batch,
    process_idempotently,
)
from realgeeks_sync.agents.processing import log as processing_logger
from realgeeks_sync.app.core.errors import PoisonMessageError
from realgeeks_sync.app.core.metrics import Metrics
from realgeeks_sync.app.streaming.table_batch import TableBatch
from tests.unit.test_table_batch import FakeTable


async def test_a_duplicate_is_counted_and_logged_only_at_debug(
    caplog: pytest.LogCaptureFixture,
) -> None:
    metrics = Metrics()
    pipeline: Any = SimpleNamespace(
        metrics=metrics,
        settings=SimpleNamespace(dedup_retention_days=7),
        in_flight={},
        last_processed_at=0.0,
    )
    envelope = {"message_id": "m-1", "body": "{}", "action": "created"}
    event: Any = SimpleNamespace(
        message=SimpleNamespace(
            tp=TP("raw", 0), key=b"site", value=json.dumps(envelope).encode(), offset=7
        )
    )
    table = {"m-1": {"first_seen": datetime.now(UTC).isoformat(), "done": True}}

    async def decide(_envelope: dict[str, Any]) -> list[Any]:
        raise AssertionError("a duplicate is never decided again")

    # The module's own logger: a name that does not match would leave the root's level
    # (WARNING) in force and drop INFO lines whatever the code logs.
    caplog.set_level(logging.DEBUG, logger=processing_logger.name)
    for _ in range(100):  # a sender retrying a burst
        outcome = await process_idempotently(
            pipeline,
            event,
            source="realgeeks",
            table=table,
            decide=decide,
            key_of=lambda e, _k: e["message_id"],
        )
        assert outcome == "duplicate"
    ours = [r for r in caplog.records if r.name == processing_logger.name]
    assert ours, "duplicates are logged at DEBUG"
    assert [r for r in ours if r.levelno >= logging.INFO] == []
    counted = metrics.registry.get_sample_value(
        "realgeeks_duplicate_messages_total", {"source": "realgeeks"}
    )
    assert counted == 100


class FakePipeline:
    """What process_batch uses of the pipeline; write() records every call's records."""

    def __init__(self) -> None:
        self.metrics = Metrics()
        self.settings = SimpleNamespace(dedup_retention_days=7)
        self.in_flight: dict[Any, float] = {}
        self.last_processed_at = 0.0
        self.topics = SimpleNamespace(leads="leads", deadletter="deadletter")
        self.writes: list[list[tuple[str, str, Any]]] = []
        self.refuse: set[str] = set()  # keys whose records the broker refuses as too large
        self.cancel_writes = False

    async def write(self, records: list[tuple[str, str, Any]], *, what: str) -> None:
        if self.cancel_writes:
            raise asyncio.CancelledError  # the worker dies while waiting for the acks
        if any(key in self.refuse and t != "deadletter" for t, key, _v in records):
            raise PoisonMessageError(f"{what}: record too large for the broker")
        self.writes.append(list(records))

    def deadletter_record(self, event: Any, error: BaseException, **_kw: Any) -> Any:
        return ("deadletter", event.message.key.decode(), {"error": str(error)})


def raw_event(message_id: str, offset: int) -> Any:
    envelope = {"message_id": message_id, "body": "{}", "action": "created"}
    return SimpleNamespace(
        message=SimpleNamespace(
            tp=TP("raw", 0),
            key=message_id.encode(),
            value=json.dumps(envelope).encode(),
            offset=offset,
        )
    )


def deciding(decided: list[str], bad: frozenset[str] = frozenset()) -> Any:
    async def decide(envelope: dict[str, Any]) -> list[Output]:
        message_id = envelope["message_id"]
        decided.append(message_id)
        if message_id in bad:
            raise PoisonMessageError("cannot decide")
        return [Output("leads", message_id, {"event_id": f"e-{message_id}"})]

    return decide


async def run_batch(
    p: FakePipeline,
    events: list[Any],
    table: Any,
    decide: Any,
    tables: TableBatch | None = None,
    sent: Any = None,
) -> list[str]:
    """process_batch as the tests call it: raw envelopes keyed by their message id."""
    return await process_batch(
        cast(Any, p),
        events,
        source="realgeeks",
        table=table,
        decide=decide,
        key_of=lambda e, _k: e["message_id"],
        tables=tables,
        sent=sent,
    )


async def test_a_batch_is_decided_in_order_sent_together_then_marked_done() -> None:
    p, table, decided = FakePipeline(), {}, []
    events = [raw_event(f"m{i}", i) for i in range(4)]
    outcomes = await run_batch(p, events, table, deciding(decided, bad=frozenset({"m2"})))
    assert outcomes == ["processed", "processed", "deadlettered", "processed"]
    assert decided == ["m0", "m1", "m2", "m3"]
    # One write, the records in message order, the dead letter in its place.
    assert [[(t, k) for t, k, _v in w] for w in p.writes] == [
        [("leads", "m0"), ("leads", "m1"), ("deadletter", "m2"), ("leads", "m3")]
    ]
    assert all(table[f"m{i}"]["done"] for i in (0, 1, 3)) and "m2" not in table


async def test_a_crash_mid_batch_resends_identical_outputs_and_decides_nothing_again() -> None:
    p, table, decided = FakePipeline(), {}, []
    events = [raw_event(f"m{i}", i) for i in range(3)]
    p.cancel_writes = True
    with pytest.raises(asyncio.CancelledError):
        await run_batch(p, events, table, deciding(decided))
    assert decided == ["m0", "m1", "m2"]
    assert not any(v["done"] for v in table.values())  # stored, never marked done
    p.cancel_writes = False
    # The restarted worker reads the same batch again.
    outcomes = await run_batch(p, events, table, deciding(decided))
    assert outcomes == ["resent", "resent", "resent"]
    assert decided == ["m0", "m1", "m2"]
    assert p.writes == [[("leads", f"m{i}", {"event_id": f"e-m{i}"}) for i in range(3)]]
    assert all(v["done"] for v in table.values())


async def test_a_message_repeated_inside_a_batch_is_a_duplicate() -> None:
    p, table, decided = FakePipeline(), {}, []
    events = [raw_event("m0", 0), raw_event("m0", 1)]
    outcomes = await run_batch(p, events, table, deciding(decided))
    assert outcomes == ["processed", "duplicate"]
    assert decided == ["m0"] and len(p.writes[0]) == 1


async def test_outputs_the_broker_refuses_dead_letter_only_their_message() -> None:
    p, table, decided = FakePipeline(), {}, []
    p.refuse = {"m1"}
    events = [raw_event(f"m{i}", i) for i in range(3)]
    outcomes = await run_batch(p, events, table, deciding(decided))
    assert outcomes == ["processed", "deadlettered", "processed"]
    assert table["m0"]["done"] and table["m2"]["done"] and not table["m1"]["done"]
    sent = [(t, k) for w in p.writes for t, k, _v in w]
    assert sent == [("leads", "m0"), ("deadletter", "m1"), ("leads", "m2")]


async def test_with_a_table_batch_decisions_reach_the_changelog_before_outputs_done_after() -> None:
    # The order a crash relies on: a decision is on the changelog before any output is sent
    # (re-sent unchanged after a restart), and "done" only once every output was acknowledged.
    log: list[Any] = []

    class LoggingPipeline(FakePipeline):
        async def write(self, records: list[tuple[str, str, Any]], *, what: str) -> None:
            log.append(("outputs", [key for _t, key, _v in records]))
            await super().write(records, what=what)

    p, processed, snapshots, decided = LoggingPipeline(), FakeTable(), FakeTable(), []
    processed.producer.sent = snapshots.producer.sent = log  # one changelog log, in order
    writes = TableBatch()
    decide = deciding(decided)

    async def decide_and_write(envelope: dict[str, Any]) -> list[Output]:
        writes.view(snapshots)[f"lead-{envelope['message_id']}"] = {"seen": True}
        return await decide(envelope)

    events = [raw_event(f"m{i}", i) for i in range(2)]
    outcomes = await run_batch(p, events, writes.view(processed), decide_and_write, writes)
    assert outcomes == ["processed", "processed"]

    def entry(record: Any) -> Any:
        key, value = record
        return record if key == "outputs" else (key, value.get("done", value))

    assert [entry(r) for r in log] == [
        ("lead-m0", {"seen": True}),
        ("lead-m1", {"seen": True}),
        ("m0", False),
        ("m1", False),
        ("outputs", ["m0", "m1"]),
        ("m0", True),
        ("m1", True),
    ]
    assert writes.pending() == 0


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "is not JSON"),
        (b"{", "is not JSON"),
        (b"\xff\xfe{}", "is not JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "is not JSON"),  # deeper than json goes
        (b"[1]", "is not a JSON object"),
        ("null", "is not a JSON object"),
    ],
)
def test_a_record_that_is_no_json_object_is_poison_with_its_reason(
    raw: bytes | str, reason: str
) -> None:
    with pytest.raises(PoisonMessageError) as caught:
        loads_object(raw, "ElevenLabs body")
    assert str(caught.value) == f"ElevenLabs body {reason}"
    assert loads_object('{"a": [1]}', "body") == {"a": [1]}
    with pytest.raises(PoisonMessageError, match=r"^call record is not an object$"):
        loads_object(b"[]", "call record", shape="an object")


def test_a_time_without_a_zone_is_utc_and_no_time_is_now() -> None:
    assert as_datetime("2026-11-27T10:00:00Z") == datetime(2026, 11, 27, 10, tzinfo=UTC)
    assert as_datetime("2026-11-27T10:00:00") == datetime(2026, 11, 27, 10, tzinfo=UTC)
    before = datetime.now(UTC)
    assert before <= as_datetime("not a time") <= datetime.now(UTC)


async def test_sent_hears_of_each_message_whose_outputs_were_acknowledged_only() -> None:
    # normalize_leads writes its lead events' story entries from this hook: an entry for a
    # lead event that never reached the broker would tell a story that did not happen.
    p, table, decided = FakePipeline(), {}, []
    heard: list[tuple[int, list[str]]] = []

    def sent(event: Any, outputs: Any) -> None:
        heard.append((event.message.offset, [o.key for o in outputs]))

    p.refuse = {"m1"}
    events = [raw_event("m0", 0), raw_event("m1", 1), raw_event("m0", 2), raw_event("m3", 3)]
    decide = deciding(decided, bad=frozenset({"m3"}))
    p.cancel_writes = True
    with pytest.raises(asyncio.CancelledError):
        await run_batch(p, events, table, decide, sent=sent)
    assert heard == []  # decided and stored, but nothing acknowledged
    p.cancel_writes = False
    outcomes = await run_batch(p, events, table, decide, sent=sent)
    assert outcomes == ["resent", "deadlettered", "duplicate", "deadlettered"]
    assert heard == [(0, ["m0"])]  # sent again counts; refused, repeated, undecidable do not
