"""Normalizers: exact cases for each field, and properties that must hold for any input."""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import phonenumbers
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from realgeeks_sync.app.domain.call_context.values import dialable
from realgeeks_sync.app.domain.dialing.optouts import e164_or_none
from realgeeks_sync.app.domain.normalize import (
    PhoneNumber,
    TimestampError,
    fold_key,
    is_blank,
    nanp,
    normalize_city,
    normalize_email,
    normalize_lead,
    normalize_lead_id,
    normalize_name,
    normalize_phone,
    normalize_role,
    normalize_site_uuid,
    normalize_state,
    normalize_street,
    normalize_text,
    normalize_timestamp,
    normalize_zip,
    phones,
    times,
    timestamp_ns,
    timestamp_text,
)
from realgeeks_sync.app.domain.normalize import e164 as e164_module
from realgeeks_sync.app.domain.normalize.e164 import MAX_E164_ANSWERS, learn_e164, valid_e164
from tests.strategies import json_values as any_json

# The created body of Real Geeks' own receiver fixture (new_lead.json), as parsed.
FIXTURE_BODY = {
    "agent_name": "Ben Harper", "first_name": "Jack", "site_domain": "www.mysite.com",
    "activities": [{"source": "Website Property Search", "type": "visited",
                    "description": "First visit (initial sign-up)",
                    "created": "2015-10-01T06:14:01.632792Z"}],
    "agent_email": "ben@mail.com", "created": "2015-10-01T06:14:01.597026Z",
    "id": "a27c20af4497415d9e4e7334dd1d40d2", "phone": "808-817-2382", "last_name": "Johnson",
    "site_uuid": "5ead6dd1-2cb9-4f80-80fc-5716b05c90ba", "source": "Website Property Search",
    "action": "created", "role": "Buyer", "partner_id": "ffffffffuuuuuuuuuu",
    "email": "jack@mail.com",
}  # fmt: skip
E164 = re.compile(r"^\+[1-9]\d{3,14}$")

# Any JSON value, nested: what a webhook body may hold in any field.
json_values = any_json(text=None, keys=None, items=3, entries=3, leaves=8, floats="finite")
# Text including lone surrogates, which json.loads produces from "\ud800".
any_text = st.text(st.characters(codec=None, exclude_categories=()), max_size=60)


# --- email -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  Jack@Mail.COM ", "jack@mail.com"),
        ("JACK.Johnson+homes@Gmail.com", "jack.johnson+homes@gmail.com"),
        ("mailto:ben@mail.com", "ben@mail.com"),
        ("", None),
        ("   ", None),
        ("jack", None),
        ("jack@mail", None),
        ("jack@@mail.com", None),
        ("jack smith@mail.com", None),
        ("a..b@mail.com", None),
        (".jack@mail.com", None),
        (42, None),
        (None, None),
        (["jack@mail.com"], None),
    ],
)
def test_normalize_email(raw: object, expected: str | None) -> None:
    assert normalize_email(raw) == expected


@given(any_text)
def test_normalize_email_is_idempotent_and_never_raises(raw: str) -> None:
    once = normalize_email(raw)
    if once is not None:
        assert normalize_email(once) == once
        assert once == once.strip()


# --- phone -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "(808) 817-2382",
        "808.817.2382",
        "+1 808 817 2382",
        "808-817-2382",
        "8088172382",
        "1-808-817-2382",
        " +1 (808) 817-2382 ",
        8088172382,
    ],
)
def test_phone_formats_give_one_e164(raw: object) -> None:
    phone = normalize_phone(raw)
    assert phone.e164 == "+18088172382"
    assert phone.valid is True
    assert phone.region == "US"


def test_phone_extension_is_kept_apart() -> None:
    assert normalize_phone("808-817-2382 x123").extension == "123"
    assert normalize_phone("+1 808 817 2382 ext. 5").extension == "5"
    assert normalize_phone("808-817-2382 x123").e164 == "+18088172382"


def test_phone_keeps_raw_text() -> None:
    assert normalize_phone(" (808) 817-2382 ").raw == " (808) 817-2382 "


def test_unstable_e164_is_rejected() -> None:
    assert normalize_phone("+98000000").e164 is None  # loses a zero on every parse


