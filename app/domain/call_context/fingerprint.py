"""What makes a new call context worth sending: the material fields and how they changed."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from realgeeks_sync.app.domain.call_context.codes import SCHEMA

__all__ = ["changed_fields", "fingerprint", "materially_changed"]

_MATERIAL_LEAD_FIELDS = (
    "first_name",
    "last_name",
    "email",
    "phone",
    "phone2",
    "role",
    "agent_name",
)


def fingerprint(context: Mapping[str, Any]) -> dict[str, Any]:
    """Return the fields whose change warrants a new context (no timestamps, no hot flag)."""
    lead = context.get("lead")
    lead = lead if isinstance(lead, Mapping) else {}
    interests = context.get("property_interests")
    recent = interests.get("recent") if isinstance(interests, Mapping) else None
    # A set: re-viewing a known property reorders the list but is no new interest.
    keys = sorted(
        str(e.get("key"))
        for e in (recent if isinstance(recent, list) else [])
        if isinstance(e, Mapping)
    )
    material: dict[str, Any] = {f"lead.{name}": lead.get(name) for name in _MATERIAL_LEAD_FIELDS}
    material["property_interests"] = keys
    material["eligible"] = context.get("eligible")
    return material


def changed_fields(
    previous_context: Mapping[str, Any] | None, new_context: Mapping[str, Any]
) -> list[str]:
    """Return the names of the material fields that differ (all of them without a previous)."""
    new = fingerprint(new_context)
    if previous_context is None or previous_context.get("schema") != SCHEMA:
        return list(new)
    old = fingerprint(previous_context)
    return [name for name in new if old.get(name) != new[name]]


def materially_changed(
    previous_context: Mapping[str, Any] | None, new_context: Mapping[str, Any]
) -> bool:
    """Return True when an update deserves a new calls.context (never for timestamps alone)."""
    return bool(changed_fields(previous_context, new_context))
