"""When a lead may be called: 08:00-21:00 in the lead's local time, from the phone number.

Rules (conservative on purpose: calling outside the window is a compliance problem,
waiting a little is not):

* The candidate time zones come from ``phonenumbers.timezone.time_zones_for_number``.
* Several candidates (an area code spanning two zones, a toll-free or non-geographic
  number): calling is allowed only when the local time is inside the window in EVERY
  candidate zone, and ``next_open_utc`` is the first instant at which that is true.
  Toll-free and non-geographic NANP numbers map to 42 zones from Guam to Newfoundland,
  which leaves a short daily slot (about 22:00-23:30 UTC in summer).
* When the candidates never share an open instant within the next days (possible with a
  narrow window or a wide zone set), ``allowed_now`` is False and ``next_open_utc`` is
  None: there is no safe time, so the number must not be dialled automatically. ``None``
  means exactly this and nothing else.
* Unknown zone (``Etc/Unknown``, or a zone name zoneinfo cannot load):
  ``UnknownTimezoneError``. Borrowing another zone could put a call at 3 a.m. where the
  person really is, so such a number is never dialled automatically.
* Local times come from zoneinfo, so DST is handled by the tz database. If the window's
  start falls in a DST gap in some zone, the opening is taken as start + gap length: a
  little late, never early. Likewise the close (``closes_utc``) is the earlier reading of
  the window's end when that falls in a DST gap or fold: early, never late.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from functools import lru_cache
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import timezone as phone_timezone
from phonenumbers.tzdata import TIMEZONE_DATA

from realgeeks_sync.app.domain.normalize.nanp import prefix_digits

__all__ = [
    "ALL_DAYS",
    "DEFAULT_END",
    "DEFAULT_START",
    "InvalidPhoneNumberError",
    "UnknownTimezoneError",
    "WindowDecision",
    "candidate_zones",
    "is_open_everywhere",
    "local_call_window",
]

DEFAULT_START = time(8)
DEFAULT_END = time(21)
ALL_DAYS = frozenset(range(7))
_UNKNOWN_ZONE = "Etc/Unknown"
# A common open instant, if any, starts within a day of now; a few days more covers
# DST shifts and the zones furthest from UTC.
_SEARCH_DAYS = 4


class InvalidPhoneNumberError(ValueError):
    """The phone number is not a parseable E.164 number."""


class UnknownTimezoneError(ValueError):
    """The number's time zone cannot be determined, so no local time is known for it."""


@dataclass(frozen=True)
class WindowDecision:
    """Whether a number may be called now, and from when if not."""

    allowed_now: bool
    # Earliest instant >= now when calling is allowed (now itself when allowed_now);
    # None only when no safe instant exists at all (see the module docstring).
    next_open_utc: datetime | None
    # One IANA zone name, loadable by ZoneInfo: the only candidate, else the first of
    # the sorted candidates. Used to bucket attempts by local day.
    timezone: str
    timezones: tuple[str, ...]
    local_date: date
    # When allowed_now: the first instant after now at which some candidate zone reaches the
    # window's end (every zone is open from now until just before it). None when closed.
    closes_utc: datetime | None = None


# A +1 number's zones are decided by its leading digits: libphonenumber reads them from the
# number's type (decided by the digits `prefix_digits` gives, app/domain/normalize/nanp.py)
# and from its time-zone map, whose +1 keys hold at most this many national digits.
_NANP_ZONE_DIGITS = max(len(key) for key in TIMEZONE_DATA if key.startswith("1")) - 1
_MAX_NANP_PREFIXES = 65_536


class _Failure(NamedTuple):
    """The error a prefix raises, as its type and args: an exception object would keep its
    traceback, and so every caller's frame, alive in the cache."""

    error: type[ValueError]
    args: tuple[Any, ...]


_nanp_zones: dict[str, tuple[str, ...] | _Failure] = {}


@lru_cache(maxsize=8192)
def candidate_zones(e164: str) -> tuple[str, ...]:
    """Return the sorted IANA zones a number may be in (cached: a pure function of it).

    A +1 number is answered once per prefix that decides its zones (nearly every lead's
    number is new, and the parse and type lookup were 2 % of a worker's CPU in a backlog).

    Raises:
        InvalidPhoneNumberError: ``e164`` cannot be parsed as an international number.
        UnknownTimezoneError: any candidate zone is unknown or not loadable.
    """
    national = e164[2:]
    if len(e164) != 12 or not e164.startswith("+1") or not national.isascii():
        return _zones(e164)
    if not national.isdigit() or national[0] in "01":
        return _zones(e164)
    depth = prefix_digits(national)
    if depth is None:
        return _zones(e164)
    prefix = national[: max(depth, _NANP_ZONE_DIGITS)]
    found = _nanp_zones.get(prefix)
    if found is None:
        try:
            found = _zones(e164)
        except (InvalidPhoneNumberError, UnknownTimezoneError) as exc:
            found = _Failure(type(exc), exc.args)
        if len(_nanp_zones) < _MAX_NANP_PREFIXES:
            _nanp_zones[prefix] = found
    if isinstance(found, _Failure):
        raise found.error(*found.args)
    return found


