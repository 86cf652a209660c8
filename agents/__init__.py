"""Stream agents, one module each; each registers itself on the pipeline handle.

    normalize_leads       realgeeks.webhooks.raw -> leads, activities, call contexts,
                          opt-outs, caller records
    map_call_outcomes     elevenlabs.webhooks.raw -> activities, lead updates, opt-outs,
                          call outcomes (and reconcile requests: the missed ones)
    track_lead_calls      sync.optouts, sync.call-outcomes -> each lead's calls and opt-out,
                          its call context again
    record_conversations  sync.conversations -> the conversation -> lead table
    write_activities      realgeeks.activities.outbound, realgeeks.leads.outbound -> the
                          Real Geeks API, once each
    dial_leads            calls.context, sync.optouts, sync.dialer-events -> calls
    reconcile_calls       a timer: the agent's recent conversations -> reconcile requests
    record_stories        activities, dead letters (and, through the agents above,
                          everything else about a lead, its lead events and call outcomes
                          included) -> lead stories, the day's figures

processing.py holds the idempotency rule the raw-topic agents follow. The agents that call
ElevenLabs (dial_leads, map_call_outcomes, reconcile_calls) share one client per API key,
on one HTTP session closed when the app stops.
"""

from __future__ import annotations

from realgeeks_sync.agents import (
    dial_leads,
    map_call_outcomes,
    normalize_leads,
    reconcile_calls,
    record_conversations,
    record_stories,
    track_lead_calls,
    write_activities,
)
from realgeeks_sync.app.clients.elevenlabs import ElevenLabsClients
from realgeeks_sync.app.streaming.pipeline import Pipeline

__all__ = ["register_all"]


def register_all(p: Pipeline) -> None:
    """Register every agent of the service on the pipeline's app."""
    elevenlabs = elevenlabs_clients(p)
    stories = record_stories.register(p)
    normalize_leads.register(p, stories)
    map_call_outcomes.register(p, elevenlabs)
    track_lead_calls.register(p, stories)
    record_conversations.register(p)
    write_activities.register(p, stories)
    dial_leads.register(p, elevenlabs, stories)
    reconcile_calls.register(p, elevenlabs)


def elevenlabs_clients(p: Pipeline) -> ElevenLabsClients:
    """The ElevenLabs clients the agents share: requests timed in the metrics, the session
    closed when the app stops."""

    def on_request(operation: str, status: str, seconds: float) -> None:
        p.metrics.api_request_seconds.labels("elevenlabs", operation, status).observe(seconds)

    clients = ElevenLabsClients(p.settings, on_request)

    @p.app.on_before_shutdown.connect
    async def close_elevenlabs_session(_app: object, **_kwargs: object) -> None:
        await clients.close()

    return clients
