"""Small readers of untrusted values (text, numbers, times, phones, flags) for a context."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from realgeeks_sync.app.domain.normalize.e164 import valid_e164

__all__ = [
    "bounded",
    "clean_text",
    "dialable",
    "first_number",
    "first_text",
    "flag",
    "iso",
    "max_of",
    "min_of",
    "number",
    "parse_time",
    "role_key",
    "scalar",
    "squash",
]

_FALSE_WORDS = frozenset({"false", "no", "n", "0", "off", "declined", "revoked"})
_TRUE_WORDS = frozenset({"true", "yes", "y", "1", "on", "granted", "given"})
_ELLIPSIS = "…"


def clean_text(value: Any) -> str | None:
    """Return a trimmed single-line string for str/number values, else None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, int | float):
        value = str(value)
    if not isinstance(value, str):
        return None
    # Lone surrogates from JSON escapes would make the UTF-8 Kafka encode fail.
    value = value.encode("utf-8", "replace").decode("utf-8")
    return " ".join(value.split()) or None


def first_text(source: Mapping[str, Any], keys: Sequence[str]) -> str | None:
    """Return the first non-empty text among ``keys``."""
    for key in keys:
        value = clean_text(source.get(key))
        if value:
            return value
    return None


def first_number(source: Mapping[str, Any], keys: Sequence[str]) -> float | None:
    """Return the first finite non-negative number among ``keys`` ("$450,000" accepted)."""
    for key in keys:
        value = number(source.get(key))
        if value is not None:
            return value
    return None


def number(value: Any) -> float | int | None:
    """Parse a number from int/float/str ("$1,250.50" -> 1250.5); None if not one."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str):
        cleaned = re.sub(r"[$,\s]", "", value)
        try:
            value = float(cleaned)
        except ValueError:
            return None
    if not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        return None
    return int(value) if float(value).is_integer() else float(value)


def min_of(entries: Sequence[Mapping[str, Any]], key: str) -> float | None:
    """Return the smallest known value of ``key``."""
    values = [e[key] for e in entries if e.get(key) is not None]
    return min(values) if values else None


def max_of(entries: Sequence[Mapping[str, Any]], key: str) -> float | None:
    """Return the largest known value of ``key``."""
    values = [e[key] for e in entries if e.get(key) is not None]
    return max(values) if values else None


def parse_time(value: Any) -> datetime | None:
    """Parse ISO 8601 (naive taken as UTC) to an aware UTC datetime, else None."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str) and value.strip():
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            return None
    else:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def iso(value: datetime | None) -> str | None:
    """Return ISO 8601 text or None."""
    return value.isoformat() if value else None


def dialable(value: Any) -> str | None:
    """Return the value when it is a valid E.164 number, else None."""
    text = clean_text(value)
    if not text or not text.startswith("+"):
        return None
    return valid_e164(text)


def role_key(role: str | None) -> str:
    """Return the role case-folded with spaces collapsed."""
    return " ".join((role or "").casefold().split())


def flag(value: Any) -> bool | None:
    """Read a consent flag: True/False for clear values, None when unclear."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    if isinstance(value, str):
        word = value.strip().casefold()
        if word in _TRUE_WORDS:
            return True
        if word in _FALSE_WORDS:
            return False
    return None


def squash(text: str) -> str:
    """Case-fold and drop punctuation/spacing so repeat views of one place match."""
    return re.sub(r"[^0-9a-z]+", "", text.casefold())


def bounded(text: str, limit: int) -> str:
    """Cut ``text`` to ``limit`` characters, marking the cut."""
    if len(text) <= limit:
        return text
    return text[: max(limit - 1, 0)].rstrip() + _ELLIPSIS


def scalar(value: Any, limit: int) -> str | int | float | bool:
    """Coerce a variable to str/int/float/bool; None becomes "" and text is bounded."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value if math.isfinite(value) else ""
    if value is None:
        return ""
    return bounded(str(value), limit)