def test_foreign_number_with_plus_ignores_default_region() -> None:
    phone = normalize_phone("+55 83 1234-1234")
    assert phone.e164 == "+558312341234"
    assert phone.valid is False  # Brazilian landlines start with 2-5


@pytest.mark.parametrize("raw", ["", "ext. 5", "abc", "+", "0", "555-1234", "12", None, [1]])
def test_phone_without_a_possible_number(raw: object) -> None:
    phone = normalize_phone(raw)
    assert phone.e164 is None
    assert phone.valid is False


def test_phone_unknown_region_does_not_raise() -> None:
    assert normalize_phone("808-817-2382", "XX") == PhoneNumber(raw="808-817-2382")
    assert normalize_phone("+18088172382", None).e164 == "+18088172382"


@settings(max_examples=150)
@given(st.one_of(any_text, st.from_regex(r"\+?[0-9 ().x-]{0,30}", fullmatch=True)))
@example("+4910000000000000")  # possible to libphonenumber, 16 digits: not E.164
def test_phone_never_raises_and_e164_is_e164(raw: str) -> None:
    phone = normalize_phone(raw)
    assert phone.raw == raw
    if phone.e164 is not None:
        assert E164.match(phone.e164)
        assert normalize_phone(phone.e164).e164 == phone.e164  # idempotent


def _phone_as_libphonenumber_says(raw: str, region: str | None) -> tuple[object, ...]:
    """The reading of a number with libphonenumber's own calls, none skipped."""
    text = unicodedata.normalize("NFKC", raw).strip()
    try:
        parsed = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return (None, None, False, None)
    reason = phonenumbers.is_possible_number_with_reason(parsed)
    if reason != phonenumbers.ValidationResult.IS_POSSIBLE:
        return (None, None, False, None)
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    if len(e164) > 16:  # E.164's 15 digits
        return (None, None, False, None)
    again = phonenumbers.format_number(
        phonenumbers.parse(e164, None), phonenumbers.PhoneNumberFormat.E164
    )
    if again != e164:
        return (None, None, False, None)
    valid = phonenumbers.is_valid_number(parsed)
    region_code = phonenumbers.region_code_for_number(parsed) if valid else None
    return (e164, parsed.extension or None, valid, region_code)


# Phone-like text (and a few numbers whose parse is unusual) in three default regions.
_PHONE_TEXT = st.one_of(
    st.from_regex(r"\+?[0-9 ().x-]{1,24}", fullmatch=True),
    st.sampled_from(["+98000000", "+18088172382", "+80012345678", "+442079460958"]),
)
_REGIONS = st.sampled_from(["US", "GB", None])


@settings(max_examples=300)
@given(_PHONE_TEXT, _REGIONS)
def test_phone_reads_as_libphonenumber_reads_it(raw: str, region: str | None) -> None:
    # normalize_phone skips a second parse and a second region lookup where they are sure
    # to agree; what it returns must be what the full sequence of calls gives.
    phone = normalize_phone(raw + " ", region)  # past the cache: a fresh parse
    assert (phone.e164, phone.extension, phone.valid, phone.region) == (
        _phone_as_libphonenumber_says(raw, region)
    )


def _valid_e164_as_libphonenumber_says(text: str) -> str | None:
    try:
        parsed = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


@settings(max_examples=300)
@given(_PHONE_TEXT, _REGIONS)
def test_what_normalize_phone_teaches_is_what_a_fresh_parse_says(
    raw: str, region: str | None
) -> None:
    # normalize_phone records the answer for the E.164 form it produced; the opt-out keys
    # and the call context read it instead of parsing again. It must be libphonenumber's.
    phone = normalize_phone(raw + "  ", region)  # past the phone cache: it parses and teaches
    if phone.e164 is not None:
        assert valid_e164(phone.e164) == _valid_e164_as_libphonenumber_says(phone.e164)
        assert e164_or_none(phone.e164) == valid_e164(phone.e164)
        assert dialable(phone.e164) == valid_e164(phone.e164)


