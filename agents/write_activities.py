"""write_activities: realgeeks.activities.outbound (POST) and realgeeks.leads.outbound
(PATCH) -> the Real Geeks API, once each.

The outbox table records each write's state (by ``activity_id``, or a lead update's
``update_id``: one per conversation) before and after every attempt: ``posted`` is final
(a replay or a restart writes nothing); a crash *during* a request leaves ``in_flight``,
whose outcome nobody knows, so it is dead-lettered for a person rather than risking a
duplicate on the lead (Real Geeks has no idempotency key). A 500 or a refused connection
is a definite answer (nothing was written): retried with backoff, same body. Those rules
are the outbox's state machine, app/domain/outbox.py; this agent stores its records and
makes the requests.

A lead update's body is fixed at its first attempt and kept in the outbox: its fields,
and its tags joined to the tags the lead is known to have (Real Geeks replaces a list
field on PATCH, so sending only ours would drop the others).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import aiohttp
import faust

from realgeeks_sync.agents.processing import loads_object
from realgeeks_sync.agents.record_stories import StoryWriter
from realgeeks_sync.app.clients.realgeeks import RealGeeksClient
from realgeeks_sync.app.clients.retry import RetryPolicy, attempts_of, call_with_retries
from realgeeks_sync.app.core.errors import ApiError, PoisonMessageError, RealGeeksSyncError
from realgeeks_sync.app.core.rate_limit import KeyedRateLimiter
from realgeeks_sync.app.domain import outbox as outbox_machine
from realgeeks_sync.app.streaming.pipeline import Pipeline
from realgeeks_sync.app.streaming.table_writes import write_tables
from realgeeks_sync.tables.identity import IdentityIndex

__all__ = ["OutcomeUnknownError", "lead_patch", "register"]

log = logging.getLogger(__name__)


class OutcomeUnknownError(PoisonMessageError):
    """A POST was in flight when the writer stopped, or got no answer after it may have
    arrived: posting again could duplicate it."""


def _parse(value: bytes | None, id_field: str, body_field: str) -> dict[str, Any]:
    what = "outbound activity" if id_field == "activity_id" else "lead update"
    record = loads_object(value, what, shape="an object")
    for name in (id_field, "site_uuid", "lead_id"):
        if not isinstance(record.get(name), str) or not record[name]:
            raise PoisonMessageError(f"{what} lacks {name}")
    if not isinstance(record.get(body_field), dict):
        raise PoisonMessageError(f"{what} lacks the {body_field} object")
    return record


def _known_tags(fields: Any) -> list[str]:
    """The tags a lead's Real Geeks fields hold (a list, or comma-separated text)."""
    raw = fields.get("tags") if isinstance(fields, Mapping) else None
    if isinstance(raw, str):
        raw = raw.split(",")
    if not isinstance(raw, list):
        return []
    return [t.strip() for t in raw if isinstance(t, str) and t.strip()]


