"""Text shared by every normalizer: plain text from JSON values, blanks, comparison keys."""

from __future__ import annotations

import unicodedata

__all__ = ["as_text", "fold_key", "is_blank", "normalize_text"]


def as_text(value: object) -> str | None:
    """The value as text when it is a string or a plain number, else None."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):  # bool is an int subclass; True is not a name or zip
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else str(value)
    return None


def is_blank(value: object) -> bool:
    """True for null and for strings that are empty or only whitespace (a clear)."""
    return value is None or (isinstance(value, str) and not value.strip())


def normalize_text(value: object) -> str | None:
    """NFKC, whitespace collapsed, trimmed; None when empty or not text."""
    text = as_text(value)
    if text is None:
        return None
    text = " ".join(unicodedata.normalize("NFKC", text).split())
    return text or None


# ASCII fast path of fold_key: letters lower-cased, digits kept, apostrophes dropped,
# everything else a space.
_ASCII_FOLD = {
    i: (chr(i).lower() if chr(i).isalnum() else (None if chr(i) in "'`" else " "))
    for i in range(128)
}


def fold_key(value: object) -> str:
    """A comparison key: accents stripped, case-folded, only letters/digits and spaces."""
    text = as_text(value)
    if not text:
        return ""
    if text.isascii():
        return " ".join(text.translate(_ASCII_FOLD).split())
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    kept = []
    for ch in decomposed:
        if unicodedata.combining(ch):
            continue
        if ch in "'’`":  # O'Brien and OBrien are the same name
            continue
        kept.append(ch if ch.isalnum() else " ")
    return " ".join("".join(kept).split())
