"""write_activities: realgeeks.activities.outbound -> POST to the Real Geeks API, once.

The outbox table records each activity_id's state before and after every attempt:
``posted`` is final (a replay or a restart posts nothing); a crash *during* a request
leaves ``in_flight``, whose outcome nobody knows, so it is dead-lettered for a person
rather than risking a duplicate activity on the lead (Real Geeks has no idempotency key).
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import aiohttp
import faust

from realgeeks_sync.agents.record_stories import StoryWriter
from realgeeks_sync.app.clients.realgeeks import RealGeeksClient
from realgeeks_sync.app.clients.retry import RetryPolicy, attempts_of, call_with_retries
from realgeeks_sync.app.core.errors import PoisonMessageError, RealGeeksSyncError
from realgeeks_sync.app.core.rate_limit import KeyedRateLimiter
from realgeeks_sync.app.streaming.pipeline import Pipeline
from realgeeks_sync.app.streaming.table_writes import write_tables

__all__ = ["OutcomeUnknownError", "register"]

log = logging.getLogger(__name__)


class OutcomeUnknownError(PoisonMessageError):
    """A POST was in flight when the writer stopped: posting again could duplicate it."""


def _parse(value: bytes | None) -> dict[str, Any]:
    try:
        record = json.loads(value or b"")
    except (ValueError, UnicodeDecodeError) as exc:
        raise PoisonMessageError("outbound activity is not JSON") from exc
    if not isinstance(record, dict):
        raise PoisonMessageError("outbound activity is not an object")
    for name in ("activity_id", "site_uuid", "lead_id"):
        if not isinstance(record.get(name), str) or not record[name]:
            raise PoisonMessageError(f"outbound activity lacks {name}")
    if not isinstance(record.get("activity"), dict):
        raise PoisonMessageError("outbound activity lacks the activity object")
    return record


def register(p: Pipeline, stories: StoryWriter | None = None) -> None:
    """Register the writer agent (``stories``: where leads' stories go)."""
    s = p.settings
    policy = RetryPolicy(
        base_delay=s.retry_base_s,
        max_delay=max(s.retry_max_delay_s, s.retry_base_s),
        max_attempts=s.retry_max_attempts,
        max_elapsed=max(s.retry_max_elapsed_s, 0.1),
    )
    limiter = KeyedRateLimiter(s.realgeeks_rate_per_s, max(1, int(s.realgeeks_rate_per_s)))
    outbox = p.tables.activity_outbox
    clients: dict[str, RealGeeksClient] = {}

    def on_request(operation: str, status: str, seconds: float) -> None:
        p.metrics.api_request_seconds.labels("realgeeks", operation, status).observe(seconds)

    async def client(site_uuid: str = "*") -> RealGeeksClient:
        # Each site's own login (sites file), else the environment's; one client per login.
        user, password = s.realgeeks_api_user, s.realgeeks_api_password.reveal()
        if p.sites is not None:
            config = p.sites.current.config(site_uuid)
            user, password = config.realgeeks_api_user, config.realgeeks_api_password.reveal()
        login = f"{user}\x1f{password}"
        if login not in clients:
            session = aiohttp.ClientSession()
            clients[login] = RealGeeksClient(
                session,
                s.realgeeks_api_url,
                user,
                password,
                timeout_s=s.realgeeks_timeout_s,
                on_request=on_request,
            )
        return clients[login]

    async def probe() -> None:
        # The cheap authenticated call behind /health: list users of any site we know.
        c = await client(s.health_probe_site or "*")
        await c.list_users(s.health_probe_site or "health-check")

    p.realgeeks_probe = probe

    async def write(event: faust.EventT) -> None:
        # An activity waiting on Real Geeks counts in the sync lag (/health, metrics).
        p.in_flight[event.message.tp] = event.message.timestamp or time.time()
        try:
            await write_one(event)
        finally:
            p.in_flight.pop(event.message.tp, None)

    async def write_one(event: faust.EventT) -> None:
        record = _parse(event.message.value)
        if stories is not None:
            stories.note(event.message, record)
        activity_id, site, lead = record["activity_id"], record["site_uuid"], record["lead_id"]
        state = outbox.get(activity_id) or {}
        if state.get("status") == "posted":
            p.metrics.duplicate_messages.labels("outbound").inc()
            return
        if state.get("status") == "in_flight":
            raise OutcomeUnknownError(
                f"activity {activity_id} was being posted when the writer stopped"
            )
        c = await client(site)
        attempts = int(state.get("attempts", 0))

        async def attempt() -> None:
            nonlocal attempts
            await limiter.acquire(site)
            attempts += 1
            # On the broker before the POST leaves: a writer killed during the request must
            # find "in_flight" on restart, never post a second time (app/streaming/table_writes.py).
            in_flight = {"status": "in_flight", "attempts": attempts, "at": time.time()}
            await write_tables([(outbox, activity_id, in_flight)], durable=True, what="outbox")
            try:
                await c.post_activities(site, lead, [record["activity"]])
            except RealGeeksSyncError as exc:
                # A definite answer (or no connection): nothing was written, safe to retry.
                failed = {
                    "status": "failed",
                    "attempts": attempts,
                    "error": str(exc)[:300],
                    "at": time.time(),
                }
                # Every outbox write takes the same path, so they reach the changelog in order.
                await write_tables([(outbox, activity_id, failed)], durable=False)
                raise

        try:
            await call_with_retries(attempt, policy)
        except RealGeeksSyncError as exc:
            p.metrics.activities_failed.labels(exc.error_type).inc()
            await p.deadletter(event, exc, attempts=attempts_of(exc), retriable=exc.retriable)
            return
        posted = {"status": "posted", "attempts": attempts, "at": time.time()}
        await write_tables([(outbox, activity_id, posted)], durable=False)
        p.metrics.activities_logged.labels(str(record["activity"].get("type"))).inc()
        log.info(
            "activity posted",
            extra={"site": site, "lead_id": lead, "activity_id": activity_id, "attempts": attempts},
        )

    @p.app.agent(
        p.topics.activities_outbound, name=s.topic("write_activities"), isolated_partitions=True
    )
    async def write_activities(stream: faust.StreamT) -> None:
        async for event in p.sequence.events(stream):
            try:
                await write(event)
            except RealGeeksSyncError as exc:
                await p.deadletter(event, exc, attempts=attempts_of(exc))
            except Exception as exc:
                log.exception("unexpected error in the writer")
                await p.deadletter(event, exc, error_type=f"Unexpected{type(exc).__name__}")