def test_valid_e164_answers_stay_bounded() -> None:
    for n in range(MAX_E164_ANSWERS + 10):
        learn_e164(f"+00{n}", None)  # true answers (no country code 0): other tests share them
    assert valid_e164("+18088172382") == "+18088172382"  # forgotten or not: parsed again
    assert len(e164_module._answers) <= MAX_E164_ANSWERS


_CODES = sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE)
_REGIONS = sorted(phonenumbers.SUPPORTED_REGIONS)


@settings(max_examples=400)
@given(
    st.one_of(
        st.builds(
            lambda c, d: f"+{c}{d}",
            st.sampled_from(_CODES),
            st.from_regex(r"[0-9]{2,14}", fullmatch=True),
        ),
        st.from_regex(r"0?[0-9]{2,14}", fullmatch=True),
    ),
    st.sampled_from([*_REGIONS, None]),
)
@example("+98000000", None)
@example("+9800000000", None)
@example("18088172382", "US")
def test_e164_stability_shortcut_agrees_with_a_second_parse(raw: str, region: str | None) -> None:
    # _surely_stable may only skip the second parse where that parse would agree, in
    # every country (national prefixes 0, 1, 8, carrier codes, transform rules).
    try:
        parsed = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    if phones._surely_stable(parsed):
        assert phones._stable_e164(e164)
    phone = normalize_phone(raw + " ", region)  # past the cache: a fresh parse
    assert (phone.e164, phone.extension, phone.valid, phone.region) == (
        _phone_as_libphonenumber_says(raw, region)
    )


# --- the NANP shortcut (app/domain/normalize/nanp.py) ----------------------------------

# Every shape the shortcut reads, and near misses it must leave to libphonenumber.
_NANP_SHAPES = (
    "+1{a}{b}{c}", "+1 {a} {b} {c}", "({a}) {b}-{c}", "({a}){b}-{c}", "{a}-{b}-{c}",
    "{a}.{b}.{c}", "{a} {b} {c}", "{a}{b}{c}", " {a}-{b}-{c} ", "1{a}{b}{c}", "+1-{a}-{b}-{c}",
    "{a}-{b}.{c}", "({a}) {b} {c}", "+1 ({a}) {b}-{c}", "{a}-{b}-{c} x12", "\uff0b1{a}{b}{c}",
)  # fmt: skip
_AREA = st.from_regex(r"[0-9]{3}", fullmatch=True)
_NANP_AREAS = st.one_of(
    _AREA, st.sampled_from(["246", "876", "658", "268", "808", "212", "800", "900", "523"])
)


@settings(max_examples=500)
@given(
    _NANP_AREAS,
    st.from_regex(r"[0-9]{3}", fullmatch=True),
    st.lists(st.from_regex(r"[0-9]{4}", fullmatch=True), min_size=1, max_size=4),
    st.sampled_from(_NANP_SHAPES),
    st.sampled_from(["US", "CA", "GB", None]),
)
def test_nanp_shortcut_reads_as_libphonenumber_reads(
    area: str, exchange: str, lines: list[str], shape: str, region: str | None
) -> None:
    # Numbers sharing a prefix: the first asks libphonenumber, the others reuse its answer
    # (nanp._answers); each must be what the full parse gives, and teach what it teaches.
    for line in lines:
        raw = shape.format(a=area, b=exchange, c=line)
        text = unicodedata.normalize("NFKC", raw).strip()
        phone = phones._parse_phone(raw, region)
        assert phone == phones._parse_with_libphonenumber(raw, text, region)
        assert (phone.e164, phone.extension, phone.valid, phone.region) == (
            _phone_as_libphonenumber_says(raw, region)
        )
        if phone.e164 is not None:
            assert valid_e164(phone.e164) == _valid_e164_as_libphonenumber_says(phone.e164)


def test_nanp_shortcut_is_on_for_the_installed_metadata() -> None:
    # Were a pattern beyond the depth analysis, the shortcut would quietly turn itself off.
    assert nanp.prefix_digits("8088172382") == 6
    assert nanp.prefix_digits("2468172382") == 7  # Barbados: deeper fixed-line patterns
    assert nanp.nanp_national("(808) 817-2382", "US") == "8088172382"
    assert nanp.nanp_national("(808) 817-2382", "CA") is None  # read in the US only
    assert nanp.nanp_national("+1 808 817 2382", None) == "8088172382"
    assert nanp.nanp_national("1808 817 2382", "US") is None  # a trunk 1: the parse decides


