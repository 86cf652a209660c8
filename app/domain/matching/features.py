"""Features read from a record's normalized fields: street, address, postcode, names, contacts.

Every reader cuts its input to a bounded length first (names.MAX_NAME_CHARS,
profile.MAX_STREET_CHARS, ...), so an absurd field costs what an ordinary one does.
"""

from __future__ import annotations

import re
from functools import lru_cache

from realgeeks_sync.app.domain.matching.names import GENERATIONS, MAX_NAME_CHARS, TITLES
from realgeeks_sync.app.domain.matching.profile import (
    MAX_PLACE_CHARS,
    MAX_POSTCODE_CHARS,
    MAX_STREET_CHARS,
)
from realgeeks_sync.app.domain.normalize import fold_key

__all__ = [
    "address_parts",
    "as_str",
    "email_local",
    "first_key",
    "is_placeholder_phone",
    "name_key",
    "phone_digits",
    "place",
    "postcode",
    "split_last",
    "street_parts",
]

_UNIT_DESIGNATORS = frozenset({"Apt", "Ste", "Unit", "Rm", "Fl", "Bldg", "Spc", "Trlr", "Ph"})
_UNIT_DESIGNATORS |= {"Lot", "#"}
_ZIP_AT_END = re.compile(r"^(.*?)[\s,]*\b(\d{5})(?:-\d{4})?$")


def as_str(value: object) -> str | None:
    """The value when it is a non-empty string."""
    return value if isinstance(value, str) and value else None


def street_parts(street: object) -> tuple[str | None, str | None]:
    """("house|street name", second line) of a normalized street line.

    The second line is what follows the first comma or a unit designator: "12 Main St
    Apt 4" -> ("12|main st", "apt 4"); "6 Tullaroop St, Willaroo" -> ("6|tullaroop st",
    "willaroo").
    """
    line = as_str(street)
    if line is None:
        return None, None
    line = line[:MAX_STREET_CHARS]
    first, _, rest = line.partition(",")
    words = first.split()
    kept: list[str] = []
    for i, word in enumerate(words):
        if i > 0 and word in _UNIT_DESIGNATORS:
            rest = " ".join(words[i:]) + (f" {rest}" if rest else "")
            break
        kept.append(word)
    second = fold_key(rest) or None
    folded = fold_key(" ".join(kept)).split()
    if not folded:
        return None, second
    if any(ch.isdigit() for ch in folded[0]) and len(folded) > 1:
        return f"{folded[0]}|{' '.join(folded[1:])}", second
    return f"|{' '.join(folded)}", second


def address_parts(address: object) -> tuple[str | None, str | None, str | None, str | None]:
    """(street, city, state, ZIP) of a one-line "street, city, ST 96813" address."""
    line = as_str(address)
    if line is None:
        return None, None, None, None
    line = line[: MAX_STREET_CHARS + MAX_PLACE_CHARS + 16]
    zip5 = None
    match = _ZIP_AT_END.match(line)
    if match:
        line, zip5 = match.group(1), match.group(2)
    parts = [part.strip() for part in line.split(",")]
    city = parts[1] if len(parts) > 1 else None
    state = parts[2] if len(parts) > 2 else None
    if city and state is None and " " in city and zip5:
        city, _, state = city.rpartition(" ")  # "Honolulu HI 96813"
    return parts[0] or None, city or None, state or None, zip5


def postcode(value: str | None) -> str | None:
    """A postcode as a key: US ZIP+4 cut to 5 digits, others letters and digits upper-cased."""
    if not value:
        return None
    compact = "".join(ch for ch in value[:MAX_POSTCODE_CHARS] if ch.isalnum()).upper()
    if len(compact) == 9 and compact.isdigit() and "-" in value:
        return compact[:5]  # 96813-1234
    return compact if 3 <= len(compact) <= 10 and compact.isascii() else None


def split_last(name: str) -> tuple[str, str | None]:
    """A folded name without a trailing generational suffix (Jr, Sr, III), and the suffix."""
    words = name.split()
    if len(words) > 1 and words[-1] in GENERATIONS:
        return " ".join(words[:-1]), words[-1]
    return name, None


def name_key(name: object) -> str:
    """Folded name, cut to MAX_NAME_CHARS characters."""
    text = name[: MAX_NAME_CHARS * 2] if isinstance(name, str) else name
    return fold_key(text)[:MAX_NAME_CHARS].strip()


def first_key(first: object) -> str:
    """Folded first name without a leading title (Dr, Mrs)."""
    words = name_key(first).split()
    while len(words) > 1 and words[0] in TITLES:
        words = words[1:]
    return " ".join(words)


def place(value: object) -> str:
    """A folded city or state, cut to MAX_PLACE_CHARS characters."""
    text = value[: MAX_PLACE_CHARS * 2] if isinstance(value, str) else value
    return fold_key(text)[:MAX_PLACE_CHARS].strip()


def phone_digits(e164: str) -> str:
    """Digits of an E.164 number."""
    return e164.lstrip("+")


def is_placeholder_phone(e164: str) -> bool:
    """Numbers typed to get past a form (555-555-5555, 123-456-7890) identify no one."""
    # Asked of a lead's numbers for each of a decision's probes; probes cut them to 20.
    return _is_placeholder_cached(e164) if len(e164) <= 20 else _is_placeholder(e164)


def _is_placeholder(e164: str) -> bool:
    digits = phone_digits(e164)
    national = digits[1:] if len(digits) == 11 and digits[0] == "1" else digits
    subscriber = national[-7:]
    if len(set(national)) <= 2 or len(set(subscriber)) == 1:
        return True
    runs = ("0123456789", "1234567890", "9876543210", "0987654321")
    return any(national in run or subscriber in run for run in runs)


_is_placeholder_cached = lru_cache(maxsize=4096)(_is_placeholder)


def email_local(email: str) -> str:
    """Email local part without +tag and punctuation ("john.smith+x" -> "johnsmith")."""
    # Remembered for addresses of ordinary length: each is compared with every candidate's.
    return _cached_email_local(email) if len(email) <= 128 else _strip_email_local(email)


_NOT_ALNUM = re.compile(r"[\W_]+")  # \w is str.isalnum() plus "_"


def _strip_email_local(email: str) -> str:
    return _NOT_ALNUM.sub("", email.split("@", 1)[0].split("+", 1)[0])


_cached_email_local = lru_cache(maxsize=16384)(_strip_email_local)
