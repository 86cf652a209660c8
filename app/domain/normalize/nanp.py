"""North American numbers in their everyday shapes, read without libphonenumber's parse.

Nearly every lead's phone is a NANP number typed as "+18088172382", "(808) 817-2382",
"808.817.2382" or "+1 808 817 2382", and nearly every one is new, so the parse cache
misses: parse, region lookup and validation were half of `normalize_lead` (issue 13).

For these shapes the parse is certain: country code 1 and the ten digits as the national
number (a first digit of 2-9 is never a trunk prefix, an international prefix or a
leading zero). What libphonenumber then says of the number (possible, the region, valid)
is a function of its national number through its NANP metadata alone: every pattern it
consults (each region's number types and leading digits, the national prefix) is read
here, and `_pattern_depth` proves from each pattern's structure how many leading digits
decide it (six for most numbers, seven for a few Caribbean area codes, with the metadata
of phonenumbers 9.0). So libphonenumber is asked once per prefix, about the first number
seen with it, and its answer reused for the others.
"""

from __future__ import annotations

import re
import re._constants as sre
import re._parser as sre_parse
from collections.abc import Iterable
from functools import cache
from typing import Any

import phonenumbers
from phonenumbers import PhoneMetadata

__all__ = ["NanpAnswer", "nanp_national", "prefix_digits", "read_nanp"]

_NATIONAL_DIGITS = 10
# "+18088172382", "+1 808 817 2382", "(808) 817-2382", "808-817-2382", "8088172382":
# one separator throughout, ASCII digits only (\d would take other scripts' digits).
_SHAPE = re.compile(
    r"\+1(?P<sep1>[ ]?)(?P<a1>[2-9][0-9]{2})(?P=sep1)(?P<b1>[0-9]{3})(?P=sep1)(?P<c1>[0-9]{4})"
    r"|\((?P<a2>[2-9][0-9]{2})\) ?(?P<b2>[0-9]{3})-(?P<c2>[0-9]{4})"
    r"|(?P<a3>[2-9][0-9]{2})(?P<sep3>[-. ]?)(?P<b3>[0-9]{3})(?P=sep3)(?P<c3>[0-9]{4})"
)

# (has an E.164 form, valid, region when valid) for a prefix; None: ask libphonenumber.
NanpAnswer = tuple[bool, bool, str | None]
_MAX_PREFIXES = 65_536  # ~10 MB at most; a site's numbers share few prefixes
_answers: dict[str, NanpAnswer | None] = {}


def nanp_national(text: str, default_region: str | None) -> str | None:
    """The ten-digit national number of stripped ASCII text in a sure NANP shape, else None.

    Text without "+1" is read as libphonenumber reads it only in the US region.
    """
    match = _SHAPE.fullmatch(text)
    if match is None:
        return None
    if match["a1"]:
        return match["a1"] + match["b1"] + match["c1"]
    if default_region != "US":
        return None
    if match["a2"]:
        return match["a2"] + match["b2"] + match["c2"]
    return match["a3"] + match["b3"] + match["c3"]


def read_nanp(national: str) -> NanpAnswer | None:
    """What libphonenumber says of +1 `national` (a sure-shape national number).

    None when the metadata cannot be proven prefix-determined, or when re-reading the
    E.164 form might change it: the caller then takes the full parse.
    """
    depth = prefix_digits(national)
    if depth is None:
        return None
    prefix = national[:depth]
    answer = _answers.get(prefix, _UNASKED)
    if answer is _UNASKED:
        answer = _ask_libphonenumber(national)
        if len(_answers) >= _MAX_PREFIXES:
            _answers.clear()  # rare: a worker sees few prefixes; bounded memory first
        _answers[prefix] = answer
    return answer  # type: ignore[no-any-return]


_UNASKED: Any = object()


def _ask_libphonenumber(national: str) -> NanpAnswer | None:
    """The answer of `phones._parse_phone` for this number, from libphonenumber's calls."""
    number = phonenumbers.PhoneNumber(country_code=1, national_number=int(national))
    reason = phonenumbers.is_possible_number_with_reason(number)
    if reason != phonenumbers.ValidationResult.IS_POSSIBLE:
        return (False, False, None)
    metadata = PhoneMetadata.metadata_for_region("US")
    prefix = metadata.national_prefix_for_parsing if metadata else None
    if prefix and re.match(prefix, national):
        return None  # the E.164 form may not read back as itself: the full path decides
    region = phonenumbers.region_code_for_number(number)
    valid = region is not None and phonenumbers.is_valid_number_for_region(number, region)
    return (True, valid, region if valid else None)


def prefix_digits(national: str) -> int | None:
    """How many leading digits of ten-digit +1 `national` decide libphonenumber's answers.

    None (no shortcut) when a pattern has a construct `_pattern_depth` does not model.
    """
    plan = _plan()
    if plan is None:
        return None
    depth, deeper = plan
    for leading, region_depth in deeper:
        if leading.match(national):
            depth = max(depth, region_depth)
    return depth


