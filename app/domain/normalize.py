"""Pure normalizers for Real Geeks lead fields: emails, phones, names, addresses, times.

Nothing here raises on odd input except `normalize_timestamp`, which raises
`TimestampError` for a value that is not a timestamp: webhook bodies are JSON written by
people and CRMs, so every field may hold a number, a list, null or a nested object.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import phonenumbers

__all__ = [
    "DROPPED_LEAD_KEYS",
    "PhoneNumber",
    "TimestampError",
    "fold_key",
    "is_blank",
    "normalize_city",
    "normalize_email",
    "normalize_lead",
    "normalize_lead_id",
    "normalize_name",
    "normalize_phone",
    "normalize_role",
    "normalize_site_uuid",
    "normalize_state",
    "normalize_street",
    "normalize_text",
    "normalize_timestamp",
    "normalize_zip",
    "timestamp_ns",
]


class TimestampError(ValueError):
    """A value that should be an ISO 8601 / RFC 3339 timestamp is not one."""


# Body keys that are per-message, not lead state: the action is the event's op, the
# id becomes source_lead_id, and activities travel on activities.normalized.
DROPPED_LEAD_KEYS = frozenset({"action", "activities"})

_EMAIL_FIELDS = ("email", "second_email", "agent_email")
_PHONE_FIELDS = ("phone", "phone2")
_NAME_FIELDS = ("first_name", "last_name", "agent_name")
_STREET_FIELDS = ("street_address", "address")
_TEXT_FIELDS = ("source", "source_details", "source_system")


def _as_text(value: object) -> str | None:
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
    text = _as_text(value)
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
    text = _as_text(value)
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


# --- email -----------------------------------------------------------------------------

_EMAIL_RE = re.compile(
    r"^[^\s@<>()\[\],;:\"\\]{1,64}@(?:[^\s@<>()\[\],;:\"\\.]+\.)+[^\s@<>()\[\],;:\"\\.]{2,}$"
)


def normalize_email(value: object) -> str | None:
    """Trimmed, NFKC, case-folded email; None when empty or not email-shaped."""
    text = _as_text(value)
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


# --- phone -----------------------------------------------------------------------------


@dataclass(frozen=True)
class PhoneNumber:
    """A parsed phone: E.164 when the number is possible, the raw text always kept."""

    raw: str
    e164: str | None = None
    extension: str | None = None
    valid: bool = False
    region: str | None = None


def normalize_phone(value: object, default_region: str | None = "US") -> PhoneNumber:
    """Parse a phone number; never raises.

    `e164` is set when the number has a possible length for its country (so test-range
    and newly opened numbers survive); `valid` says whether libphonenumber knows the
    range. Numbers without a leading + are read in `default_region`.
    """
    raw = _as_text(value)
    if raw is None:
        return PhoneNumber(raw="")
    if len(raw) <= _CACHED_PHONE_CHARS:
        return _cached_phone(raw, default_region)
    return _parse_phone(raw, default_region)


# libphonenumber is a tenth of a lead's CPU, and a lead's numbers are parsed again on
# every message about it: (text, region) -> PhoneNumber (frozen), for ordinary lengths.
_CACHED_PHONE_CHARS = 64


@lru_cache(maxsize=8192)
def _cached_phone(raw: str, default_region: str | None) -> PhoneNumber:
    return _parse_phone(raw, default_region)


def _parse_phone(raw: str, default_region: str | None) -> PhoneNumber:
    text = unicodedata.normalize("NFKC", raw).strip()
    if not text:
        return PhoneNumber(raw=raw)
    try:
        parsed = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException:
        return PhoneNumber(raw=raw)
    # A 7-digit local number is "possible" only with an area code we do not have.
    reason = phonenumbers.is_possible_number_with_reason(parsed)
    if reason != phonenumbers.ValidationResult.IS_POSSIBLE:
        return PhoneNumber(raw=raw)
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    if not _stable_e164(e164):
        return PhoneNumber(raw=raw)
    valid = phonenumbers.is_valid_number(parsed)
    region = phonenumbers.region_code_for_number(parsed) if valid else None
    return PhoneNumber(
        raw=raw,
        e164=e164,
        extension=parsed.extension or None,
        valid=valid,
        region=region,
    )


def _stable_e164(e164: str) -> bool:
    """True when the E.164 form reads back as itself.

    A few malformed inputs ("+98000000") lose a national-prefix zero on every parse;
    a key that changes when re-read would never match itself again.
    """
    try:
        again = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return False
    return phonenumbers.format_number(again, phonenumbers.PhoneNumberFormat.E164) == e164


# --- names -----------------------------------------------------------------------------

_LETTER_RUN = re.compile(r"[^\W\d_]+")


def _capitalize_words(text: str) -> str:
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
        fixed = _capitalize_words(text)
        if _capitalize_words(fixed) == fixed:
            text = fixed
    return text


# --- addresses -------------------------------------------------------------------------

# USPS Publication 28 street suffixes and the spellings people type for them.
_SUFFIXES: dict[str, str] = {
    "alley": "Aly", "aly": "Aly", "avenue": "Ave", "ave": "Ave", "av": "Ave",
    "aven": "Ave", "avenu": "Ave", "avn": "Ave", "avnue": "Ave", "boulevard": "Blvd",
    "blvd": "Blvd", "boul": "Blvd", "boulv": "Blvd", "center": "Ctr", "ctr": "Ctr",
    "centre": "Ctr", "circle": "Cir", "cir": "Cir", "circ": "Cir", "court": "Ct",
    "ct": "Ct", "cove": "Cv", "cv": "Cv", "creek": "Crk", "crk": "Crk",
    "crescent": "Cres", "cres": "Cres", "crossing": "Xing", "xing": "Xing",
    "drive": "Dr", "dr": "Dr", "driv": "Dr", "drv": "Dr", "expressway": "Expy",
    "expy": "Expy", "freeway": "Fwy", "fwy": "Fwy", "gardens": "Gdns", "gdns": "Gdns",
    "glen": "Gln", "gln": "Gln", "grove": "Grv", "grv": "Grv", "heights": "Hts",
    "hts": "Hts", "highway": "Hwy", "hwy": "Hwy", "highwy": "Hwy", "hill": "Hl",
    "hl": "Hl", "hills": "Hls", "hls": "Hls", "junction": "Jct", "jct": "Jct",
    "lane": "Ln", "ln": "Ln", "loop": "Loop", "manor": "Mnr", "mnr": "Mnr",
    "meadows": "Mdws", "mdws": "Mdws", "mount": "Mt", "mt": "Mt", "mountain": "Mtn",
    "mtn": "Mtn", "parkway": "Pkwy", "pkwy": "Pkwy", "pky": "Pkwy", "parkwy": "Pkwy",
    "place": "Pl", "pl": "Pl", "plaza": "Plz", "plz": "Plz", "point": "Pt", "pt": "Pt",
    "ridge": "Rdg", "rdg": "Rdg", "road": "Rd", "rd": "Rd", "square": "Sq", "sq": "Sq",
    "street": "St", "st": "St", "str": "St", "saint": "St", "terrace": "Ter",
    "ter": "Ter", "terr": "Ter", "trail": "Trl", "trl": "Trl", "turnpike": "Tpke",
    "tpke": "Tpke", "valley": "Vly", "vly": "Vly", "view": "Vw", "vw": "Vw",
    "village": "Vlg", "vlg": "Vlg", "way": "Way", "wy": "Way",
}  # fmt: skip

_DIRECTIONALS: dict[str, str] = {
    "north": "N", "n": "N", "south": "S", "s": "S", "east": "E", "e": "E",
    "west": "W", "w": "W", "northeast": "NE", "ne": "NE", "northwest": "NW",
    "nw": "NW", "southeast": "SE", "se": "SE", "southwest": "SW", "sw": "SW",
}  # fmt: skip

# Secondary unit designators (USPS C2), only those that are not also common street words.
_UNITS: dict[str, str] = {
    "apartment": "Apt", "apt": "Apt", "suite": "Ste", "ste": "Ste", "unit": "Unit",
    "room": "Rm", "rm": "Rm", "floor": "Fl", "fl": "Fl", "building": "Bldg",
    "bldg": "Bldg", "space": "Spc", "spc": "Spc", "trailer": "Trlr", "trlr": "Trlr",
    "penthouse": "Ph", "ph": "Ph", "lot": "Lot", "#": "#",
}  # fmt: skip

_ORDINALS: dict[str, str] = {
    "first": "1st", "second": "2nd", "third": "3rd", "fourth": "4th", "fifth": "5th",
    "sixth": "6th", "seventh": "7th", "eighth": "8th", "ninth": "9th", "tenth": "10th",
    "eleventh": "11th", "twelfth": "12th",
}  # fmt: skip

_ORDINAL_RE = re.compile(r"^\d+(st|nd|rd|th)$")
_STREET_PUNCT = re.compile(r"[^\w\s#/,-]")


def normalize_street(value: object) -> str | None:
    """Canonical street line: punctuation dropped, USPS abbreviations, tidy case.

    "123 north Main Street, Apartment #4b" -> "123 N Main St Apt 4B". Abbreviations apply
    wherever the word appears: the form is a key first and a display second, so the same
    address typed two ways must come out identical.
    """
    text = _street_once(value)
    # As for names: capitalizing Greek with combining marks can yield a form the next
    # pass changes again (hypothesis found "ῢ"); a key must be a fixed point.
    for _ in range(4):
        if text is None:
            return None
        again = _street_once(text)
        if again == text:
            break
        text = again
    return text


def _street_once(value: object) -> str | None:
    text = normalize_text(value)
    if text is None:
        return None
    text = text.replace(".", "")  # "St." -> "St", "P.O." -> "PO"
    text = _STREET_PUNCT.sub(" ", text)
    text = text.replace("#", " # ").replace(",", " , ")
    words = text.split()
    out: list[str] = []
    i = 0
    while i < len(words):
        word = words[i]
        low = word.casefold()
        if low in ("po", "p") and _po_box_follows(words, i):
            out.append("PO Box")
            i += 2 if low == "po" else 3
            continue
        if low == "post" and [w.casefold() for w in words[i + 1 : i + 3]] == ["office", "box"]:
            out.append("PO Box")
            i += 3
            continue
        if word == ",":
            # Commas separate street, city and state in a one-line address; keep one.
            if out and out[-1] != ",":
                out.append(",")
        elif low in _UNITS:
            designator = _UNITS[low]
            # "Apt #4" carries the designator twice; keep the first.
            if designator == "#" and out and out[-1] in _UNITS.values():
                i += 1
                continue
            if out and out[-1] == ",":
                out.pop()  # "Main St, Apt 4" and "Main St Apt 4" are one address
            out.append(designator)
        elif low in _SUFFIXES:
            out.append(_SUFFIXES[low])
        elif low in _DIRECTIONALS:
            out.append(_DIRECTIONALS[low])
        elif low in _ORDINALS:
            out.append(_ORDINALS[low])
        elif word[:1].isdigit():
            out.append(low if _ORDINAL_RE.match(low) else word.upper())
        elif out and out[-1] == "," and word.upper() in _STATE_CODES:
            out.append(word.upper())  # ", HI 96813" in a one-line address
        else:
            out.append(_capitalize_words(word))
        i += 1
    while out and out[-1] == ",":
        out.pop()
    return " ".join(out).replace(" ,", ",") or None


def _po_box_follows(words: list[str], i: int) -> bool:
    """True when words[i:] spells "PO Box" or "P O Box"."""
    if words[i].casefold() == "po":
        return i + 1 < len(words) and words[i + 1].casefold() == "box"
    return (
        i + 2 < len(words) and words[i + 1].casefold() == "o" and words[i + 2].casefold() == "box"
    )


def normalize_city(value: object) -> str | None:
    """City for display: whitespace, periods dropped, shouting case fixed."""
    text = normalize_text(value)
    if text is None:
        return None
    return normalize_name(text.replace(".", ""))


_STATES: dict[str, str] = {
    "alabama": "AL", "alaska": "AK", "arizona": "AZ", "arkansas": "AR",
    "california": "CA", "colorado": "CO", "connecticut": "CT", "delaware": "DE",
    "district of columbia": "DC", "florida": "FL", "georgia": "GA", "hawaii": "HI",
    "idaho": "ID", "illinois": "IL", "indiana": "IN", "iowa": "IA", "kansas": "KS",
    "kentucky": "KY", "louisiana": "LA", "maine": "ME", "maryland": "MD",
    "massachusetts": "MA", "michigan": "MI", "minnesota": "MN", "mississippi": "MS",
    "missouri": "MO", "montana": "MT", "nebraska": "NE", "nevada": "NV",
    "new hampshire": "NH", "new jersey": "NJ", "new mexico": "NM", "new york": "NY",
    "north carolina": "NC", "north dakota": "ND", "ohio": "OH", "oklahoma": "OK",
    "oregon": "OR", "pennsylvania": "PA", "rhode island": "RI", "south carolina": "SC",
    "south dakota": "SD", "tennessee": "TN", "texas": "TX", "utah": "UT",
    "vermont": "VT", "virginia": "VA", "washington": "WA", "west virginia": "WV",
    "wisconsin": "WI", "wyoming": "WY", "puerto rico": "PR", "guam": "GU",
    "us virgin islands": "VI", "american samoa": "AS",
    "northern mariana islands": "MP",
}  # fmt: skip
_STATE_CODES = frozenset(_STATES.values())


def normalize_state(value: object) -> str | None:
    """Two-letter USPS code for a US state or territory name or code; else tidy text."""
    text = normalize_text(value)
    if text is None:
        return None
    key = fold_key(text)
    if key.upper() in _STATE_CODES:
        return key.upper()
    if key in _STATES:
        return _STATES[key]
    return normalize_name(text.replace(".", ""))


_ZIP_RE = re.compile(r"^(\d{5})(?:-?(\d{4}))?$")


def normalize_zip(value: object) -> str | None:
    """US ZIP as "96813" or "96813-1234" (numbers zero-padded); other codes upper-cased."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 99999:
        return f"{value:05d}"  # JSON numbers lose New England's leading zero
    text = normalize_text(value)
    if text is None:
        return None
    compact = text.replace(" ", "")
    match = _ZIP_RE.match(compact)
    if match:
        return match.group(1) + (f"-{match.group(2)}" if match.group(2) else "")
    return text.upper()


