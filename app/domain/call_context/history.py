"""A lead's activity history, parsed once and newest first, and its summary for a call."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from realgeeks_sync.app.domain.call_context.policy import ContextPolicy
from realgeeks_sync.app.domain.call_context.values import bounded, clean_text, iso, parse_time

__all__ = ["Activity", "parse_history", "previous_interactions"]

_CONTACT_TYPES = frozenset({"called", "contact_emailed", "contact_texted", "emailed", "texted"})


@dataclass(frozen=True)
class Activity:
    """One history entry, parsed once."""

    type: str
    source: str
    description: str
    created: datetime | None
    property: Mapping[str, Any] | None
    user: Mapping[str, Any] | None
    own: bool


def parse_history(activities: Sequence[Mapping[str, Any]], policy: ContextPolicy) -> list[Activity]:
    """Parse activities and sort them newest first (undated ones last, in input order)."""
    own_source = policy.own_activity_source.casefold()
    parsed: list[tuple[int, Activity]] = []
    if isinstance(activities, Sequence) and not isinstance(activities, str | bytes):
        for index, raw in enumerate(activities):
            if not isinstance(raw, Mapping):
                continue
            source = clean_text(raw.get("source")) or ""
            prop = raw.get("property")
            user = raw.get("user")
            activity = Activity(
                type=(clean_text(raw.get("type")) or "").casefold(),
                source=source,
                description=clean_text(raw.get("description")) or "",
                created=parse_time(raw.get("created")),
                property=prop if isinstance(prop, Mapping) else None,
                user=user if isinstance(user, Mapping) else None,
                own=source.casefold() == own_source,
            )
            parsed.append((index, activity))
    epoch = datetime.min.replace(tzinfo=UTC)
    # Newest first; among equal/missing times the later input entry counts as newer.
    parsed.sort(key=lambda item: (item[1].created or epoch, item[0]), reverse=True)
    dated = [a for _, a in parsed if a.created is not None]
    undated = [a for _, a in parsed if a.created is None]
    return dated + undated


def previous_interactions(history: Sequence[Activity], policy: ContextPolicy) -> dict[str, Any]:
    """Count activities by type and keep the latest few, bounded."""
    by_type = Counter(a.type or "unknown" for a in history)
    contacts = [a for a in history if a.type in _CONTACT_TYPES and a.created]
    visits = [a for a in history if a.type == "visited" and a.created]
    recent = [
        {
            "type": a.type,
            "source": a.source,
            "created": a.created.isoformat() if a.created else None,
            "description": bounded(a.description, policy.max_description_chars),
            "by_ai_agent": a.own,
        }
        for a in history[: policy.max_recent_activities]
    ]
    last_activity = next((a.created for a in history if a.created), None)
    return {
        "total": len(history),
        "by_type": dict(sorted(by_type.items())),
        "last_activity_at": last_activity.isoformat() if last_activity else None,
        "last_contact_at": iso(contacts[0].created) if contacts else None,
        "last_visit_at": iso(visits[0].created) if visits else None,
        "visit_count": by_type.get("visited", 0),
        "ai_activity_count": sum(1 for a in history if a.own),
        "ai_completed_calls": sum(1 for a in history if a.own and a.type == "called"),
        "recent": recent,
    }