@pytest.mark.parametrize(
    ("pattern", "prefix", "depth"),
    [
        (r"[2-9]\d{9}", False, 1),
        (r"(?:2|3[45])\d{8}", False, 2),
        (r"\d{10}", False, 0),
        (r"[2-9]\d{2}(?:55)\d{5}", False, 5),
        (r"\d{7}|[2-9]\d{9}", False, 1),  # the 7-digit branch never fits ten digits
        (r"2(?:4[0-5]|[0-9]{2})\d{7}", False, 3),
        (r"246|658|876", True, 3),
        (r"([457]\d{6})|1", True, 1),
        (r"3\d{2,3}\d{6}", False, 1),
        (r"[^0]\d{9}", False, 1),
    ],
)
def test_pattern_depth(pattern: str, prefix: bool, depth: int) -> None:
    assert nanp._pattern_depth(pattern, prefix=prefix) == depth


@pytest.mark.parametrize(
    "pattern",
    [
        r"(?=2)\d{10}",
        r"(\d)\1\d{8}",
        r"^\d{10}$",
        # A possessive repeat gives back nothing: "[0-4]*+\d{2}" needs 9 digits, not 8.
        r"[0-4]*+\d{2}",
        # Eleven repeats of what may be empty still fit ten digits.
        r"(?:\d?){11}[2-9]",
    ],
)
def test_pattern_depth_refuses_what_it_does_not_model(pattern: str) -> None:
    with pytest.raises(nanp._Unsupported):
        nanp._pattern_depth(pattern, prefix=False)


def _nanp_patterns() -> list[str]:
    """Every number type's pattern of every region sharing country code 1."""
    patterns = set()
    for region in phonenumbers.COUNTRY_CODE_TO_REGION_CODE[1]:
        metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
        patterns |= {
            desc.national_number_pattern
            for desc in nanp._descs(metadata)
            if desc is not None and desc.national_number_pattern
        }
    return sorted(patterns)


_NANP_PATTERNS = _nanp_patterns()


@settings(max_examples=400)
@given(st.sampled_from(_NANP_PATTERNS), st.data())
def test_numbers_sharing_the_depth_match_every_nanp_pattern_alike(
    pattern: str, data: st.DataObject
) -> None:
    # The depth analysis' claim, tried on libphonenumber's own patterns: change any digit
    # after the depth and the full match does not change (numbers the pattern takes too).
    compiled = re.compile(pattern)
    ten = st.from_regex(r"[0-9]{10}", fullmatch=True)
    taken = st.from_regex(re.compile(pattern, re.ASCII), fullmatch=True).filter(
        lambda s: len(s) == 10
    )
    number = data.draw(st.one_of(taken, ten))
    other = data.draw(ten)
    depth = nanp._pattern_depth(pattern, prefix=False)
    changed = number[:depth] + other[depth:]
    assert bool(compiled.fullmatch(number)) == bool(compiled.fullmatch(changed))


# --- names, streets, places ------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  jack  ", "Jack"),
        ("JACK", "Jack"),
        ("o'brien", "O'Brien"),
        ("McDonald", "McDonald"),
        ("DeShawn", "DeShawn"),
        ("jean-luc", "Jean-Luc"),
        ("john's", "John's"),
        ("Mary   Ann", "Mary Ann"),
        ("", None),
        (None, None),
        (12, "12"),
    ],
)
def test_normalize_name(raw: object, expected: str | None) -> None:
    assert normalize_name(raw) == expected