_ROLES: dict[str, str] = {
    "buyer": "Buyer", "seller": "Seller", "buyer and seller": "Buyer and Seller",
    "renter": "Renter", "potential seller": "Potential Seller",
}  # fmt: skip


def normalize_role(value: object) -> str | None:
    """Real Geeks role in its documented spelling; unknown roles tidied, not dropped."""
    text = normalize_text(value)
    if text is None:
        return None
    return _ROLES.get(fold_key(text), text)


# --- ids and times ---------------------------------------------------------------------


def normalize_lead_id(value: object) -> str | None:
    """Real Geeks lead id as stored: trimmed, dashes and braces removed, lower case."""
    text = _as_text(value)
    if text is None:
        return None
    text = text.strip().strip("{}").replace("-", "").lower()
    return text or None


def normalize_site_uuid(value: object) -> str | None:
    """Site UUID trimmed and lower-cased (dashes kept: it appears in Real Geeks URLs)."""
    text = _as_text(value)
    if text is None:
        return None
    return text.strip().lower() or None


_TS_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})"
    r"(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?"
    r"\s*(Z|z|UTC|GMT|[+-]\d{2}(?::?\d{2})?)?)?$"
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _parse_timestamp(value: object) -> tuple[datetime, int]:
    """(UTC datetime without fraction, nanoseconds) for an ISO 8601 / RFC 3339 string.

    Raises:
        TimestampError: not a string, or not a valid date and time.
    """
    if not isinstance(value, str):
        raise TimestampError(f"timestamp must be a string, not {type(value).__name__}")
    match = _TS_RE.match(value.strip())
    if match is None:
        raise TimestampError("not an ISO 8601 timestamp")
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    # Real Geeks sends 9 fractional digits; datetime keeps 6, so carry ns separately.
    nanos = int((fraction or "0")[:9].ljust(9, "0"))
    offset = timedelta(0)
    if zone and zone[0] in "+-":
        digits = zone[1:].replace(":", "")
        hours, minutes = int(digits[:2]), int(digits[2:4] or "0")
        if hours > 23 or minutes > 59:
            raise TimestampError("timestamp offset out of range")
        offset = timedelta(hours=hours, minutes=minutes)
        if zone[0] == "-":
            offset = -offset
    try:
        local = datetime(
            int(year), int(month), int(day), int(hour or 0), int(minute or 0),
            int(second or 0),
        )  # fmt: skip
        utc = (local - offset).replace(tzinfo=UTC)
    except (ValueError, OverflowError) as exc:
        raise TimestampError("timestamp out of range") from exc
    return utc, nanos


