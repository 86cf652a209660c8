"""``realgeeks-sync reconcile --since``: request every finished conversation since then.

The same requests the periodic job sends (agents/reconcile_calls.py), for a window the
job did not cover (a worker down for a day, a lookback too short). The worker maps only
the conversations whose outcome never arrived; a request's message id is fixed by its
conversation, so running this twice writes nothing new.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from datetime import UTC, datetime
from typing import Any, TextIO

from confluent_kafka import Producer

from realgeeks_sync.app.clients.elevenlabs import ElevenLabsClients
from realgeeks_sync.app.core.errors import ApiError
from realgeeks_sync.app.core.settings import Secret, Settings
from realgeeks_sync.app.core.sites import SitesFileError, load_sites
from realgeeks_sync.app.domain.reconciliation import needs_request, request_envelope
from realgeeks_sync.app.operations.dlq import parse_since
from realgeeks_sync.app.streaming import topics as names
from realgeeks_sync.app.streaming.kafka_config import producer_config

__all__ = ["run_reconcile"]


def run_reconcile(settings: Settings, since: str, *, out: TextIO = sys.stderr) -> int:
    """List each agent's conversations since ``since`` and request the finished ones
    (every agent the sites call with, each with its site's API key).

    Returns the exit code: 0 done, 1 the API or Kafka failed, 2 bad input or settings.
    """
    try:
        agents = load_sites(settings).elevenlabs_agents()
    except SitesFileError as exc:
        for problem in exc.problems:
            print(f"reconcile: {problem}", file=out)
        return 2
    if not agents:
        print(
            "reconcile: an ElevenLabs agent id and API key are needed (RGSYNC_ELEVENLABS_AGENT_ID "
            "and RGSYNC_ELEVENLABS_API_KEY, or a site's in RGSYNC_SITES_FILE)",
            file=out,
        )
        return 2
    now = datetime.now(UTC)
    try:
        start = parse_since(since, now)
    except ValueError as exc:
        print(f"reconcile: --since: {exc}", file=out)
        return 2
    if start is None:
        print("reconcile: --since is needed (ISO 8601, or an age like 36h or 2d)", file=out)
        return 2
    try:
        listed, wanted = asyncio.run(_finished(settings, agents, int(start.timestamp())))
    except ApiError as exc:
        print(f"reconcile: cannot list conversations: {exc}", file=out)
        return 1
    producer = Producer(producer_config(settings))
    failed = 0

    def on_delivery(err: Any, _msg: Any) -> None:
        nonlocal failed
        if err is not None:
            failed += 1

    topic = settings.topic(names.RAW_ELEVENLABS)
    received_at = now.isoformat().replace("+00:00", "Z")
    for conversation, agent_id in wanted:
        envelope = request_envelope(conversation, agent_id, received_at)
        producer.produce(
            topic,
            key=conversation.encode(),
            value=json.dumps(envelope, separators=(",", ":")).encode(),
            on_delivery=on_delivery,
        )
        producer.poll(0)
    failed += producer.flush(30)
    print(
        json.dumps({"listed": listed, "requested": len(wanted) - failed, "failed": failed}),
        file=out,
    )
    return 0 if failed == 0 else 1


async def _finished(
    settings: Settings, agents: dict[str, Secret], after_unix: int
) -> tuple[int, list[tuple[str, str]]]:
    """(conversations listed, (id, agent) of the finished ones) since ``after_unix``."""
    listed, wanted = 0, []
    async with ElevenLabsClients(settings) as clients:
        for agent_id, api_key in agents.items():
            client = clients.client(api_key.reveal())
            async for summary in client.conversations_since(agent_id, after_unix):
                listed += 1
                conversation = needs_request(summary, time.time(), settings.reconcile_grace_s)
                if conversation is not None:
                    wanted.append((conversation, agent_id))
    return listed, wanted
