"""The whole lead: every known field of a created/updated body through its normalizer."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

from realgeeks_sync.app.domain.normalize.addresses import (
    normalize_city,
    normalize_state,
    normalize_street,
    normalize_zip,
)
from realgeeks_sync.app.domain.normalize.emails import normalize_email
from realgeeks_sync.app.domain.normalize.ids import normalize_lead_id
from realgeeks_sync.app.domain.normalize.names import normalize_name
from realgeeks_sync.app.domain.normalize.phones import normalize_phone
from realgeeks_sync.app.domain.normalize.roles import normalize_role
from realgeeks_sync.app.domain.normalize.text import is_blank, normalize_text
from realgeeks_sync.app.domain.normalize.times import TimestampError, normalize_timestamp

__all__ = ["DROPPED_LEAD_KEYS", "normalize_lead"]

# Body keys that are per-message, not lead state: the action is the event's op, the
# id becomes source_lead_id, and activities travel on activities.normalized.
DROPPED_LEAD_KEYS = frozenset({"action", "activities"})

_EMAIL_FIELDS = ("email", "second_email", "agent_email")
_PHONE_FIELDS = ("phone", "phone2")
_NAME_FIELDS = ("first_name", "last_name", "agent_name")
_STREET_FIELDS = ("street_address", "address")
_TEXT_FIELDS = ("source", "source_details", "source_system")


def normalize_lead(body: Mapping[str, Any], default_region: str | None = "US") -> dict[str, Any]:
    """Normalized lead fields for the keys present in a created/updated body.

    Known fields are normalized; a non-empty value a normalizer cannot use becomes None
    with the value as received under "<field>_raw" (phones always keep "_raw").
    Blank values (null, "", whitespace) come out as None: the caller decides whether
    that is a clear. Unknown keys pass through as received; per-message keys
    (`DROPPED_LEAD_KEYS`) are left out and `id` is normalized like a lead id.
    """
    lead: dict[str, Any] = {}
    for key, value in body.items():
        if key in DROPPED_LEAD_KEYS:
            continue
        if key in _PHONE_FIELDS:
            _put_phone(lead, key, value, default_region)
        elif key in _EMAIL_FIELDS:
            _put(lead, key, value, normalize_email(value))
        elif key in _NAME_FIELDS:
            _put(lead, key, value, _remembered(normalize_name, value))
        elif key in _STREET_FIELDS:
            _put(lead, key, value, _remembered(normalize_street, value))
        elif key == "city":
            _put(lead, key, value, _remembered(normalize_city, value))
        elif key == "state":
            _put(lead, key, value, _remembered(normalize_state, value))
        elif key == "zip":
            _put(lead, key, value, _remembered(normalize_zip, value))
        elif key == "role":
            _put(lead, key, value, _remembered(normalize_role, value))
        elif key in _TEXT_FIELDS:
            _put(lead, key, value, _remembered(normalize_text, value))
        elif key == "id":
            _put(lead, key, value, normalize_lead_id(value))
        elif key == "created":
            _put(lead, key, value, _timestamp_or_none(value))
        else:
            lead[key] = value
    return lead


def _remembered(normalize: Callable[[object], str | None], value: object) -> str | None:
    """normalize(value), remembered for text of ordinary length.

    Cities, states, roles, sources and most names recur from lead to lead, and a lead's
    own values on every message about it; each normalizer is a pure function of text.
    """
    if type(value) is str and len(value) <= _CACHED_TEXT_CHARS:
        return _normalized_text(normalize, value)
    return normalize(value)


# Longer text is normalized each time: the cache holds bounded keys (~8 MB at most).
_CACHED_TEXT_CHARS = 128


@lru_cache(maxsize=16_384)
def _normalized_text(normalize: Callable[[object], str | None], text: str) -> str | None:
    return normalize(text)


def _put(lead: dict[str, Any], key: str, value: object, normalized: str | None) -> None:
    """Store a normalized value, keeping the original when it had to be dropped."""
    lead[key] = normalized
    if normalized is None and not is_blank(value):
        lead[f"{key}_raw"] = value


def _put_phone(lead: dict[str, Any], key: str, value: object, region: str | None) -> None:
    """Store a phone as E.164 plus its raw text, extension and validity."""
    if is_blank(value):
        lead.update({key: None, f"{key}_raw": None, f"{key}_extension": None})
        lead[f"{key}_valid"] = None
        return
    phone = normalize_phone(value, region)
    lead[key] = phone.e164
    lead[f"{key}_raw"] = value
    lead[f"{key}_extension"] = phone.extension
    lead[f"{key}_valid"] = phone.valid


def _timestamp_or_none(value: object) -> str | None:
    """normalize_timestamp, with None instead of an error."""
    try:
        return normalize_timestamp(value)
    except TimestampError:
        return None
