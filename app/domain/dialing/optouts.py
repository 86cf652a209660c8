"""``optout.v1``: one opt-out (or operator opt-in) of a lead or of a phone number, per site.

Every source writes the same event to ``sync.optouts`` (kept forever): Real Geeks
(an ``opted_out`` activity, or a consent field set to a refusal), ElevenLabs (the caller
asked not to be called), an operator (``realgeeks-sync dnc``), and the dialer itself (the
numbers of a lead that opted out). One event names one subject, so each lead and each
number has its own ordered history; the dialer folds it into its do-not-call table, and
other services can do the same.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

from realgeeks_sync.app.domain.normalize.e164 import parse_valid_e164, valid_e164

__all__ = [
    "ACTIONS",
    "SCHEMA",
    "SOURCES",
    "OptOut",
    "OptOutError",
    "e164_or_none",
    "optout_event",
    "optout_key",
    "parse_optout",
]

SCHEMA = "optout.v1"
ACTIONS = ("opt_out", "opt_in")
SOURCES = ("realgeeks", "elevenlabs", "operator", "dialer")
Subject = Literal["lead", "phone"]


class OptOutError(ValueError):
    """A record on sync.optouts that is not a valid optout.v1 event."""


@dataclass(frozen=True)
class OptOut:
    """One parsed optout.v1 event."""

    event_id: str
    site_uuid: str
    subject: Subject
    lead_id: str | None
    phone: str | None
    action: str
    source: str
    at: str
    reason: str | None = None
    by: str | None = None

    @property
    def value(self) -> str:
        """The lead id or the E.164 number this event is about."""
        return (self.lead_id if self.subject == "lead" else self.phone) or ""


def optout_key(site_uuid: str, subject_value: str) -> str:
    """The record key: ``<site_uuid>:<lead_id>`` or ``<site_uuid>:<E.164 number>``."""
    return f"{site_uuid}:{subject_value}"


def e164_or_none(value: Any, region: str | None = None) -> str | None:
    """Return ``value`` as a valid E.164 number, or None."""
    if not isinstance(value, str | int) or isinstance(value, bool):
        return None
    text = str(value).strip()
    if not text or len(text) > 40:
        return None
    return _e164(text, None if text.startswith("+") else region)


def _e164(text: str, region: str | None) -> str | None:
    if region is None:
        return valid_e164(text)
    return _e164_in_region(text, region)


@lru_cache(maxsize=8192)
def _e164_in_region(text: str, region: str) -> str | None:
    # Cached (bounded: at most 40 characters a key): parsing costs ~0.4 ms a number.
    return parse_valid_e164(text, region)


def optout_event(
    *,
    site_uuid: str,
    subject: Subject,
    value: str,
    source: str,
    at: str,
    action: str = "opt_out",
    lead_id: str | None = None,
    reason: str | None = None,
    by: str | None = None,
) -> dict[str, Any]:
    """Build one optout.v1 event; the same facts always give the same ``event_id``.

    Raises:
        OptOutError: an unknown subject, action or source, or an empty value.
    """
    if subject not in ("lead", "phone") or action not in ACTIONS or source not in SOURCES:
        raise OptOutError(f"bad opt-out: subject {subject!r}, action {action!r}, source {source!r}")
    if not site_uuid or not value:
        raise OptOutError("an opt-out needs a site and a subject")
    raw = "\x1f".join((site_uuid, subject, value, action, source, at, reason or ""))
    return {
        "schema": SCHEMA,
        "event_id": hashlib.sha256(raw.encode("utf-8")).hexdigest()[:32],
        "site_uuid": site_uuid,
        "subject": subject,
        "lead_id": value if subject == "lead" else lead_id,
        "phone": value if subject == "phone" else None,
        "action": action,
        "source": source,
        "reason": reason,
        "by": by,
        "at": at,
    }


def parse_optout(raw: Mapping[str, Any]) -> OptOut:
    """Read an optout.v1 event.

    Raises:
        OptOutError: the record is not a valid optout.v1 event.
    """
    if not isinstance(raw, Mapping) or raw.get("schema") != SCHEMA:
        raise OptOutError("not an optout.v1 event")
    subject = raw.get("subject")
    action = raw.get("action")
    source = raw.get("source")
    site = raw.get("site_uuid")
    if subject not in ("lead", "phone") or action not in ACTIONS or source not in SOURCES:
        raise OptOutError("optout.v1 with an unknown subject, action or source")
    if not isinstance(site, str) or not site:
        raise OptOutError("optout.v1 without site_uuid")
    lead = raw.get("lead_id")
    lead = lead if isinstance(lead, str) and lead else None
    phone = raw.get("phone")
    if subject == "phone":
        phone = e164_or_none(phone)
        if phone is None:
            raise OptOutError("optout.v1 for a phone without a valid E.164 number")
    elif lead is None:
        raise OptOutError("optout.v1 for a lead without lead_id")
    else:
        phone = None
    return OptOut(
        event_id=str(raw.get("event_id") or ""),
        site_uuid=site,
        subject=subject,
        lead_id=lead,
        phone=phone,
        action=str(action),
        source=str(source),
        at=str(raw.get("at") or ""),
        reason=raw.get("reason") if isinstance(raw.get("reason"), str) else None,
        by=raw.get("by") if isinstance(raw.get("by"), str) else None,
    )
