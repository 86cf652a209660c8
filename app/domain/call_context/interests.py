"""Property interests: the distinct homes a lead viewed, newest first, with their ranges."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from realgeeks_sync.app.domain.call_context.history import Activity
from realgeeks_sync.app.domain.call_context.policy import ContextPolicy
from realgeeks_sync.app.domain.call_context.values import (
    bounded,
    first_number,
    first_text,
    max_of,
    min_of,
    squash,
)

__all__ = ["property_interests"]


def property_interests(history: Sequence[Activity], policy: ContextPolicy) -> dict[str, Any]:
    """Summarize property_viewed activities: recent distinct properties, cities, ranges."""
    views = [a for a in history if a.type == "property_viewed"]
    by_key: dict[str, dict[str, Any]] = {}
    city_counts: Counter[str] = Counter()
    for view in views:
        entry = _property_entry(view, policy)
        if entry["city"]:
            city_counts[entry["city"]] += 1
        key = entry["key"]
        if key in by_key:
            by_key[key]["views"] += 1
        else:
            by_key[key] = entry  # history is newest first, so the first seen is the latest
    recent = list(by_key.values())[: policy.max_properties]
    cities = [city for city, _ in city_counts.most_common(policy.max_cities)]
    return {
        "viewed_count": len(views),
        "distinct_count": len(by_key),
        "recent": recent,
        "cities": cities,
        "price_min": min_of(recent, "price"),
        "price_max": max_of(recent, "price"),
        "beds_min": min_of(recent, "beds"),
        "beds_max": max_of(recent, "beds"),
        "baths_min": min_of(recent, "baths"),
        "baths_max": max_of(recent, "baths"),
    }


def _property_entry(view: Activity, policy: ContextPolicy) -> dict[str, Any]:
    """Return one viewed property's fields (None where the payload has none)."""
    prop = view.property or {}
    address = first_text(prop, ("address", "street_address", "full_address", "street"))
    city = first_text(prop, ("city",))
    zip_code = first_text(prop, ("zip", "zipcode", "postal_code"))
    mls = first_text(prop, ("mls", "mls_number", "mls_id", "listing_id"))
    url = first_text(prop, ("url", "listing_url"))
    baths = first_number(prop, ("baths", "bathrooms", "total_baths"))
    if baths is None:
        full = first_number(prop, ("full_baths",))
        half = first_number(prop, ("half_baths",)) or 0
        baths = full + half / 2 if full is not None else None
    description = bounded(view.description, policy.max_description_chars) or None
    key = _property_key(mls, address, city, zip_code, url, view.description)
    return {
        "key": key,
        "address": address,
        "city": city,
        "state": first_text(prop, ("state",)),
        "zip": zip_code,
        "price": first_number(
            prop, ("price", "list_price", "listing_price", "current_price", "rent_price")
        ),
        "beds": first_number(prop, ("beds", "bedrooms", "bed")),
        "baths": baths,
        "listing_status": first_text(prop, ("listing_status",)),
        "property_type": first_text(prop, ("property_type", "type")),
        "mls": mls,
        "url": url,
        "description": description,
        "last_viewed_at": view.created.isoformat() if view.created else None,
        "views": 1,
    }


def _property_key(
    mls: str | None,
    address: str | None,
    city: str | None,
    zip_code: str | None,
    url: str | None,
    description: str,
) -> str:
    """Return a stable identity for a property, used to de-duplicate repeat views."""
    if mls:
        return "mls:" + squash(mls)
    if address:
        return "addr:" + "|".join(squash(p or "") for p in (address, city, zip_code))
    if url:
        return "url:" + url.strip()
    return "desc:" + squash(description)[:200]
