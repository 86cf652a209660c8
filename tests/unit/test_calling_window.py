"""Calling window: local 08:00-21:00 from the number's time zone(s), DST, unknown zones."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from realgeeks_sync.app.domain import calling_window
from realgeeks_sync.app.domain.calling_window import (
    InvalidPhoneNumberError,
    UnknownTimezoneError,
    candidate_zones,
    is_open_everywhere,
    local_call_window,
)

HONOLULU = "+18088172382"
NEW_YORK = "+12125551234"
IDAHO = "+12085551234"  # 208: America/Boise (Mountain) and America/Los_Angeles (Pacific)
TOLL_FREE = "+18005551234"
UNKNOWN_ZONE = "+15555551234"  # phonenumbers: Etc/Unknown
NY = ZoneInfo("America/New_York")
HNL = ZoneInfo("Pacific/Honolulu")


def test_honolulu_at_two_am_local_is_closed_until_eight_local() -> None:
    now = datetime(2025, 3, 1, 2, 0, tzinfo=HNL).astimezone(UTC)
    decision = local_call_window(HONOLULU, now)
    assert decision.allowed_now is False
    assert decision.timezone == "Pacific/Honolulu"
    assert decision.next_open_utc == datetime(2025, 3, 1, 8, 0, tzinfo=HNL)
    assert decision.next_open_utc is not None
    assert decision.next_open_utc.utcoffset() == timedelta(0)  # returned in UTC
    assert decision.local_date == date(2025, 3, 1)


def test_new_york_at_ten_am_local_is_open_now() -> None:
    now = datetime(2025, 6, 2, 10, 0, tzinfo=NY).astimezone(UTC)
    decision = local_call_window(NEW_YORK, now)
    assert decision.allowed_now is True
    assert decision.next_open_utc == now
    assert decision.timezones == ("America/New_York",)


def test_window_end_is_exclusive_and_next_open_is_tomorrow_morning() -> None:
    now = datetime(2025, 6, 2, 21, 0, tzinfo=NY).astimezone(UTC)
    decision = local_call_window(NEW_YORK, now)
    assert decision.allowed_now is False
    assert decision.next_open_utc == datetime(2025, 6, 3, 8, 0, tzinfo=NY)
    just_before = local_call_window(NEW_YORK, now - timedelta(seconds=1))
    assert just_before.allowed_now is True


def test_dst_spring_forward_opens_at_eight_local_not_eight_standard() -> None:
    # 2025-03-09: New York moves from UTC-5 to UTC-4 at 02:00.
    now = datetime(2025, 3, 9, 1, 30, tzinfo=NY).astimezone(UTC)
    decision = local_call_window(NEW_YORK, now)
    assert decision.allowed_now is False
    assert decision.next_open_utc == datetime(2025, 3, 9, 12, 0, tzinfo=UTC)  # 08:00 EDT
    at_seven_fifty_nine_edt = datetime(2025, 3, 9, 11, 59, tzinfo=UTC)
    assert local_call_window(NEW_YORK, at_seven_fifty_nine_edt).allowed_now is False


def test_dst_fall_back_uses_the_new_offset() -> None:
    # 2025-11-02: New York goes back to UTC-5; 12:30 UTC is 07:30 EST (was 08:30 EDT).
    decision = local_call_window(NEW_YORK, datetime(2025, 11, 2, 12, 30, tzinfo=UTC))
    assert decision.allowed_now is False
    assert decision.next_open_utc == datetime(2025, 11, 2, 13, 0, tzinfo=UTC)


def test_start_in_a_dst_gap_opens_late_never_early() -> None:
    # 02:30 does not exist in New York on 2025-03-09; the opening must not precede the jump.
    now = datetime(2025, 3, 9, 5, 0, tzinfo=UTC)  # 00:00 EST
    decision = local_call_window(NEW_YORK, now, start=time(2, 30), end=time(21))
    jump = datetime(2025, 3, 9, 7, 0, tzinfo=UTC)  # 02:00 EST -> 03:00 EDT
    assert decision.next_open_utc is not None
    assert decision.next_open_utc >= jump
    assert local_call_window(NEW_YORK, decision.next_open_utc, time(2, 30)).allowed_now


def test_multi_zone_number_needs_every_zone_open() -> None:
    assert candidate_zones(IDAHO) == ("America/Boise", "America/Los_Angeles")
    # 08:30 in Boise is 07:30 in Los Angeles: not yet for the whole area code.
    now = datetime(2025, 6, 2, 8, 30, tzinfo=ZoneInfo("America/Boise")).astimezone(UTC)
    decision = local_call_window(IDAHO, now)
    assert decision.allowed_now is False
    assert decision.next_open_utc == datetime(
        2025, 6, 2, 8, 0, tzinfo=ZoneInfo("America/Los_Angeles")
    )
    # 20:30 in Los Angeles is 21:30 in Boise: already closed there.
    late = datetime(2025, 6, 2, 20, 30, tzinfo=ZoneInfo("America/Los_Angeles")).astimezone(UTC)
    assert local_call_window(IDAHO, late).allowed_now is False
    noon = datetime(2025, 6, 2, 12, 0, tzinfo=ZoneInfo("America/Boise")).astimezone(UTC)
    assert local_call_window(IDAHO, noon).allowed_now is True


def test_toll_free_is_allowed_only_when_all_42_zones_are_open() -> None:
    zones = candidate_zones(TOLL_FREE)
    assert {"Pacific/Guam", "America/St_Johns", "Pacific/Honolulu"} <= set(zones)
    # 16:00 UTC: 02:00 next day in Guam.
    decision = local_call_window(TOLL_FREE, datetime(2025, 6, 2, 16, 0, tzinfo=UTC))
    assert decision.allowed_now is False
    # Guam opens at 22:00 UTC while St. John's (UTC-2:30) is still open until 23:30 UTC.
    assert decision.next_open_utc == datetime(2025, 6, 2, 22, 0, tzinfo=UTC)
    assert local_call_window(TOLL_FREE, datetime(2025, 6, 2, 23, 29, tzinfo=UTC)).allowed_now
    assert not local_call_window(TOLL_FREE, datetime(2025, 6, 2, 23, 30, tzinfo=UTC)).allowed_now


def test_closes_utc_is_the_first_instant_some_candidate_zone_leaves_the_window() -> None:
    boise = ZoneInfo("America/Boise")
    # Idaho at 18:00 Mountain (17:00 Pacific): Boise reaches 21:00 first.
    decision = local_call_window(IDAHO, datetime(2025, 6, 2, 18, 0, tzinfo=boise))
    assert decision.closes_utc == datetime(2025, 6, 2, 21, 0, tzinfo=boise)
    # Toll-free: St. John's (UTC-2:30) closes the 42 zones' common slot at 23:30 UTC.
    decision = local_call_window(TOLL_FREE, datetime(2025, 6, 2, 22, 15, tzinfo=UTC))
    assert decision.closes_utc == datetime(2025, 6, 2, 23, 30, tzinfo=UTC)
    for number, now in (
        (IDAHO, datetime(2025, 6, 2, 9, 0, tzinfo=boise)),
        (TOLL_FREE, datetime(2025, 6, 2, 22, 0, tzinfo=UTC)),
        (NEW_YORK, datetime(2025, 11, 2, 8, 0, tzinfo=NY)),  # the day daylight saving ends
    ):
        closes = local_call_window(number, now).closes_utc
        assert closes is not None
        zones = candidate_zones(number)
        assert is_open_everywhere(zones, closes - timedelta(microseconds=1))
        assert not is_open_everywhere(zones, closes)
    # Closed now: no close.
    assert local_call_window(NEW_YORK, datetime(2025, 6, 2, 21, 0, tzinfo=NY)).closes_utc is None


def test_zones_that_never_share_an_open_instant_give_no_next_open() -> None:
    # A one-hour window an hour apart in Boise and Los Angeles never overlaps.
    decision = local_call_window(IDAHO, datetime(2025, 6, 2, 16, 0, tzinfo=UTC), time(9), time(10))
    assert decision.allowed_now is False
    assert decision.next_open_utc is None


@pytest.mark.parametrize("number", [UNKNOWN_ZONE, "+80012345678"])
def test_unknown_zone_is_never_borrowed_from_elsewhere(number: str) -> None:
    # A borrowed zone could put a call at 3 a.m. where the person is: no local time at all.
    with pytest.raises(UnknownTimezoneError):
        candidate_zones(number)
    with pytest.raises(UnknownTimezoneError):
        local_call_window(number, datetime(2025, 6, 2, 16, 0, tzinfo=UTC))


def test_is_open_everywhere_needs_every_zone_open() -> None:
    zones = candidate_zones(IDAHO)
    # 07:30 in Los Angeles is 08:30 in Boise: one zone still closed.
    instant = datetime(2025, 6, 2, 7, 30, tzinfo=ZoneInfo("America/Los_Angeles"))
    assert not is_open_everywhere(zones, instant)
    assert is_open_everywhere(zones, instant + timedelta(hours=1))


@pytest.mark.parametrize("bad", ["", "not a number", "12"])
def test_unparseable_number_raises_the_specific_error(bad: str) -> None:
    with pytest.raises(InvalidPhoneNumberError):
        local_call_window(bad, datetime(2025, 6, 2, 16, 0, tzinfo=UTC))


def test_bad_arguments_are_rejected() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        local_call_window(NEW_YORK, datetime(2025, 6, 2, 16, 0))
    with pytest.raises(ValueError, match="start must be before end"):
        local_call_window(NEW_YORK, datetime(2025, 6, 2, 16, 0, tzinfo=UTC), time(21), time(8))


def test_local_date_is_the_leads_date_not_utc() -> None:
    # 03:00 UTC on June 3 is still June 2 in Honolulu.
    decision = local_call_window(HONOLULU, datetime(2025, 6, 3, 3, 0, tzinfo=UTC))
    assert decision.local_date == date(2025, 6, 2)


def _zones_or_error(answer: object, e164: str) -> object:
    try:
        return answer(e164)  # type: ignore[operator]
    except (InvalidPhoneNumberError, UnknownTimezoneError) as exc:
        return (type(exc), exc.args)


@settings(max_examples=400)
@given(
    st.one_of(
        st.from_regex(r"[0-9]{3}", fullmatch=True),
        # One zone, two zones, toll-free and premium (42 zones or none), 7-digit Caribbean
        # prefixes, unknown zones, area codes not in service.
        st.sampled_from(["808", "212", "208", "800", "900", "246", "658", "876", "555", "523"]),
    ),
    st.from_regex(r"[0-9]{3}", fullmatch=True),
    st.lists(st.from_regex(r"[0-9]{4}", fullmatch=True), min_size=1, max_size=4),
)
def test_nanp_zones_by_prefix_are_libphonenumber_s_for_every_number(
    area: str, exchange: str, lines: list[str]
) -> None:
    # Numbers sharing a prefix: the first asks libphonenumber, the others reuse its answer.
    for line in lines:
        e164 = f"+1{area}{exchange}{line}"
        candidate_zones.cache_clear()  # the per-number cache would hide the prefix's
        assert _zones_or_error(candidate_zones, e164) == _zones_or_error(
            calling_window._zones, e164
        )


def test_nanp_zones_are_answered_once_per_prefix() -> None:
    calling_window._nanp_zones.clear()
    candidate_zones.cache_clear()
    assert candidate_zones("+18088172382") == ("Pacific/Honolulu",)
    assert candidate_zones("+18088170000") == ("Pacific/Honolulu",)
    assert list(calling_window._nanp_zones) == ["808817"]
    with pytest.raises(UnknownTimezoneError):
        candidate_zones("+15555551234")
    with pytest.raises(UnknownTimezoneError):  # the prefix's answer, raised again
        candidate_zones("+15555550000")
    assert len(calling_window._nanp_zones) == 2


def test_a_cached_failure_keeps_no_caller_alive() -> None:
    # A cached exception object would hold its traceback, and so the caller's frame and
    # everything it refers to (a lead, a batch of events) for as long as the cache lives.
    import contextlib
    import gc
    import weakref

    class Payload:
        pass

    calling_window._nanp_zones.clear()
    candidate_zones.cache_clear()

    def caller(number: str) -> weakref.ref[Payload]:
        payload = Payload()
        with contextlib.suppress(UnknownTimezoneError):
            candidate_zones(number)
        return weakref.ref(payload)

    refs = [caller(f"+1555555{n:04d}") for n in range(3)]
    gc.collect()
    assert all(ref() is None for ref in refs)
    with pytest.raises(UnknownTimezoneError, match="unknown"):
        candidate_zones("+15555559999")
