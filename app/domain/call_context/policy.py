"""The bounds and strategy thresholds a call context is built with."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import time, timedelta

from realgeeks_sync.app.domain.call_context.codes import OPTED_OUT
from realgeeks_sync.app.domain.call_outcomes import DEFAULT_ACTIVITY_SOURCE
from realgeeks_sync.app.domain.calling_window import DEFAULT_END, DEFAULT_START

__all__ = ["DEFAULT_POLICY", "ContextPolicy"]


@dataclass(frozen=True)
class ContextPolicy:
    """Bounds and strategy thresholds for building a call context."""

    max_properties: int = 5
    max_recent_activities: int = 5
    max_cities: int = 3
    max_description_chars: int = 200
    max_variable_chars: int = 500
    hot_new_lead_window: timedelta = timedelta(hours=1)
    hot_view_window: timedelta = timedelta(hours=24)
    hot_view_count: int = 3
    require_consent: bool = False
    consent_fields: tuple[str, ...] = ("tcpa_consent", "call_consent", "consent")
    own_activity_source: str = DEFAULT_ACTIVITY_SOURCE
    opt_out_activity_types: frozenset[str] = field(default_factory=lambda: frozenset({OPTED_OUT}))
    call_window_start: time = DEFAULT_START
    call_window_end: time = DEFAULT_END


DEFAULT_POLICY = ContextPolicy()
