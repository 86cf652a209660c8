"""record_conversations: sync.conversations -> the conversation id -> lead table.

The dialer sends one record per placed call, the pre-call webhook one per inbound call
it placed (when ElevenLabs names the conversation); the table lives on the conversation id's
partition, like the ElevenLabs raw topic, so map_call_outcomes finds the lead of a
post-call webhook that carries no dynamic variables.
"""

from __future__ import annotations

import asyncio
import logging

import faust

from realgeeks_sync.app.core import json_codec
from realgeeks_sync.app.streaming.pipeline import Pipeline

__all__ = ["register"]

log = logging.getLogger(__name__)


def register(p: Pipeline) -> None:
    """Register the agent."""
    conversations = p.tables.conversations

    @p.app.agent(
        p.topics.conversations, name=p.settings.topic("record_conversations"), concurrency=1
    )
    async def record_conversations(stream: faust.StreamT) -> None:
        async for event in p.sequence.events(stream):
            try:
                record = json_codec.loads(event.message.value or b"")
                conversations[record["conversation_id"]] = {
                    "site_uuid": record["site_uuid"],
                    "lead_id": record["lead_id"],
                    "attempt_id": record.get("attempt_id"),
                    "started_at": record.get("started_at"),
                    # inbound: recorded by the pre-call webhook (app/ingress/initiation.py)
                    "direction": record.get("direction") or "outbound",
                }
            except (ValueError, KeyError, TypeError) as exc:
                await p.deadletter(event, exc)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # A broken record or table must not stop the agent: later calls need it.
                log.exception("recording a conversation failed")
                await p.deadletter(event, exc, error_type=f"Unexpected{type(exc).__name__}")
