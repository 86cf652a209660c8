"""Fellegi-Sunter scoring of two profiles over the comparison table, as splink does it.

Every comparison in COMPARISONS gives the fitted weight of the level two profiles
reach (model.py); the sum plus the fitted prior is a match probability. How the weights
add up is the policy below, in one place: comparisons whose values people type in each
other's boxes (``READ_BOTH_WAYS``) are read as typed and swapped, the better reading
counting; two different unit numbers cap the address comparisons (``ADDRESS``) at 0.
"""

from __future__ import annotations

import math
import re

from realgeeks_sync.app.domain.matching.comparisons import (
    COMPARISONS,
    FIRST_NAME,
    HOUSE,
    LAST_NAME,
    LINE2,
    STREET,
    Comparison,
    level_of,
)
from realgeeks_sync.app.domain.matching.household import NameAgreement, fuzzy_evidence
from realgeeks_sync.app.domain.matching.model import IdentityModel, default_model
from realgeeks_sync.app.domain.matching.profile import Profile

__all__ = ["ADDRESS", "READ_BOTH_WAYS", "match_bits", "score_pair"]

# Pairs of comparisons typed in each other's boxes: first and last name; street and
# second address line. Each pair is read as typed and swapped; the better reading counts.
READ_BOTH_WAYS: tuple[tuple[Comparison, Comparison], ...] = (
    (FIRST_NAME, LAST_NAME),
    (STREET, LINE2),
)
# The comparisons of one home: apartment 4 and apartment 9 of one building are two
# homes, so when the unit numbers differ the shared street proves nothing (sum <= 0).
ADDRESS: tuple[Comparison, ...] = (HOUSE, STREET, LINE2)
_PAIRED = frozenset(c.name for pair in READ_BOTH_WAYS for c in pair)
_ON_THEIR_OWN = tuple(
    c for c in COMPARISONS if c.name not in _PAIRED and c not in ADDRESS
)  # city, postcode, phone, email
_DIGITS = re.compile(r"\d+")


def _bits(
    model: IdentityModel, comparison: Comparison, xs: tuple[str, ...], ys: tuple[str, ...]
) -> float:
    """Fitted weight of one comparison over two records' values (0 when a side is empty)."""
    level = level_of(comparison, xs, ys)
    value = None
    if level == "exact" and comparison.term_frequency:
        common = set(xs) & set(ys)
        # The rarest shared value is the evidence (largest weight).
        value = max(common, key=lambda v: model.bits(comparison, "exact", v), default=None)
    return model.bits(comparison, level, value)


def _better_reading(
    model: IdentityModel, pair: tuple[Comparison, Comparison], a: Profile, b: Profile
) -> float:
    """Weight of two comparisons read as typed, or swapped on ``a``'s side if that is more."""
    one, other = pair
    a_one, a_other = getattr(a, one.feature), getattr(a, other.feature)
    b_one, b_other = getattr(b, one.feature), getattr(b, other.feature)
    typed = _bits(model, one, a_one, b_one) + _bits(model, other, a_other, b_other)
    if a_one and a_other:
        swapped = _bits(model, one, a_other, b_one) + _bits(model, other, a_one, b_other)
        return max(typed, swapped)
    return typed


def match_bits(model: IdentityModel, a: Profile, b: Profile) -> float:
    """Sum of the fitted weights of every comparison of two profiles (no prior)."""
    names_pair, street_pair = READ_BOTH_WAYS
    total = sum(
        _bits(model, c, getattr(a, c.feature), getattr(b, c.feature)) for c in _ON_THEIR_OWN
    )
    names = _better_reading(model, names_pair, a, b)
    address = _bits(model, HOUSE, a.houses, b.houses) + _better_reading(model, street_pair, a, b)
    if _units_differ(a.lines, b.lines):
        address = min(address, 0.0)
    return total + names + address


def _units_differ(xs: tuple[str, ...], ys: tuple[str, ...]) -> bool:
    """Both records give unit numbers on their second lines, and none is the other's."""
    numbers_x = {n for x in xs for n in _DIGITS.findall(x)}
    numbers_y = {n for y in ys for n in _DIGITS.findall(y)}
    return bool(numbers_x and numbers_y) and not numbers_x & numbers_y


def score_pair(
    probe: Profile, candidate: Profile, model: IdentityModel | None = None
) -> tuple[float, NameAgreement] | None:
    """Match probability of two profiles and their name agreement; None when vetoed."""
    names = fuzzy_evidence(probe, candidate)
    if names is None:
        return None
    model = model or default_model()
    bits = match_bits(model, probe, candidate) + model.prior_bits
    probability = 1.0 / (1.0 + math.pow(2.0, -max(min(bits, 60.0), -60.0)))
    # Never a certain 1.0: a threshold of 1 switches fuzzy matching off.
    return min(round(probability, 6), 0.999999), names
