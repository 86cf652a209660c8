"""Email addresses: trimmed, NFKC, case-folded, and only when email-shaped."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from realgeeks_sync.app.domain.normalize.text import as_text

__all__ = ["normalize_email"]

_EMAIL_RE = re.compile(
    r"^[^\s@<>()\[\],;:\"\\]{1,64}@(?:[^\s@<>()\[\],;:\"\\.]+\.)+[^\s@<>()\[\],;:\"\\.]{2,}$"
)


def normalize_email(value: object) -> str | None:
    """Trimmed, NFKC, case-folded email; None when empty or not email-shaped."""
    text = as_text(value)
    if text is None:
        return None
    if len(text) <= _CACHED_EMAIL_CHARS:
        return _cached_email(text)
    return _normalize_email_text(text)


# A lead's emails are normalized again on every probe built from it (a record, its
# snapshot, the snapshot before): text -> result, for ordinary lengths (bounded bytes).
_CACHED_EMAIL_CHARS = 128


def _normalize_email_text(text: str) -> str | None:
    text = unicodedata.normalize("NFKC", text).strip().casefold()
    text = unicodedata.normalize("NFKC", text)  # casefold can leave non-NFKC sequences
    if text.startswith("mailto:"):
        text = text[len("mailto:") :]
    if len(text) > 254 or not _EMAIL_RE.match(text):
        return None
    local = text.split("@", 1)[0]
    if local.startswith(".") or local.endswith(".") or ".." in text:
        return None
    return text


_cached_email = lru_cache(maxsize=8192)(_normalize_email_text)