@given(any_text)
def test_normalize_name_is_idempotent(raw: str) -> None:
    once = normalize_name(raw)
    assert normalize_name(once) == once


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("123 north Main Street, Apartment #4b", "123 N Main St Apt 4B"),
        ("123 N. Main St. Apt. 4B", "123 N Main St Apt 4B"),
        ("123 Main St, Apt 4", "123 Main St Apt 4"),
        ("12 1ST AVENUE apt #3", "12 1st Ave Apt 3"),
        ("12 first avenue", "12 1st Ave"),
        ("500 Ala Moana Boulevard Suite 200", "500 Ala Moana Blvd Ste 200"),
        ("9 Kings Road", "9 Kings Rd"),
        ("9 Sunset Drive", "9 Sunset Dr"),
        ("9 Pine Lane", "9 Pine Ln"),
        ("9 Oak Court", "9 Oak Ct"),
        ("9 Elm Place", "9 Elm Pl"),
        ("77 SOUTHWEST Harbor Parkway unit 5", "77 SW Harbor Pkwy Unit 5"),
        ("77 Elm St #5", "77 Elm St # 5"),
        ("P.O. Box 55", "PO Box 55"),
        ("post office box 55", "PO Box 55"),
        ("123 Main St, Honolulu, HI 96813", "123 Main St, Honolulu, HI 96813"),
        ("", None),
        (5, "5"),
    ],
)
def test_normalize_street(raw: object, expected: str | None) -> None:
    assert normalize_street(raw) == expected


@given(any_text)
@example("ῢ")  # capitalizes to a decomposed form the next pass changed
def test_normalize_street_is_idempotent(raw: str) -> None:
    once = normalize_street(raw)
    assert normalize_street(once) == once


def test_city_state_zip_role() -> None:
    assert normalize_city("  st. louis ") == "St Louis"
    assert normalize_state("hawaii") == "HI"
    assert normalize_state(" hi ") == "HI"
    assert normalize_state("Ontario") == "Ontario"
    assert normalize_zip(6101) == "06101"  # JSON number lost the leading zero
    assert normalize_zip("96813 1234") == "96813-1234"
    assert normalize_zip("968131234") == "96813-1234"
    assert normalize_zip("k1a 0b1") == "K1A 0B1"
    assert normalize_zip(True) is None
    assert normalize_role("buyer  and seller") == "Buyer and Seller"
    assert normalize_role("Investor") == "Investor"


@given(st.text(st.characters(max_codepoint=127), max_size=40))
def test_fold_key_ascii_fast_path_matches_unicode_path(raw: str) -> None:
    # The reference: the general path written out (NFKD, case-fold, marks and
    # apostrophes dropped, other non-alphanumerics as spaces).
    folded = unicodedata.normalize("NFKD", raw.casefold())
    chars = [
        "" if ch in "'’`" or unicodedata.combining(ch) else (ch if ch.isalnum() else " ")
        for ch in folded
    ]
    assert fold_key(raw) == " ".join("".join(chars).split())


def test_fold_key_strips_accents_and_apostrophes() -> None:
    assert fold_key("José O'Brien-Núñez") == "jose obrien nunez"
    assert fold_key(None) == ""


# --- ids and timestamps ----------------------------------------------------------------


def _timestamp_as_read_in_full(value: object) -> object:
    """normalize_timestamp without the shortcut for text already normalized."""
    try:
        return times._text(*times._parse_timestamp(value))
    except TimestampError as exc:
        return (type(exc), str(exc))


def _timestamp_outcome(value: object) -> object:
    try:
        return normalize_timestamp(value)
    except TimestampError as exc:
        return (type(exc), str(exc))


@settings(max_examples=500)
@given(
    st.one_of(
        st.from_regex(
            r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{0,10})?Z?",
            fullmatch=True,
        ),
        st.datetimes().map(lambda d: d.isoformat() + "Z"),
        st.sampled_from(
            [
                "2024-02-30T00:00:00Z",
                "0000-01-01T00:00:00Z",
                "2024-06-01T24:00:00Z",
                "2024-06-01T00:00:60Z",
                "2024-06-01T00:00:00.5Z",
                "2024-06-01T00:00:00.50Z",
                "2024-06-01T00:00:00.123456789Z",
                "2024-06-01T00:00:00.1234567891Z",
                "2024-06-01T00:00:00Z\n",
                " 2024-06-01T00:00:00Z",
                "2024-06-01T00:00:00.Z",
                "\u0662024-06-01T00:00:00Z",
            ]
        ),
        any_text,
    )
)
def test_normalized_timestamps_are_read_as_the_full_reading_reads_them(value: str) -> None:
    # Text already in the normalized form is only checked for a real date and time.
    assert _timestamp_outcome(value) == _timestamp_as_read_in_full(value)


