"""reconcile_calls: a timer that finds call outcomes whose webhook never arrived.

Every RGSYNC_RECONCILE_INTERVAL_S, on the leader worker only (one listing per cluster),
each agent's conversations of the last RGSYNC_RECONCILE_LOOKBACK_S are listed (every
agent the sites call with, each with its site's API key: app/core/sites.py) and each
finished one (RGSYNC_RECONCILE_GRACE_S after its end, so its webhook had its chance)
becomes a reconcile request on elevenlabs.webhooks.raw (app/domain/reconciliation.py).
map_call_outcomes fetches and maps those it has no outcome for; the rest cost one table
read. Requests this worker sent are remembered for the lookback window, so a period
sends only the new ones; after a restart they are sent once more, as duplicates.
"""

from __future__ import annotations

import logging
import time

from realgeeks_sync.agents.processing import utc_now_iso
from realgeeks_sync.app.clients.elevenlabs import ElevenLabsClients
from realgeeks_sync.app.core.errors import ApiError
from realgeeks_sync.app.core.sites import SiteDirectory
from realgeeks_sync.app.domain.reconciliation import needs_request, request_envelope
from realgeeks_sync.app.streaming.pipeline import Pipeline

__all__ = ["register"]

log = logging.getLogger(__name__)


def register(p: Pipeline, elevenlabs: ElevenLabsClients) -> None:
    """Register the timer (nothing when reconciliation is off); ``elevenlabs``: a client
    per API key, shared by the agents."""
    s = p.settings
    if s.reconcile_interval_s <= 0:
        return
    sites = p.sites if p.sites is not None else SiteDirectory(s)
    requested: dict[str, float] = {}  # conversation id -> when this worker requested it
    quiet: list[bool] = []  # "nothing to reconcile" said once

    @p.app.timer(interval=s.reconcile_interval_s, on_leader=True)
    async def reconcile_calls() -> None:
        now = time.time()
        for conversation, at in list(requested.items()):
            if now - at > s.reconcile_lookback_s:
                del requested[conversation]
        agents = sites.current.elevenlabs_agents()
        if not agents and not quiet:
            quiet.append(True)
            log.info("reconciliation idle: no site has an ElevenLabs agent id and API key")
        sent = 0
        for agent_id, api_key in agents.items():
            try:
                async for summary in elevenlabs.client(api_key.reveal()).conversations_since(
                    agent_id, int(now - s.reconcile_lookback_s)
                ):
                    conversation = needs_request(summary, now, s.reconcile_grace_s)
                    if conversation is None or conversation in requested:
                        continue
                    envelope = request_envelope(conversation, agent_id, utc_now_iso())
                    await p.write(
                        [(p.topics.raw_elevenlabs, conversation, envelope)], what="reconcile"
                    )
                    requested[conversation] = now
                    sent += 1
            except ApiError as exc:
                p.metrics.sync_errors.labels(exc.error_type).inc()
                log.warning(
                    "reconciliation could not list conversations",
                    extra={"agent_id": agent_id, "error": str(exc)},
                )
        if sent:
            log.info("reconcile requests sent", extra={"count": sent})
