"""reconcile_calls: a timer that finds call outcomes whose webhook never arrived.

Every RGSYNC_RECONCILE_INTERVAL_S, on the leader worker only (one listing per cluster),
the agent's conversations of the last RGSYNC_RECONCILE_LOOKBACK_S are listed and each
finished one (RGSYNC_RECONCILE_GRACE_S after its end, so its webhook had its chance)
becomes a reconcile request on elevenlabs.webhooks.raw (app/domain/reconciliation.py).
map_call_outcomes fetches and maps those it has no outcome for; the rest cost one table
read. Requests this worker sent are remembered for the lookback window, so a period
sends only the new ones; after a restart they are sent once more, as duplicates.
"""

from __future__ import annotations

import logging
import time

import aiohttp

from realgeeks_sync.agents.processing import utc_now_iso
from realgeeks_sync.app.clients.elevenlabs import ElevenLabsClient
from realgeeks_sync.app.core.errors import ApiError
from realgeeks_sync.app.domain.reconciliation import needs_request, request_envelope
from realgeeks_sync.app.streaming.pipeline import Pipeline

__all__ = ["register"]

log = logging.getLogger(__name__)


def register(p: Pipeline) -> None:
    """Register the timer (nothing when reconciliation is off or not configured)."""
    s = p.settings
    if s.reconcile_interval_s <= 0:
        return
    if not (s.elevenlabs_api_key and s.elevenlabs_agent_id):
        log.info("reconciliation off: RGSYNC_ELEVENLABS_API_KEY and _AGENT_ID are needed")
        return
    requested: dict[str, float] = {}  # conversation id -> when this worker requested it
    clients: dict[str, ElevenLabsClient] = {}

    def client() -> ElevenLabsClient:
        if "c" not in clients:
            clients["c"] = ElevenLabsClient(
                aiohttp.ClientSession(),
                s.elevenlabs_api_url,
                s.elevenlabs_api_key.reveal(),
                timeout_s=s.elevenlabs_timeout_s,
            )
        return clients["c"]

    @p.app.timer(interval=s.reconcile_interval_s, on_leader=True)
    async def reconcile_calls() -> None:
        now = time.time()
        for conversation, at in list(requested.items()):
            if now - at > s.reconcile_lookback_s:
                del requested[conversation]
        sent = 0
        try:
            async for summary in client().conversations_since(
                s.elevenlabs_agent_id, int(now - s.reconcile_lookback_s)
            ):
                conversation = needs_request(summary, now, s.reconcile_grace_s)
                if conversation is None or conversation in requested:
                    continue
                envelope = request_envelope(conversation, s.elevenlabs_agent_id, utc_now_iso())
                await p.write([(p.topics.raw_elevenlabs, conversation, envelope)], what="reconcile")
                requested[conversation] = now
                sent += 1
        except ApiError as exc:
            p.metrics.sync_errors.labels(exc.error_type).inc()
            log.warning("reconciliation could not list conversations", extra={"error": str(exc)})
        if sent:
            log.info("reconcile requests sent", extra={"count": sent})
