"""Timestamps: ISO 8601 / RFC 3339 read exactly (nanoseconds kept) and written in UTC."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

__all__ = ["TimestampError", "normalize_timestamp", "timestamp_ns", "timestamp_text"]


class TimestampError(ValueError):
    """A value that should be an ISO 8601 / RFC 3339 timestamp is not one."""


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
    if type(value) is str:
        match = _NORMALIZED.fullmatch(value)
        if match is not None:
            # Already the form returned (what the pipeline passes on): only the date and
            # time need proving, as the full reading would.
            _check_date(*map(int, match.groups()))
            return value
    utc, nanos = _parse_timestamp(value)
    return _text(utc, nanos)


# normalize_timestamp's own output: ASCII digits, "T", "Z", 1-9 fractional digits of
# which the last is not 0.
_NORMALIZED = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.[0-9]{0,8}[1-9])?Z"
)


def _check_date(year: int, month: int, day: int, hour: int, minute: int, second: int) -> None:
    """Raises TimestampError, as `_parse_timestamp` does, for a date or time that is not one."""
    try:
        datetime(year, month, day, hour, minute, second)
    except (ValueError, OverflowError) as exc:
        raise TimestampError("timestamp out of range") from exc


def _text(utc: datetime, nanos: int) -> str:
    """A UTC time (its fraction in `nanos`) as normalize_timestamp writes it."""
    text = (
        f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}"
        f"T{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}"
    )
    fraction = f"{nanos:09d}".rstrip("0")
    return f"{text}.{fraction}Z" if fraction else f"{text}Z"


def timestamp_text(moment: datetime) -> str:
    """normalize_timestamp(moment.astimezone(UTC).isoformat()), without writing the text
    and reading it back."""
    utc = moment.astimezone(UTC)
    return _text(utc, utc.microsecond * 1000)


def timestamp_ns(value: object) -> int:
    """Nanoseconds since the Unix epoch, for ordering timestamps exactly.

    Raises:
        TimestampError: the value is not a timestamp.
    """
    utc, nanos = _parse_timestamp(value)
    delta = utc - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + nanos