@given(
    st.datetimes(min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31)),
    st.integers(min_value=-23 * 60, max_value=23 * 60),
)
def test_timestamp_text_is_the_iso_form_normalized(naive: datetime, minutes: int) -> None:
    moment = naive.replace(tzinfo=timezone(timedelta(minutes=minutes)))
    expected = normalize_timestamp(moment.astimezone(UTC).isoformat())
    assert timestamp_text(moment) == expected
    assert timestamp_text(moment.astimezone(UTC)) == expected


def test_lead_and_site_ids() -> None:
    assert normalize_lead_id(" A27C20AF-4497-415D-9E4E-7334DD1D40D2 ") == (
        "a27c20af4497415d9e4e7334dd1d40d2"
    )
    assert normalize_lead_id("{a27c20af-4497}") == "a27c20af4497"
    assert normalize_lead_id(1234) == "1234"
    assert normalize_lead_id("") is None
    assert normalize_lead_id({"id": 1}) is None
    assert normalize_site_uuid(" 5EAD6DD1-2cb9 ") == "5ead6dd1-2cb9"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2016-12-24T01:58:52.789337607Z", "2016-12-24T01:58:52.789337607Z"),
        ("2015-10-01T06:14:01.597026Z", "2015-10-01T06:14:01.597026Z"),
        ("2015-04-01T08:41:51+00:00", "2015-04-01T08:41:51Z"),
        ("2015-04-01T08:41:51.5+05:30", "2015-04-01T03:11:51.5Z"),
        ("2015-04-01T08:41:51-0800", "2015-04-01T16:41:51Z"),
        ("2015-04-01 08:41:51,25Z", "2015-04-01T08:41:51.25Z"),
        ("2015-04-01T08:41", "2015-04-01T08:41:00Z"),
        ("2015-04-01", "2015-04-01T00:00:00Z"),
        ("2015-04-01T08:41:51.1234567891234Z", "2015-04-01T08:41:51.123456789Z"),
        ("2016-12-31T23:00:00-02:00", "2017-01-01T01:00:00Z"),
    ],
)
def test_normalize_timestamp(raw: str, expected: str) -> None:
    assert normalize_timestamp(raw) == expected


@pytest.mark.parametrize(
    "raw",
    ["", "yesterday", "2015-13-01T00:00:00Z", "2015-02-30", "2015-04-01T25:00:00Z",
     "2015-04-01T08:41:51+25:00", "0001-01-01T00:00:00+01:00", None, 1443680041, ["2015"]],
)  # fmt: skip
def test_normalize_timestamp_rejects_garbage(raw: object) -> None:
    with pytest.raises(TimestampError):
        normalize_timestamp(raw)
    assert issubclass(TimestampError, ValueError)


def test_timestamp_ns_orders_nanoseconds() -> None:
    early = timestamp_ns("2016-12-24T01:58:52.789337607Z")
    late = timestamp_ns("2016-12-24T01:58:52.789337608Z")
    assert late - early == 1
    assert timestamp_ns("1970-01-01T00:00:01Z") == 1_000_000_000
    assert timestamp_ns("2016-12-24T03:58:52.789337607+02:00") == early


@given(any_text)
def test_timestamp_raises_only_timestamp_error(raw: str) -> None:
    try:
        once = normalize_timestamp(raw)
    except TimestampError:
        return
    assert normalize_timestamp(once) == once
    assert once.endswith("Z")


@settings(max_examples=40)
@given(st.datetimes(timezones=st.timezones()))
def test_timestamp_round_trips_any_aware_datetime(moment) -> None:  # type: ignore[no-untyped-def]
    text = moment.isoformat()
    try:
        normalized = normalize_timestamp(text)
    except TimestampError:
        return  # shifting to UTC left the datetime range (year 1 or 9999)
    assert timestamp_ns(normalized) == timestamp_ns(text)


# --- the whole lead --------------------------------------------------------------------
_TEXT_NORMALIZERS = [
    normalize_name, normalize_street, normalize_city, normalize_state, normalize_zip,
    normalize_role, normalize_text,
]  # fmt: skip


