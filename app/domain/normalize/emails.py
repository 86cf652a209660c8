"""Email addresses: trimmed, NFKC, case-folded, and only when email-shaped."""

from __future__ import annotations

import re
import unicodedata

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
