"""normalize_leads: raw Real Geeks webhooks -> leads.normalized, activities.normalized,
calls.context. Keyed by site, so a site's messages and its identity tables share a
partition; concurrency 1 so decisions follow the partition's order."""

from __future__ import annotations

import logging
from typing import Any

import faust

from agents.processing import Output, process_idempotently
from app.envelopes import KNOWN_REALGEEKS_ACTIONS
from app.main import Pipeline

__all__ = ["register"]

log = logging.getLogger(__name__)


def _message_key(envelope: dict[str, Any]) -> str:
    return f"{envelope.get('site_uuid_key', '')}|{envelope['message_id']}"


def register(p: Pipeline) -> None:
    """Register the agent on the pipeline."""

    async def decide(envelope: dict[str, Any]) -> list[Output]:
        action = envelope.get("action")
        if action not in KNOWN_REALGEEKS_ACTIONS:
            p.metrics.webhooks_ignored.labels("realgeeks", "unknown").inc()
            return []
        return []

    @p.app.agent(p.topics.raw_realgeeks, name=p.settings.topic("normalize_leads"), concurrency=1)
    async def normalize_leads(stream: faust.StreamT) -> None:
        async for event in stream.events():
            key = event.message.key.decode("utf-8", "replace") if event.message.key else ""
            await process_idempotently(
                p,
                event,
                source="realgeeks",
                table=p.tables.processed_messages,
                decide=decide,
                key_of=lambda env, site=key: f"{site}|{env['message_id']}",
            )
