"""People's names for display: whitespace, stray punctuation and shouting case tidied."""

from __future__ import annotations

import re

from realgeeks_sync.app.domain.normalize.text import normalize_text

__all__ = ["capitalize_words", "normalize_name"]

_LETTER_RUN = re.compile(r"[^\W\d_]+")


def capitalize_words(text: str) -> str:
    """Capitalize each letter run (Jean-Luc, O'Brien) but not a lone letter after '."""

    def fix(match: re.Match[str]) -> str:
        word = match.group(0)
        start = match.start()
        if len(word) == 1 and start > 0 and text[start - 1] in "'’":
            return word.lower()  # "John's", not "John'S"
        return word.capitalize()  # "ß" -> "Ss", stable on a second pass

    return _LETTER_RUN.sub(fix, text)


def normalize_name(value: object) -> str | None:
    """Tidy a person's name for display: whitespace, stray punctuation, shouting case.

    Mixed case is kept as typed (McDonald, DeShawn); all-upper or all-lower input is
    capitalized per word.
    """
    text = _name_once(value)
    # Case mapping and Unicode normalization can change a few scripts again on a second
    # pass (Greek with combining marks): settle on a fixed point so the result is stable.
    for _ in range(4):
        if text is None:
            return None
        again = _name_once(text)
        if again == text:
            break
        text = again
    return text


def _name_once(value: object) -> str | None:
    text = normalize_text(value)
    if text is None:
        return None
    text = text.strip(' ,;:"')
    if not text:
        return None
    if text == text.upper() or text == text.lower():
        fixed = capitalize_words(text)
        if capitalize_words(fixed) == fixed:
            text = fixed
    return text
