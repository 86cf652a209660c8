"""Real Geeks identifiers: lead ids and site UUIDs as they are stored and looked up."""

from __future__ import annotations

from realgeeks_sync.app.domain.normalize.text import as_text

__all__ = ["normalize_lead_id", "normalize_site_uuid"]


def normalize_lead_id(value: object) -> str | None:
    """Real Geeks lead id as stored: trimmed, dashes and braces removed, lower case."""
    text = as_text(value)
    if text is None:
        return None
    text = text.strip().strip("{}").replace("-", "").lower()
    return text or None


def normalize_site_uuid(value: object) -> str | None:
    """Site UUID trimmed and lower-cased (dashes kept: it appears in Real Geeks URLs)."""
    text = as_text(value)
    if text is None:
        return None
    return text.strip().lower() or None
