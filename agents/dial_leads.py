"""dial_leads: calls.context -> an ElevenLabs outbound call for eligible new leads.

One agent consumes calls.context, sync.optouts and sync.dialer-wakeups (all keyed
``<site>:<lead>``, so the do-not-call and dialer tables share their partitions). A lead
outside its calling hours waits in ``dialer_state``; a timer sends a wake-up record when
its window opens, and the agent (where table writes belong) calls it then.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

import aiohttp
import faust

from app.dialing import plan_call
from app.elevenlabs_client import ElevenLabsClient
from app.errors import ApiError
from app.main import Pipeline
from app.retry import RetryPolicy, call_with_retries

__all__ = ["register"]

log = logging.getLogger(__name__)


def register(p: Pipeline) -> None:
    """Register the dialer agent and its wake-up timer."""
    s = p.settings
    t = p.tables
    optouts_topic = s.topic("sync.optouts")
    wakeups_topic = s.topic("sync.dialer-wakeups")
    # Only 429/concurrency refusals are retried: a timeout may have placed the call.
    policy = RetryPolicy(base_delay=1.0, max_delay=30.0, max_attempts=5, max_elapsed=120.0)
    clients: dict[str, ElevenLabsClient] = {}

    def now() -> datetime:
        return datetime.fromtimestamp(p.clock(), UTC)

    def client() -> ElevenLabsClient:
        if "c" not in clients:

            def on_request(operation: str, status: str, seconds: float) -> None:
                p.metrics.api_request_seconds.labels("elevenlabs", operation, status).observe(
                    seconds
                )

            clients["c"] = ElevenLabsClient(
                aiohttp.ClientSession(),
                s.elevenlabs_api_url,
                s.elevenlabs_api_key.reveal(),
                on_request=on_request,
            )
        return clients["c"]

    async def start_call(
        key: str, context: dict[str, Any], state: dict[str, Any], day: str
    ) -> None:
        variables = dict(context.get("dynamic_variables") or {})
        variables["lead_id"], variables["site_uuid"] = context["lead_id"], context["site_uuid"]
        attempts = dict(state.get("attempts_by_day") or {})
        attempts[day] = attempts.get(day, 0) + 1
        # Recorded before the request: a crash mid-call must not ring the lead twice.
        t.dialer_state[key] = {
            **state,
            "status": "calling",
            "attempts_by_day": attempts,
            "context_event_id": context.get("event_id"),
        }

        async def attempt() -> Any:
            return await client().start_outbound_call(
                s.elevenlabs_agent_id,
                s.elevenlabs_phone_number_id,
                context["lead"]["phone"],
                variables,
                user_id=context["lead_id"],
            )

        try:
            result = await call_with_retries(attempt, policy)
        except ApiError as exc:
            placed_unknown = exc.retriable and exc.http_status is None
            t.dialer_state[key] = {
                **state,
                "attempts_by_day": attempts,
                "status": "uncertain" if placed_unknown else "failed",
                "error": str(exc)[:300],
            }
            p.metrics.calls_deferred.labels("api_error").inc()
            p.metrics.sync_errors.labels(exc.error_type).inc()
            log.warning(
                "outbound call failed",
                extra={"lead_id": context["lead_id"], "error_type": exc.error_type},
            )
            return
        t.dialer_state[key] = {
            "status": "called",
            "conversation_id": result.conversation_id,
            "attempts_by_day": attempts,
            "called_at": now().isoformat(),
        }
        p.metrics.calls_started.inc()
        log.info(
            "outbound call started",
            extra={
                "site": context["site_uuid"],
                "lead_id": context["lead_id"],
                "conversation_id": result.conversation_id,
            },
        )
        await (
            await p.send(
                p.topics.conversations,
                result.conversation_id,
                {
                    "conversation_id": result.conversation_id,
                    "site_uuid": context["site_uuid"],
                    "lead_id": context["lead_id"],
                    "started_at": now().isoformat(),
                },
            )
        )

    async def consider(key: str, context: dict[str, Any]) -> None:
        state = t.dialer_state.get(key) or {}
        dnc = bool(t.do_not_call.get(key))
        plan = plan_call(
            context,
            do_not_call=dnc,
            state=state,
            now=now(),
            max_attempts_per_day=s.dialer_max_attempts_per_day,
            fallback_zone=s.dialer_fallback_timezone,
        )
        if plan.action == "wait":
            t.dialer_state[key] = {
                **state,
                "status": "waiting",
                "due": plan.due.isoformat() if plan.due else None,
                "context": context,
            }
            p.metrics.calls_deferred.labels(plan.reason).inc()
        elif plan.action == "skip":
            if state.get("status") == "waiting":
                t.dialer_state[key] = {**state, "status": "skipped", "context": None}
            p.metrics.calls_deferred.labels(plan.reason).inc()
        else:
            await start_call(key, context, state, plan.attempts_key or "")

    async def handle(event: faust.EventT) -> None:
        msg = event.message
        key = (msg.key or b"").decode()
        record = json.loads(msg.value or b"")
        if msg.topic == optouts_topic:
            t.do_not_call[key] = {"at": record.get("at"), "source": record.get("source")}
            return
        if not s.dialer_enabled:
            return
        if msg.topic == wakeups_topic:
            state = t.dialer_state.get(key) or {}
            if state.get("status") == "waiting" and isinstance(state.get("context"), dict):
                await consider(key, state["context"])
            return
        if record.get("schema") == "call_context.v1" and record.get("trigger") in (
            None,
            "created",
            "updated",
        ):
            await consider(key, record)

    topic = p.app.topic(
        s.topic("calls.context"),
        optouts_topic,
        wakeups_topic,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
    )

    @p.app.agent(topic, name=s.topic("dial_leads"), concurrency=1)
    async def dial_leads(stream: faust.StreamT) -> None:
        async for event in p.sequence.events(stream):
            try:
                await handle(event)
            except Exception as exc:
                log.exception("dialer failed on a record")
                await p.deadletter(event, exc)

    @p.app.timer(interval=5.0)
    async def wake_waiting_leads() -> None:
        if not s.dialer_enabled:
            return
        current = now()
        for key, state in list(t.dialer_state.items()):
            if not isinstance(state, dict) or state.get("status") != "waiting":
                continue
            due = state.get("due")
            if due and datetime.fromisoformat(due) <= current:
                await p.send(p.topics.dialer_wakeups, key, {"key": key, "at": current.isoformat()})
