"""Stream agents, one module each; each registers itself on the pipeline handle.

    normalize_leads       realgeeks.webhooks.raw -> leads, activities, call contexts, opt-outs
    map_call_outcomes     elevenlabs.webhooks.raw -> activities, opt-outs, call outcomes
    record_conversations  sync.conversations -> the conversation -> lead table
    write_activities      realgeeks.activities.outbound -> the Real Geeks API, once
    dial_leads            calls.context, sync.optouts, sync.dialer-events -> calls
    record_stories        leads, activities, dead letters (and, through the agents above,
                          everything else about a lead) -> lead stories, the day's figures

processing.py holds the idempotency rule the raw-topic agents follow.
"""

from __future__ import annotations

from realgeeks_sync.agents import (
    dial_leads,
    map_call_outcomes,
    normalize_leads,
    record_conversations,
    record_stories,
    write_activities,
)
from realgeeks_sync.app.streaming.pipeline import Pipeline

__all__ = ["register_all"]


def register_all(p: Pipeline) -> None:
    """Register every agent of the service on the pipeline's app."""
    stories = record_stories.register(p)
    normalize_leads.register(p)
    map_call_outcomes.register(p)
    record_conversations.register(p)
    write_activities.register(p, stories)
    dial_leads.register(p, stories)
