"""Idempotent processing of consumed messages: the rule every agent follows.

1. Already done within the retention window: count a duplicate, emit nothing.
2. Decided before a crash but not finished: re-send the stored outputs, identical.
3. Otherwise decide (pure logic), store the decision, send the outputs, wait for every
   acknowledgement, and only then mark the message done.
Any exception dead-letters the message with its reason; the stream goes on. A broker
refusing the outputs is not the message's fault: the write is retried, never dead-lettered.
Only when this returns may the caller mark the message finished (app/streaming/offset_guard.py).

A batch (consecutive messages of one partition, app/streaming/partition_sequence.py) keeps
each step in order for every message: all are decided in order and their decisions stored,
then all their outputs are sent and every acknowledgement awaited together, then all are
marked done. A crash anywhere in between leaves each message decided-and-stored (re-sent
unchanged) or not decided at all (decided afresh), exactly as one at a time; what the
batch saves is a wait for the broker per message (ops/bench_e2e_latency.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import faust

from realgeeks_sync.app.core import json_codec
from realgeeks_sync.app.core.errors import PoisonMessageError, RealGeeksSyncError
from realgeeks_sync.app.domain.envelopes import ELEVENLABS_KEPT_TYPES, KNOWN_REALGEEKS_ACTIONS
from realgeeks_sync.app.streaming.pipeline import Pipeline
from realgeeks_sync.app.streaming.table_batch import TableBatch

__all__ = [
    "Output",
    "as_datetime",
    "decode_envelope",
    "loads_object",
    "process_batch",
    "process_idempotently",
    "utc_now_iso",
]

log = logging.getLogger(__name__)

# Label values are bounded: senders choose actions, Prometheus pays for every new one.
_KNOWN = KNOWN_REALGEEKS_ACTIONS | ELEVENLABS_KEPT_TYPES


@dataclass(frozen=True)
class Output:
    """One record to send: topic attribute name on Pipeline.topics, key and JSON value."""

    topic: str
    key: str
    value: dict[str, Any]

    def to_json(self) -> list[Any]:
        return [self.topic, self.key, self.value]

    @classmethod
    def from_json(cls, raw: list[Any]) -> Output:
        return cls(topic=raw[0], key=raw[1], value=raw[2])


def utc_now_iso(now: float | None = None) -> str:
    """Wall-clock time as ISO 8601 UTC with a Z."""
    ts = time.time() if now is None else now
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def as_datetime(value: str) -> datetime:
    """An ISO 8601 time (UTC when it names no zone); now when it is not one."""
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return datetime.now(UTC)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def loads_object(
    raw: bytes | str | None, what: str, *, shape: str = "a JSON object"
) -> dict[str, Any]:
    """Decode a record or body that must be a JSON object.

    Raises:
        PoisonMessageError: "<what> is not JSON" (not JSON, not UTF-8, nested deeper than
            the decoder goes) or "<what> is not <shape>" (JSON, but no object).
    """
    try:
        value = json_codec.loads(raw or b"")
    except (ValueError, TypeError, RecursionError) as exc:
        raise PoisonMessageError(f"{what} is not JSON") from exc
    if not isinstance(value, dict):
        raise PoisonMessageError(f"{what} is not {shape}")
    return value


def decode_envelope(value: bytes | None) -> dict[str, Any]:
    """Parse a raw-topic envelope.

    Raises:
        PoisonMessageError: not JSON, not an object, or missing message_id/body.
    """
    if not value:
        raise PoisonMessageError("empty record")
    envelope = loads_object(value, "envelope")
    if not isinstance(envelope.get("message_id"), str) or not isinstance(envelope.get("body"), str):
        raise PoisonMessageError("envelope lacks message_id or body")
    return envelope


def _received_epoch(envelope: dict[str, Any]) -> float | None:
    raw = envelope.get("received_at")
    if not isinstance(raw, str):
        return None
    try:
        return datetime.fromisoformat(raw).timestamp()
    except ValueError:
        return None


# What a sender can send ends in these, dead-lettered with its reason.
_MESSAGE_FAULTS = (
    RealGeeksSyncError,
    ValueError,
    TypeError,
    KeyError,
    AttributeError,
    IndexError,
    RecursionError,
    OverflowError,
)

Decide = Callable[[dict[str, Any]], Awaitable[list[Output]]]
KeyOf = Callable[[dict[str, Any], str], str]
Decode = Callable[[bytes | None], dict[str, Any]]
Sent = Callable[[faust.EventT, Sequence["Output"]], None]


@dataclass
class _Step:
    """One message of a batch: what was decided for it and what it sends."""

    event: faust.EventT
    outcome: str  # processed | resent | duplicate | deadlettered
    envelope: dict[str, Any] | None = None
    msg_key: str | None = None
    first_seen: str | None = None
    outputs: list[Output] = field(default_factory=list)
    deadletter: tuple[Any, str, dict[str, Any]] | None = None

    def records(self, p: Pipeline) -> list[tuple[Any, str, dict[str, Any]]]:
        if self.deadletter is not None:
            return [self.deadletter]
        return [(getattr(p.topics, o.topic), o.key, o.value) for o in self.outputs]


async def process_idempotently(
    p: Pipeline,
    event: faust.EventT,
    *,
    source: str,
    table: Any,
    decide: Decide,
    key_of: KeyOf,
    decode: Decode = decode_envelope,
) -> str:
    """Run one message through the idempotency protocol; returns what happened.

    ``decode`` reads the record (a raw-topic envelope by default; other inputs give a
    dict with at least a ``message_id``).
    Never raises for what a sender can send: failures go to the dead-letter topic.
    """
    outcomes = await process_batch(
        p, [event], source=source, table=table, decide=decide, key_of=key_of, decode=decode
    )
    return outcomes[0]


async def process_batch(
    p: Pipeline,
    events: Sequence[faust.EventT],
    *,
    source: str,
    table: Any,
    decide: Decide,
    key_of: KeyOf,
    tables: TableBatch | None = None,
    decode: Decode = decode_envelope,
    sent: Sent | None = None,
) -> list[str]:
    """Run consecutive messages of one partition through the protocol together.

    ``tables``: the batch holding the writes of ``table`` and of what ``decide`` writes
    (app/streaming/table_batch.py); flushed once the decisions are stored, before any
    output is sent, and again once the messages are marked done. ``sent``: called for
    each message whose outputs were acknowledged (decided now or sent again), just before
    it is marked done; what it writes to ``tables`` is flushed with that mark.

    Returns what happened to each, in order. Never raises for what a sender can send.
    """
    if not events:
        return []
    started = time.perf_counter()
    tp = events[0].message.tp
    try:
        steps: list[_Step] = []
        decided: set[str] = set()  # message keys decided in this batch
        for event in events:
            step = await _decide_step(p, event, source, table, decide, key_of, decided, decode)
            if step.msg_key is not None and step.outcome in ("processed", "resent"):
                decided.add(step.msg_key)
            steps.append(step)
            if len(events) > 1:
                # Deciding never waits: let the web server and the other partitions run
                # between messages, or a batch of 64 would hold the event loop ~100 ms.
                await asyncio.sleep(0)
        if tables is not None:
            await tables.flush(f"{source} decisions")
        await _send(p, steps, source)
        for step in steps:
            if sent is not None and step.outcome in ("processed", "resent"):
                sent(step.event, step.outputs)
            _mark_done(p, step, source, table)
        if tables is not None:
            await tables.flush(f"{source} done")
        return [step.outcome for step in steps]
    finally:
        p.in_flight.pop(tp, None)
        p.last_processed_at = time.time()
        elapsed = time.perf_counter() - started
        # Each message of a batch took as long as the batch: it was done when all were.
        seconds = p.metrics.processing_seconds.labels(source)
        for _ in events:
            seconds.observe(elapsed)


async def _decide_step(
    p: Pipeline,
    event: faust.EventT,
    source: str,
    table: Any,
    decide: Decide,
    key_of: KeyOf,
    decided: set[str],
    decode: Decode,
) -> _Step:
    """Steps 1-3 up to the stored decision, for one message."""
    try:
        envelope = decode(event.message.value)
        received = _received_epoch(envelope)
        if received is not None:
            p.in_flight.setdefault(event.message.tp, received)  # the batch's oldest
        record_key = (event.message.key or b"").decode("utf-8", "replace")
        msg_key = key_of(envelope, record_key)
        state = table.get(msg_key)
        now = datetime.now(UTC)
        retention = timedelta(days=p.settings.dedup_retention_days)
        stored = isinstance(state, dict) and _fresh(state, now, retention)
        if msg_key in decided or (stored and state.get("done")):
            p.metrics.duplicate_messages.labels(source).inc()
            # DEBUG: a sender retrying a burst would flood the log; the metric counts them.
            log.debug("duplicate dropped", extra={"message_id": envelope["message_id"]})
            return _Step(event, "duplicate", envelope)
        if stored:
            outputs = [Output.from_json(o) for o in state.get("outputs", [])]
            return _Step(event, "resent", envelope, msg_key, state["first_seen"], outputs)
        outputs = await decide(envelope)
        first_seen = utc_now_iso()
        table[msg_key] = {
            "first_seen": first_seen,
            "done": False,
            "outputs": [o.to_json() for o in outputs],
        }
        return _Step(event, "processed", envelope, msg_key, first_seen, outputs)
    except _MESSAGE_FAULTS as exc:
        return _Step(event, "deadlettered", deadletter=p.deadletter_record(event, exc))
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        log.exception("unexpected error; dead-lettering", extra={"source": source})
        record = p.deadletter_record(event, exc, error_type=f"Unexpected{type(exc).__name__}")
        return _Step(event, "deadlettered", deadletter=record)


async def _send(p: Pipeline, steps: list[_Step], source: str) -> None:
    """Send every step's records and await every acknowledgement together.

    A record no broker will take (too large) or that cannot be encoded is its message's
    fault: the batch is then sent message by message, and that message is dead-lettered.
    """
    records = [record for step in steps for record in step.records(p)]
    if not records:
        return
    try:
        await p.write(records, what=f"{source} outputs")
        return
    except _MESSAGE_FAULTS as exc:
        if len(steps) > 1:
            for step in steps:
                await _send(p, [step], source)
            return
        step = steps[0]
        if step.deadletter is not None:
            raise  # the dead letter itself cannot be written: as before, the agent fails
        step.outcome = "deadlettered"
        step.deadletter = p.deadletter_record(step.event, exc)
    await p.write(step.records(p), what="dead letter")


def _mark_done(p: Pipeline, step: _Step, source: str, table: Any) -> None:
    """Step 3's end for one message whose records were acknowledged."""
    if step.outcome == "deadlettered":
        p.metrics.webhooks_failed.labels(source).inc()
        return
    if step.outcome == "duplicate":
        return
    assert step.envelope is not None and step.msg_key is not None
    table[step.msg_key] = {"first_seen": step.first_seen, "done": True}
    action = str(step.envelope.get("action", ""))
    p.metrics.webhooks_processed.labels(source, action if action in _KNOWN else "other").inc()
    if log.isEnabledFor(logging.DEBUG):  # once per message: skip building the record
        log.debug(
            "message processed",
            extra={
                "message_id": step.envelope["message_id"],
                "partition": step.event.message.tp.partition,
                "offset": step.event.message.offset,
                "outcome": step.outcome,
            },
        )


def _fresh(state: dict[str, Any], now: datetime, retention: timedelta) -> bool:
    """An explicit age check on top of RocksDB's ttl, which only drops entries at compaction."""
    try:
        first = datetime.fromisoformat(str(state.get("first_seen")))
    except ValueError:
        return False
    return now - first <= retention