@cache
def _plan() -> tuple[int, tuple[tuple[re.Pattern[str], int], ...]] | None:
    """(digits that decide every +1 number, (leading digits, digits) of deeper regions).

    libphonenumber finds a +1 number's region by the leading digits of the regions that
    have them and by the number types of those that do not (US, CA), then validates it
    with that region's types alone: a region's types are read only for numbers that
    start with its leading digits, so only those numbers need that region's depth.
    """
    try:
        us = PhoneMetadata.metadata_for_region("US")
        if us is None:
            return None
        # Possibility is a matter of length; the US national prefix decides whether the
        # E.164 form reads back unchanged.
        depths = [_pattern_depth(us.national_prefix_for_parsing or "", prefix=True)]
        deeper: list[tuple[re.Pattern[str], int]] = []
        for region in phonenumbers.COUNTRY_CODE_TO_REGION_CODE[1]:
            metadata = PhoneMetadata.metadata_for_region(region)
            if metadata is None:
                return None
            types = max(_type_depths(metadata), default=0)
            if metadata.leading_digits:
                depths.append(_pattern_depth(metadata.leading_digits, prefix=True))
                deeper.append((re.compile(metadata.leading_digits), types))
            else:
                depths.append(types)
    except _Unsupported:
        return None
    depth = max(depths)
    return depth, tuple((leading, d) for leading, d in deeper if d > depth)


def _type_depths(metadata: PhoneMetadata) -> Iterable[int]:
    """The depth of each number type's pattern of a region (what validation reads)."""
    for desc in _descs(metadata):
        if desc is not None and desc.national_number_pattern:
            yield _pattern_depth(desc.national_number_pattern, prefix=False)


def _descs(metadata: PhoneMetadata) -> tuple[Any, ...]:
    """A region's number types, as `phonenumbers._number_type_helper` reads them."""
    return (
        metadata.general_desc,
        metadata.premium_rate,
        metadata.toll_free,
        metadata.shared_cost,
        metadata.voip,
        metadata.personal_number,
        metadata.pager,
        metadata.uan,
        metadata.voicemail,
        metadata.fixed_line,
        metadata.mobile,
    )


class _Unsupported(Exception):
    """A pattern construct the depth analysis does not model."""


_DIGITS = frozenset("0123456789")
_ALL_DIGIT_CATEGORIES = {sre.CATEGORY_DIGIT, sre.CATEGORY_WORD, sre.CATEGORY_NOT_SPACE}
_NO_DIGIT_CATEGORIES = {sre.CATEGORY_NOT_DIGIT, sre.CATEGORY_SPACE, sre.CATEGORY_NOT_WORD}
_MAX_SHAPES = 10_000

# A pattern is summarized by the set of its branches' shapes over digit strings:
# (length, last position whose character class is not every digit, -1 for none).
# A ten-digit string fully matches iff some shape of length 10 accepts it; a shape whose
# last constrained position is p accepts by its first p+1 digits alone. So the largest
# p+1 over the length-10 shapes (over shapes up to length 10 for a prefix match, as
# `re.match` is used) is how many leading digits decide the match.
_Shapes = set[tuple[int, int]]


def _pattern_depth(pattern: str, *, prefix: bool) -> int:
    """Leading digits of a ten-digit string that decide `pattern`'s (full or prefix) match."""
    shapes = _sequence(list(sre_parse.parse(pattern)))
    if prefix:
        return max((last + 1 for length, last in shapes), default=0)
    return max((last + 1 for length, last in shapes if length == _NATIONAL_DIGITS), default=0)


def _concat(left: _Shapes, right: _Shapes) -> _Shapes:
    out: _Shapes = set()
    for length_a, last_a in left:
        for length_b, last_b in right:
            length = length_a + length_b
            if length <= _NATIONAL_DIGITS:  # longer never matches ten digits
                out.add((length, length_a + last_b if last_b >= 0 else last_a))
    if len(out) > _MAX_SHAPES:
        raise _Unsupported("too many shapes")
    return out


def _sequence(items: list[tuple[Any, Any]]) -> _Shapes:
    shapes: _Shapes = {(0, -1)}
    for op, arg in items:
        shapes = _concat(shapes, _node(op, arg))
    return shapes


def _node(op: Any, arg: Any) -> _Shapes:
    if op in (sre.LITERAL, sre.NOT_LITERAL, sre.ANY, sre.IN):
        return {(1, -1 if _digit_class(op, arg) == _DIGITS else 0)}
    if op is sre.BRANCH:
        out: _Shapes = set()
        for alternative in arg[1]:
            out |= _sequence(list(alternative))
        return out
    if op is sre.SUBPATTERN:
        return _sequence(list(arg[3]))
    if op in (sre.MAX_REPEAT, sre.MIN_REPEAT):
        low, high, body = arg
        if low > _NATIONAL_DIGITS:
            # Counted by shapes up to ten digits only: a body that can match nothing would
            # read as "never matches" here, where it may match.
            raise _Unsupported("repeat minimum above ten")
        one = _sequence(list(body))
        out = set()
        shapes: _Shapes = {(0, -1)}
        for count in range(_NATIONAL_DIGITS + 1):
            if count >= low:
                out |= shapes
            if count >= high or not shapes:
                break
            shapes = _concat(shapes, one)
        return out
    raise _Unsupported(str(op))


def _digit_class(op: Any, arg: Any) -> frozenset[str]:
    """The ASCII digits one character position accepts."""
    if op is sre.LITERAL:
        return _DIGITS & {chr(arg)}
    if op is sre.NOT_LITERAL:
        return _DIGITS - {chr(arg)}
    if op is sre.ANY:
        return _DIGITS
    accepted: set[str] = set()
    negate = False
    for item, value in arg:
        if item is sre.NEGATE:
            negate = True
        elif item is sre.LITERAL:
            accepted |= _DIGITS & {chr(value)}
        elif item is sre.RANGE:
            accepted |= {d for d in _DIGITS if value[0] <= ord(d) <= value[1]}
        elif item is sre.CATEGORY and value in _ALL_DIGIT_CATEGORIES:
            accepted |= _DIGITS
        elif not (item is sre.CATEGORY and value in _NO_DIGIT_CATEGORIES):
            raise _Unsupported(str(item))
    return frozenset(_DIGITS - accepted if negate else accepted)