def _zones(e164: str) -> tuple[str, ...]:
    """candidate_zones by libphonenumber, number by number."""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhoneNumberError("phone number is not parseable E.164") from exc
    zones: set[str] = set()
    for name in phone_timezone.time_zones_for_number(number):
        if name == _UNKNOWN_ZONE or not _loadable(name):
            raise UnknownTimezoneError("the number's time zone is unknown")
        zones.add(name)
    if not zones:
        raise UnknownTimezoneError("the number has no time zone")
    return tuple(sorted(zones))


def is_open_everywhere(
    zones: Sequence[str],
    instant: datetime,
    start: time = DEFAULT_START,
    end: time = DEFAULT_END,
    days: frozenset[int] = ALL_DAYS,
) -> bool:
    """Return True when ``instant`` is inside [start, end) local time, on one of ``days``
    (Monday 0), in every zone."""
    return _all_open([ZoneInfo(name) for name in zones], instant, start, end, days)


def local_call_window(
    e164: str,
    now_utc: datetime,
    start: time = DEFAULT_START,
    end: time = DEFAULT_END,
    days: frozenset[int] = ALL_DAYS,
) -> WindowDecision:
    """Decide whether ``e164`` may be called at ``now_utc`` and when the window next opens.

    ``days``: the local weekdays calls are allowed on (Monday 0), in every candidate zone.

    Raises:
        InvalidPhoneNumberError: the number cannot be parsed.
        UnknownTimezoneError: the number's zone is unknown.
        ValueError: ``now_utc`` is naive or ``start >= end``.
    """
    if now_utc.tzinfo is None or now_utc.utcoffset() is None:
        raise ValueError("now_utc must be timezone-aware")
    if start >= end:
        raise ValueError("start must be before end (windows across midnight are not supported)")
    now = now_utc.astimezone(ZoneInfo("UTC"))
    names = candidate_zones(e164)
    zones = [ZoneInfo(name) for name in names]
    if not days:
        raise ValueError("days must name at least one weekday")
    allowed = _all_open(zones, now, start, end, days)
    next_open = now if allowed else _next_common_opening(zones, now, start, end, days)
    reference = names[0]
    return WindowDecision(
        allowed_now=allowed,
        next_open_utc=next_open,
        timezone=reference,
        timezones=names,
        local_date=now.astimezone(ZoneInfo(reference)).date(),
        closes_utc=_common_close(zones, now, end) if allowed else None,
    )


def _loadable(name: str) -> bool:
    """Return True when zoneinfo knows the zone."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _is_open(
    zone: tzinfo, instant: datetime, start: time, end: time, days: frozenset[int] = ALL_DAYS
) -> bool:
    """Return True when ``instant`` is inside [start, end) local time in ``zone``, on one
    of ``days``."""
    local = instant.astimezone(zone)
    if local.weekday() not in days:
        return False
    return start <= local.time().replace(tzinfo=None) < end


def _all_open(
    zones: Sequence[tzinfo],
    instant: datetime,
    start: time,
    end: time,
    days: frozenset[int] = ALL_DAYS,
) -> bool:
    """Return True when every zone is inside the window at ``instant``."""
    return all(_is_open(zone, instant, start, end, days) for zone in zones)


def _common_close(zones: Sequence[tzinfo], now: datetime, end: time) -> datetime:
    """The first instant after ``now`` (open in every zone) at which some zone reaches ``end``."""
    utc = ZoneInfo("UTC")
    closes: list[datetime] = []
    for zone in zones:
        # Open now, so the zone closes at ``end`` on its local date (windows end before midnight).
        local_end = datetime.combine(now.astimezone(zone).date(), end, tzinfo=zone)
        # The two readings differ only in a DST gap or fold: the earlier is the safe one.
        closes.append(local_end.astimezone(utc))
        closes.append(local_end.replace(fold=1).astimezone(utc))
    # (A reading before now, in a DST gap: closing now is early, never late.)
    return max(now, min(closes))


def _next_common_opening(
    zones: Sequence[tzinfo],
    now: datetime,
    start: time,
    end: time,
    days: frozenset[int] = ALL_DAYS,
) -> datetime | None:
    """Return the first instant after ``now`` when all zones are open, or None."""
    # The set of instants where all zones are open is an intersection of intervals
    # [open_z, close_z); each of its pieces starts at some zone's opening, so checking
    # those openings in order finds the earliest one.
    utc = ZoneInfo("UTC")
    openings: set[datetime] = set()
    # Allowed weekdays can be a week apart (a site that calls on Saturdays only).
    search = _SEARCH_DAYS if days == ALL_DAYS else _SEARCH_DAYS + 7
    for zone in zones:
        today = now.astimezone(zone).date()
        for offset in range(-1, search):
            day = today + timedelta(days=offset)
            # fold=0: in a DST gap this lands after the gap (late, never early).
            opening = datetime.combine(day, start, tzinfo=zone).astimezone(utc)
            if opening > now:
                openings.add(opening)
    for opening in sorted(openings):
        if _all_open(zones, opening, start, end, days):
            return opening
    return None