def normalize_timestamp(value: object) -> str:
    """UTC ISO 8601 with "Z", up to 9 fractional digits, trailing zeros dropped.

    Accepts "Z", "+hh:mm" offsets, a space for "T", a comma for the decimal point;
    a time without a zone is read as UTC.

    Raises:
        TimestampError: the value is not a timestamp.
    """
    utc, nanos = _parse_timestamp(value)
    text = (
        f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}"
        f"T{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}"
    )
    fraction = f"{nanos:09d}".rstrip("0")
    return f"{text}.{fraction}Z" if fraction else f"{text}Z"


def timestamp_ns(value: object) -> int:
    """Nanoseconds since the Unix epoch, for ordering timestamps exactly.

    Raises:
        TimestampError: the value is not a timestamp.
    """
    utc, nanos = _parse_timestamp(value)
    delta = utc - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + nanos


# --- the whole lead --------------------------------------------------------------------


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
            _put(lead, key, value, normalize_name(value))
        elif key in _STREET_FIELDS:
            _put(lead, key, value, normalize_street(value))
        elif key == "city":
            _put(lead, key, value, normalize_city(value))
        elif key == "state":
            _put(lead, key, value, normalize_state(value))
        elif key == "zip":
            _put(lead, key, value, normalize_zip(value))
        elif key == "role":
            _put(lead, key, value, normalize_role(value))
        elif key in _TEXT_FIELDS:
            _put(lead, key, value, normalize_text(value))
        elif key == "id":
            _put(lead, key, value, normalize_lead_id(value))
        elif key == "created":
            _put(lead, key, value, _timestamp_or_none(value))
        else:
            lead[key] = value
    return lead


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