def lead_patch(fields: dict[str, Any], tags: list[str], known_tags: list[str]) -> dict[str, Any]:
    """The PATCH body of a lead update: its fields, and every tag (known ones kept first)."""
    body = {k: v for k, v in fields.items() if k != "tags"}
    if tags:
        body["tags"] = list(dict.fromkeys([*known_tags, *tags]))
    return body


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

    identity = IdentityIndex(p.tables.identity_index, p.tables.lead_snapshots)

    async def write(event: faust.EventT, one: Callable[[faust.EventT], Awaitable[None]]) -> None:
        # A write waiting on Real Geeks counts in the sync lag (/health, metrics).
        p.in_flight[event.message.tp] = event.message.timestamp or time.time()
        try:
            await one(event)
        finally:
            p.in_flight.pop(event.message.tp, None)

    async def write_activity(event: faust.EventT) -> None:
        record = _parse(event.message.value, "activity_id", "activity")
        if stories is not None:
            await stories.note(event.message, record)
        site, lead = record["site_uuid"], record["lead_id"]

        async def post(c: RealGeeksClient, _body: dict[str, Any]) -> None:
            await c.post_activities(site, lead, [record["activity"]])

        if await write_once(event, record["activity_id"], site, lead, post, lambda: {}):
            p.metrics.activities_logged.labels(str(record["activity"].get("type"))).inc()

    async def write_lead_update(event: faust.EventT) -> None:
        record = _parse(event.message.value, "update_id", "fields")
        if stories is not None:
            await stories.note(event.message, record)
        site, lead = record["site_uuid"], record["lead_id"]
        tags = [t for t in record.get("tags") or [] if isinstance(t, str)]

        def first_body() -> dict[str, Any]:
            snapshot = identity.lead(site, lead)
            return lead_patch(record["fields"], tags, _known_tags(snapshot and snapshot.fields))

        async def patch(c: RealGeeksClient, body: dict[str, Any]) -> None:
            await c.update_lead(site, lead, body)

        if await write_once(event, record["update_id"], site, lead, patch, first_body):
            p.metrics.lead_updates_written.inc()

    async def write_once(
        event: faust.EventT,
        write_id: str,
        site: str,
        lead: str,
        send: Callable[[RealGeeksClient, dict[str, Any]], Awaitable[None]],
        first_body: Callable[[], dict[str, Any]],
    ) -> bool:
        """Send one write at most once; True when it was sent now.

        The outbox's rules are app/domain/outbox.py's; this applies its transitions to the
        table, in their order, and makes the requests.
        """
        record = outbox_machine.read_record(outbox.get(write_id))
        decision = outbox_machine.deliver(record)
        if isinstance(decision, outbox_machine.Skip):
            p.metrics.duplicate_messages.labels("outbound").inc()
            return False
        if isinstance(decision, outbox_machine.OutcomeUnknown):
            raise OutcomeUnknownError(f"write {write_id} was being sent when the writer stopped")
        c = await client(site)
        # Fixed before the first attempt, reused by every retry and after a restart.
        body = decision.body if decision.body is not None else first_body()

        async def attempt() -> None:
            nonlocal record
            await limiter.acquire(site)
            record = outbox_machine.attempt(record, body, time.time())
            # On the broker before the request leaves: a writer killed during the request
            # must find "in_flight" on restart, never send a second time
            # (app/streaming/table_writes.py).
            await write_tables([(outbox, write_id, record.to_value())], durable=True, what="outbox")
            try:
                await send(c, body)
            except RealGeeksSyncError as exc:
                if isinstance(exc, ApiError) and exc.may_have_arrived:
                    # Real Geeks may have written it (activity POSTs are not idempotent): the
                    # record stays in_flight, as after a writer killed during the request.
                    outbox_machine.lose(record)
                    raise OutcomeUnknownError(
                        f"write {write_id}: no answer after the request may have arrived"
                    ) from exc
                # A definite answer (or no connection): nothing was written, safe to retry
                # (call_with_retries decides when, and gives up on what is not retriable).
                record, _ = outbox_machine.refuse(record, str(exc), exc.retriable, time.time())
                # Every outbox write takes the same path, so they reach the changelog in order.
                await write_tables([(outbox, write_id, record.to_value())], durable=False)
                raise

        try:
            await call_with_retries(attempt, policy)
        except RealGeeksSyncError as exc:
            p.metrics.activities_failed.labels(exc.error_type).inc()
            await p.deadletter(event, exc, attempts=attempts_of(exc), retriable=exc.retriable)
            return False
        record = outbox_machine.accept(record, time.time())
        await write_tables([(outbox, write_id, record.to_value())], durable=False)
        log.info(
            "written to Real Geeks",
            extra={
                "site": site,
                "lead_id": lead,
                "write_id": write_id,
                "attempts": record.attempts,
            },
        )
        return True

    def writer(
        topic: faust.TopicT, name: str, one: Callable[[faust.EventT], Awaitable[None]]
    ) -> None:
        @p.app.agent(topic, name=s.topic(name), isolated_partitions=True)
        async def write_to_realgeeks(stream: faust.StreamT) -> None:
            async for event in p.sequence.events(stream):
                try:
                    await write(event, one)
                except RealGeeksSyncError as exc:
                    await p.deadletter(event, exc, attempts=attempts_of(exc))
                except Exception as exc:
                    log.exception("unexpected error in the writer")
                    await p.deadletter(event, exc, error_type=f"Unexpected{type(exc).__name__}")

    writer(p.topics.activities_outbound, "write_activities", write_activity)
    writer(p.topics.leads_outbound, "write_lead_updates", write_lead_update)
