"""JSON encoding and decoding on the hot path: orjson where it gives the same values, the
standard library where it would not.

Every webhook is decoded and encoded several times (envelope, body, table values,
outputs); the standard library's json was about a tenth of a worker's CPU. orjson is
several times faster but differs at the edges, so each function falls back to ``json``
exactly where the results would differ:

- integers beyond 64 bits: orjson decodes them as floats (lossy) and cannot encode them;
  a run of 19 or more digits where a number may start sends decoding to ``json``;
- ``NaN``/``Infinity``, lone surrogates, non-string keys: orjson refuses them, ``json``
  then decides as it always did (and raises where it always raised).

The bytes are compact JSON either way; only ``dumps_ascii`` promises byte-for-byte the
standard library's output (table keys, whose bytes are the key).
"""

from __future__ import annotations

import json
from typing import Any

import orjson

__all__ = ["dumps", "dumps_ascii", "dumps_sorted", "loads"]

# A number orjson could not hold exactly: 2**63 has 19 digits. Found by masking the bytes
# and looking for 19 zeros: a regex search was 10 us per 1 KB webhook, five times orjson's
# whole decode; translate and find are a few memory passes. Only a run that starts where a
# number's digits can start (the input's start, JSON whitespace, [ , : a sign, "." or an
# exponent's e) can be a number; a run inside a string, such as a zero-padded id
# ("000...0f4240", after a quote or a letter), decodes the same either way. So digits
# become "0", the bytes a number's digits may follow "s", every other byte "x".
_NUMBER_STARTS = b" \t\n\r[,:+-.eE"
_MASK = bytes(
    0x30 if 0x30 <= b <= 0x39 else 0x73 if b in _NUMBER_STARTS else 0x78 for b in range(256)
)
_LONG_RUN = b"0" * 19
_LONG_RUN_AFTER_START = b"s" + _LONG_RUN


def _has_long_digits(data: bytes | bytearray) -> bool:
    """Whether ``data`` holds 19 or more ASCII digits in a row where a number may start."""
    masked = data.translate(_MASK)
    return masked.startswith(_LONG_RUN) or _LONG_RUN_AFTER_START in masked


def loads(data: bytes | bytearray | memoryview | str) -> Any:
    """Decode JSON text or UTF-8 bytes to Python values, exactly as ``json.loads`` would.

    Raises:
        ValueError: not JSON (``json.JSONDecodeError``), or bytes that are not UTF-8
            (``UnicodeDecodeError``).
        RecursionError: nested deeper than ``json`` goes.
    """
    if isinstance(data, memoryview):
        data = bytes(data)
    # Non-ASCII characters encode to bytes >= 0x80, never to digits; surrogatepass: lone
    # surrogates are json's to judge, not this check's.
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    if not _has_long_digits(raw):
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass  # NaN, lone surrogates, UTF-16, or not JSON: json decides, as before
    return json.loads(data)


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON (keys in insertion order).

    Raises:
        TypeError: a value JSON cannot hold.
        ValueError: a string that is not valid Unicode (lone surrogates), a circular value.
    """
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def dumps_sorted(value: Any) -> bytes:
    """Compact UTF-8 JSON with every object's keys sorted (the events' canonical form).

    Raises:
        TypeError: a value JSON cannot hold.
        ValueError: a string that is not valid Unicode (lone surrogates), a circular value.
    """
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError:
        return json.dumps(
            value, separators=(",", ":"), ensure_ascii=False, sort_keys=True
        ).encode("utf-8")


def dumps_ascii(text: str) -> bytes:
    """A JSON string exactly as ``json.dumps(text)`` writes it (non-ASCII escaped).

    Table keys are stored as these bytes: the same key must give the same bytes whatever
    encoder wrote it before.
    """
    if text.isascii() and text.isprintable():
        # Space to "~": both escape only '"' and '\\' (tests/unit/test_json_codec.py).
        return orjson.dumps(text)
    return json.dumps(text).encode("ascii")
