"""Idempotent processing of one consumed message: the rule every agent follows.

1. Already done within the retention window: count a duplicate, emit nothing.
2. Decided before a crash but not finished: re-send the stored outputs, identical.
3. Otherwise decide (pure logic), store the decision, send the outputs, wait for every
   acknowledgement, and only then mark the message done.
Any exception dead-letters the message with its reason; the stream goes on. A broker
refusing the outputs is not the message's fault: the write is retried, never dead-lettered.
Only when this returns may the caller mark the message finished (app/streaming/offset_guard.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import faust

from realgeeks_sync.app.core.errors import PoisonMessageError, RealGeeksSyncError
from realgeeks_sync.app.domain.envelopes import ELEVENLABS_KEPT_TYPES, KNOWN_REALGEEKS_ACTIONS
from realgeeks_sync.app.streaming.pipeline import Pipeline

__all__ = ["Output", "decode_envelope", "process_idempotently", "utc_now_iso"]

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


def decode_envelope(value: bytes | None) -> dict[str, Any]:
    """Parse a raw-topic envelope.

    Raises:
        PoisonMessageError: not JSON, not an object, or missing message_id/body.
    """
    if not value:
        raise PoisonMessageError("empty record")
    try:
        envelope = json.loads(value)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise PoisonMessageError("envelope is not JSON") from exc
    if not isinstance(envelope, dict):
        raise PoisonMessageError("envelope is not a JSON object")
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


async def process_idempotently(
    p: Pipeline,
    event: faust.EventT,
    *,
    source: str,
    table: Any,
    decide: Callable[[dict[str, Any]], Awaitable[list[Output]]],
    key_of: Callable[[dict[str, Any], str], str],
    decode: Callable[[bytes | None], dict[str, Any]] = decode_envelope,
) -> str:
    """Run one message through the idempotency protocol; returns what happened.

    ``decode`` reads the record (a raw-topic envelope by default; other inputs give a
    dict with at least a ``message_id``).
    Never raises for what a sender can send: failures go to the dead-letter topic.
    """
    started = time.perf_counter()
    tp = event.message.tp
    try:
        envelope = decode(event.message.value)
        received = _received_epoch(envelope)
        if received is not None:
            p.in_flight[tp] = received
        record_key = (event.message.key or b"").decode("utf-8", "replace")
        msg_key = key_of(envelope, record_key)
        state = table.get(msg_key)
        now = datetime.now(UTC)
        retention = timedelta(days=p.settings.dedup_retention_days)
        if isinstance(state, dict) and _fresh(state, now, retention):
            if state.get("done"):
                p.metrics.duplicate_messages.labels(source).inc()
                # DEBUG: a sender retrying a burst would flood the log; the metric counts them.
                log.debug("duplicate dropped", extra={"message_id": envelope["message_id"]})
                return "duplicate"
            outputs = [Output.from_json(o) for o in state.get("outputs", [])]
            first_seen = state["first_seen"]
            outcome = "resent"
        else:
            outputs = await decide(envelope)
            first_seen = utc_now_iso()
            table[msg_key] = {
                "first_seen": first_seen,
                "done": False,
                "outputs": [o.to_json() for o in outputs],
            }
            outcome = "processed"
        await p.write(
            [(getattr(p.topics, o.topic), o.key, o.value) for o in outputs],
            what=f"{source} outputs",
        )
        table[msg_key] = {"first_seen": first_seen, "done": True}
        action = str(envelope.get("action", ""))
        p.metrics.webhooks_processed.labels(source, action if action in _KNOWN else "other").inc()
        if log.isEnabledFor(logging.DEBUG):  # once per message: skip building the record
            log.debug(
                "message processed",
                extra={
                    "message_id": envelope["message_id"],
                    "partition": tp.partition,
                    "offset": event.message.offset,
                    "outcome": outcome,
                },
            )
        return outcome
    except (
        RealGeeksSyncError,
        ValueError,
        TypeError,
        KeyError,
        AttributeError,
        IndexError,
        RecursionError,
        OverflowError,
    ) as exc:
        # What a sender can send ends here, dead-lettered with its reason.
        await p.deadletter(event, exc)
        p.metrics.webhooks_failed.labels(source).inc()
        return "deadlettered"
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        log.exception("unexpected error; dead-lettering", extra={"source": source})
        await p.deadletter(event, exc, error_type=f"Unexpected{type(exc).__name__}")
        p.metrics.webhooks_failed.labels(source).inc()
        return "deadlettered"
    finally:
        p.in_flight.pop(tp, None)
        p.last_processed_at = time.time()
        p.metrics.processing_seconds.labels(source).observe(time.perf_counter() - started)


def _fresh(state: dict[str, Any], now: datetime, retention: timedelta) -> bool:
    """An explicit age check on top of RocksDB's ttl, which only drops entries at compaction."""
    try:
        first = datetime.fromisoformat(str(state.get("first_seen")))
    except ValueError:
        return False
    return now - first <= retention
