"""Read-only lookups behind the inspection pages (pure over mapping-like tables)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from realgeeks_sync.app.domain.normalize import (
    normalize_email,
    normalize_lead_id,
    normalize_phone,
    normalize_site_uuid,
)
from realgeeks_sync.tables.identity import IdentityIndex

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
    site, lead = normalize_site_uuid(site_uuid), normalize_lead_id(lead_id)
    if site is None or lead is None:
        return None
    identity = IdentityIndex(index, snapshots)
    canonical = identity.canonical_id(site, lead) or lead
    snapshot = identity.lead(site, canonical)
    if snapshot is None:
        return None
    return {
        "site_uuid": site,
        "lead_id": canonical,
        "requested_id": lead,
        "lead": snapshot.to_json(),
    }


def lookup_identity(
    index: Any, site_uuid: str, *, email: str | None, phone: str | None, region: str
) -> dict[str, Any] | None:
    """Which lead an email or phone resolves to within a site."""
    site = normalize_site_uuid(site_uuid)
    if site is None:
        return None
    identity = IdentityIndex(index, {})
    if email:
        value, kind = normalize_email(email), "email"
    else:
        value, kind = normalize_phone(phone, region).e164, "phone"
    if not value:
        return None
    leads = identity.leads_for(site, kind, value)
    if not leads:
        return None
    return {"site_uuid": site, "kind": kind, "lead_id": leads[0], "leads": leads}