@given(
    st.sampled_from(_TEXT_NORMALIZERS),
    st.one_of(
        any_text,
        st.sampled_from(["Honolulu", "HI", "hawaii", "Buyer", "12 N Main St", "96813", ""]),
        st.text(min_size=120, max_size=140),
        json_values,
    ),
)
def test_remembered_field_normalizers_give_what_they_give(
    normalize: Callable[[object], str | None], value: object
) -> None:
    # normalize_lead remembers each text normalizer's answer per text: the same answer
    # the first time and every time after.
    from realgeeks_sync.app.domain.normalize import lead

    expected = normalize(value)
    assert lead._remembered(normalize, value) == expected
    assert lead._remembered(normalize, value) == expected


def test_normalize_lead_on_the_real_geeks_fixture() -> None:
    lead = normalize_lead(FIXTURE_BODY)
    assert lead["id"] == "a27c20af4497415d9e4e7334dd1d40d2"
    assert lead["email"] == "jack@mail.com"
    assert lead["phone"] == "+18088172382"
    assert lead["phone_raw"] == "808-817-2382"
    assert lead["phone_valid"] is True
    assert lead["first_name"] == "Jack"
    assert lead["agent_email"] == "ben@mail.com"
    assert lead["created"] == "2015-10-01T06:14:01.597026Z"
    assert lead["partner_id"] == "ffffffffuuuuuuuuuu"  # unknown keys as received
    assert lead["site_domain"] == "www.mysite.com"
    assert "action" not in lead
    assert "activities" not in lead


def test_normalize_lead_blank_and_unusable_values() -> None:
    lead = normalize_lead(
        {
            "email": "not-an-email",
            "second_email": "",
            "phone2": "",
            "zip": 6101,
            "first_name": None,
            "last_name": ["Smith"],
            "created": "garbage",
            "street_address": "12 Main Street",
            "custom": {"nested": [1, 2]},
        }
    )
    assert lead["email"] is None and lead["email_raw"] == "not-an-email"
    assert lead["second_email"] is None and "second_email_raw" not in lead
    assert lead["phone2"] is None and lead["phone2_raw"] is None
    assert lead["zip"] == "06101"
    assert lead["first_name"] is None and "first_name_raw" not in lead
    assert lead["last_name"] is None and lead["last_name_raw"] == ["Smith"]
    assert lead["created"] is None and lead["created_raw"] == "garbage"
    assert lead["street_address"] == "12 Main St"
    assert lead["custom"] == {"nested": [1, 2]}
    assert set(lead) >= {"email", "second_email", "phone2", "zip", "custom"}


def test_normalize_lead_only_has_keys_that_were_sent() -> None:
    assert normalize_lead({"phone2": "", "source": "test"}) == {
        "phone2": None,
        "phone2_raw": None,
        "phone2_extension": None,
        "phone2_valid": None,
        "source": "test",
    }


FIELDS = ["id", "email", "second_email", "agent_email", "phone", "phone2", "first_name",
          "last_name", "agent_name", "street_address", "address", "city", "state", "zip",
          "role", "source", "source_details", "created", "activities", "action", "other"]  # fmt: skip


@settings(max_examples=60)
@given(st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=8))
def test_normalize_lead_never_raises_and_stays_json(body: dict[str, object]) -> None:
    lead = normalize_lead(body)
    json.dumps(lead)  # still plain JSON
    assert set(lead) <= {*body, *(f"{k}_{s}" for k in body for s in ("raw", "extension", "valid"))}
    assert normalize_lead(lead) is not None


@settings(max_examples=40)
@given(json_values)
def test_is_blank(value: object) -> None:
    assert is_blank(value) == (value is None or (isinstance(value, str) and not value.strip()))


@given(
    st.one_of(st.text(max_size=140), st.from_regex(r" ?[A-Za-z.]{1,8}@[a-z]{1,6}\.[a-z]{2,3} ?"))
)
def test_normalize_email_cache_returns_what_the_uncached_function_returns(text: str) -> None:
    from realgeeks_sync.app.domain.normalize import emails

    assert normalize_email(text) == emails._normalize_email_text(text)
    assert normalize_email(text) == normalize_email(text)  # the second is a cache hit
