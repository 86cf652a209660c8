"""Phone numbers: E.164 when the number is possible, the raw text always kept."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

import phonenumbers

from realgeeks_sync.app.domain.normalize.e164 import learn_e164
from realgeeks_sync.app.domain.normalize.nanp import nanp_national, read_nanp
from realgeeks_sync.app.domain.normalize.text import as_text

__all__ = ["PhoneNumber", "normalize_phone"]


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
    raw = as_text(value)
    if raw is None:
        return PhoneNumber(raw="")
    if len(raw) <= _CACHED_PHONE_CHARS:
        return _cached_phone(raw, default_region)
    return _parse_phone(raw, default_region)


# libphonenumber is a tenth of a lead's CPU, and a lead's numbers are parsed again on
# every message about it: (text, region) -> PhoneNumber (frozen), for ordinary lengths.
_CACHED_PHONE_CHARS = 64
_MAX_E164_CHARS = 16  # "+" and 15 digits


@lru_cache(maxsize=8192)
def _cached_phone(raw: str, default_region: str | None) -> PhoneNumber:
    return _parse_phone(raw, default_region)


def _parse_phone(raw: str, default_region: str | None) -> PhoneNumber:
    text = unicodedata.normalize("NFKC", raw).strip()
    if not text:
        return PhoneNumber(raw=raw)
    # Most leads' numbers: a NANP number in an everyday shape, answered per prefix with
    # libphonenumber's own answer (app/domain/normalize/nanp.py says why that is exact).
    national = nanp_national(text, default_region)
    if national is not None:
        answer = read_nanp(national)
        if answer is not None:
            return _nanp_phone(raw, national, answer)
    return _parse_with_libphonenumber(raw, text, default_region)


def _parse_with_libphonenumber(raw: str, text: str, default_region: str | None) -> PhoneNumber:
    """`_parse_phone` without the NANP shortcut: libphonenumber's parse of stripped text."""
    try:
        parsed = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException:
        return PhoneNumber(raw=raw)
    # A 7-digit local number is "possible" only with an area code we do not have.
    reason = phonenumbers.is_possible_number_with_reason(parsed)
    if reason != phonenumbers.ValidationResult.IS_POSSIBLE:
        return PhoneNumber(raw=raw)
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    # E.164 allows 15 digits; libphonenumber deems some longer ones possible
    # ("+4910000000000000", 16), which no E.164 key or dialler should carry.
    if len(e164) > _MAX_E164_CHARS:
        return PhoneNumber(raw=raw)
    # Text already in E.164 was read as itself just now: no second parse to prove it.
    if text != e164 and not _surely_stable(parsed) and not _stable_e164(e164):
        return PhoneNumber(raw=raw)
    # is_valid_number looks the region up itself; looked up once here (a fifth of a parse).
    region = phonenumbers.region_code_for_number(parsed)
    valid = region is not None and phonenumbers.is_valid_number_for_region(parsed, region)
    region = region if valid else None
    # The E.164 form reads back as the same number (checked above): the opt-out keys and
    # the call context need not parse it again (app/domain/normalize/e164.py).
    learn_e164(e164, e164 if valid else None)
    return PhoneNumber(
        raw=raw,
        e164=e164,
        extension=parsed.extension or None,
        valid=valid,
        region=region,
    )


def _nanp_phone(raw: str, national: str, answer: tuple[bool, bool, str | None]) -> PhoneNumber:
    """The PhoneNumber `_parse_phone` builds for +1 `national`, given libphonenumber's answer."""
    possible, valid, region = answer
    if not possible:
        return PhoneNumber(raw=raw)
    e164 = "+1" + national
    learn_e164(e164, e164 if valid else None)
    return PhoneNumber(raw=raw, e164=e164, extension=None, valid=valid, region=region)


def _surely_stable(parsed: phonenumbers.PhoneNumber) -> bool:
    """True when re-reading the E.164 form cannot change it (a shortcut for `_stable_e164`).

    Re-reading "+<code><national number>" takes the same country code and national number
    back, and changes digits only where the region's national prefix pattern matches at
    the start of the national number (that is how "+98000000" loses its zero). No match:
    nothing is stripped, the same number comes back, and the second parse is skipped.
    """
    code = parsed.country_code
    if not code:
        return False
    national = phonenumbers.national_significant_number(parsed)
    if len(national) < 2:
        return False  # too short to read back: let the parse decide
    region = phonenumbers.region_code_for_country_code(code)
    metadata = phonenumbers.PhoneMetadata.metadata_for_region_or_calling_code(code, region)
    if metadata is None:
        return False
    prefix = metadata.national_prefix_for_parsing
    return not prefix or _prefix_pattern(prefix).match(national) is None


@lru_cache(maxsize=512)
def _prefix_pattern(prefix: str) -> re.Pattern[str]:
    """The compiled national prefix pattern (about 250 regions: bounded)."""
    return re.compile(prefix)


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
