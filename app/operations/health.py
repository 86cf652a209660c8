"""Health: real checks (Kafka, the Real Geeks API, webhook flow, lag), cached and cheap."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from realgeeks_sync.app.streaming import topics as names
from realgeeks_sync.app.streaming.kafka_probe import KafkaProbe
from realgeeks_sync.app.streaming.pipeline import Pipeline

__all__ = ["health_report", "refresh_lag_metrics", "sync_lag_seconds"]

_API_TTL_S = 60.0
_cache: dict[tuple[int, str], tuple[float, dict[str, Any]]] = {}
_kafka_probes: dict[int, KafkaProbe] = {}


def _consumer_lag(p: Pipeline) -> dict[str, int]:
    """Messages behind the end, per raw topic, from the consumer's own positions."""
    lag: dict[str, int] = {}
    try:
        consumer = p.app.consumer
        read = getattr(consumer, "_read_offset", {})
        for tp in consumer.assignment():
            high = consumer.highwater(tp)
            if high is None:
                continue
            position = read.get(tp)
            behind = max(0, int(high) - (int(position) + 1 if position is not None else 0))
            lag[tp.topic] = lag.get(tp.topic, 0) + behind
    except Exception:  # noqa: BLE001 - no consumer yet (starting, rebalancing)
        return {}
    return lag


def _assigned(p: Pipeline) -> int:
    """How many raw Real Geeks partitions this worker owns (0 while joining the group)."""
    try:
        raw = p.settings.topic(names.RAW_REALGEEKS)
        return sum(1 for tp in p.app.consumer.assignment() if tp.topic == raw)
    except Exception:  # noqa: BLE001 - no consumer yet
        return 0


def sync_lag_seconds(p: Pipeline, now: float | None = None) -> float:
    """Age of the oldest webhook not yet fully synced; 0 when caught up.

    In flight: a raw webhook an agent is working on, or an activity the writer is still
    trying to post to Real Geeks (a Real Geeks outage stalls the sync).
    """
    now = time.time() if now is None else now
    oldest = min(p.in_flight.values(), default=None)
    lag = now - oldest if oldest is not None else 0.0
    raw_topics = {
        p.settings.topic(names.RAW_REALGEEKS),
        p.settings.topic(names.RAW_ELEVENLABS),
    }
    behind = sum(v for t, v in _consumer_lag(p).items() if t in raw_topics)
    if behind and oldest is None:
        # Messages wait but nothing is being worked on: stalled since the last one.
        lag = max(lag, now - p.last_processed_at)
    return max(0.0, lag)


def refresh_lag_metrics(p: Pipeline) -> None:
    """Update the lag gauges right before a scrape."""
    p.metrics.sync_lag.set(sync_lag_seconds(p))
    for topic, behind in _consumer_lag(p).items():
        p.metrics.consumer_lag.labels(topic).set(behind)


async def _cached(p: Pipeline, name: str, ttl: float, check: Any) -> dict[str, Any]:
    key = (id(p), name)
    hit = _cache.get(key)
    if hit and time.monotonic() - hit[0] < ttl:
        return hit[1]
    result = await check()
    _cache[key] = (time.monotonic(), result)
    return result


async def _check_kafka(p: Pipeline) -> dict[str, Any]:
    probe = _kafka_probes.get(id(p))
    if probe is None:
        # One per pipeline, kept: it holds its AdminClient and caches its answer 5 s.
        probe = _kafka_probes[id(p)] = KafkaProbe.for_settings(p.settings)
    try:
        return await probe.status()
    except Exception as exc:  # noqa: BLE001 - any failure means unreachable
        return {"status": "down", "error": type(exc).__name__}


async def _check_realgeeks(p: Pipeline) -> dict[str, Any]:
    checker = p.realgeeks_probe
    if checker is None or not p.settings.realgeeks_api_user:
        return {"status": "not_configured"}
    try:
        await checker()
        return {"status": "ok"}
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        return {"status": "down", "error": type(exc).__name__}


async def health_report(p: Pipeline, now: float | None = None) -> dict[str, Any]:
    """The /health document: status healthy | degraded | unhealthy, with reasons."""
    now = time.time() if now is None else now
    kafka = await _check_kafka(p)
    realgeeks = await _cached(p, "realgeeks", _API_TTL_S, lambda: _check_realgeeks(p))
    lag = sync_lag_seconds(p, now)
    last = max((s.value for m in p.metrics.last_webhook.collect() for s in m.samples), default=0.0)
    reasons: list[str] = []
    status = "healthy"
    if kafka.get("status") != "ok":
        status = "unhealthy"
        reasons.append("Kafka is unreachable: webhooks are answered 503")
    if lag > p.settings.health_lag_bound_s:
        status = "degraded" if status == "healthy" else status
        reasons.append(
            f"oldest unprocessed webhook is {lag:.0f}s old "
            f"(bound {p.settings.health_lag_bound_s:.0f}s)"
        )
    if realgeeks.get("status") == "down":
        status = "degraded" if status == "healthy" else status
        reasons.append("Real Geeks API unreachable: activity write-back is delayed")
    return {
        "status": status,
        "reasons": reasons,
        "checks": {
            "kafka": kafka,
            "realgeeks_api": realgeeks,
            "recent_webhooks": {
                "last_received_at": datetime.fromtimestamp(last, UTC).isoformat() if last else None,
                "seconds_since_last": round(now - last, 1) if last else None,
            },
            "sync_lag_seconds": round(lag, 3),
            "consumer_lag_messages": _consumer_lag(p),
            "assigned_partitions": _assigned(p),
        },
        "timestamp": datetime.fromtimestamp(now, UTC).isoformat().replace("+00:00", "Z"),
    }
