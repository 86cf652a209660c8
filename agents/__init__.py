"""Stream agents. Each module registers its agents on a Pipeline (app/main.py)."""

from __future__ import annotations

from app.main import Pipeline

__all__ = ["register_all"]


def register_all(p: Pipeline) -> None:
    """Register every agent of the service on the pipeline's app."""
    from agents import dial_leads, map_call_outcomes, normalize_leads, write_activities

    normalize_leads.register(p)
    map_call_outcomes.register(p)
    write_activities.register(p)
    dial_leads.register(p)
