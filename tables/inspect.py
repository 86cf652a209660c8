"""Read-only lookups behind the inspection pages (pure over mapping-like tables)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["find_lead", "lookup_identity", "processed_entry"]


def processed_entry(processed: Any, site_uuid: str, message_id: str) -> dict[str, Any] | None:
    """When a message id was first processed, and whether it finished."""
    state = processed.get(f"{site_uuid}|{message_id}")
    if not isinstance(state, Mapping):
        return None
    return {
        "site_uuid": site_uuid,
        "message_id": message_id,
        "first_seen": state.get("first_seen"),
        "done": bool(state.get("done")),
    }


def find_lead(index: Any, snapshots: Any, site_uuid: str, lead_id: str) -> dict[str, Any] | None:
    """The canonical lead for any of its ids (aliases with or without dashes resolve)."""
    from tables.identity import IdentityIndex

    return IdentityIndex(index, snapshots).lookup_lead(site_uuid, lead_id)


def lookup_identity(
    index: Any, site_uuid: str, *, email: str | None, phone: str | None, region: str
) -> dict[str, Any] | None:
    """Which lead an email or phone resolves to within a site."""
    from tables.identity import IdentityIndex

    return IdentityIndex(index, {}).lookup_identifier(
        site_uuid, email=email, phone=phone, region=region
    )
