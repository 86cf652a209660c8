"""The comparisons of fuzzy identity resolution: one table of named levels, splink's way.

Each comparison (first name, last name, house number, street, second address line,
city, postcode, phone, email) reads one Profile feature and sorts a pair of values into
the first of its named levels whose test holds, best first, as splink's comparisons do
(exact, nickname, Jaro-Winkler or OSA bands, phonetic, initial, else); a side without a
value is the null level (None) and weighs nothing. The weight of each level is fitted
from data and kept as data (model.py, data/identity_model.json), looked up by the
comparison's and the level's names. Exact levels of names, streets and cities are
term-frequency adjusted (``term_frequency``).

Comparisons of names, streets, cities and postcodes read only the first
`MAX_FIELD_CHARS` characters of a value and cache their levels (bounded), so a
300,000-character name costs what a 64-character one does.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field

from rapidfuzz import fuzz
from rapidfuzz.distance import OSA, JaroWinkler

from realgeeks_sync.app.domain.matching.names import is_nickname_pair, soundex

__all__ = [
    "CITY",
    "COMPARISONS",
    "EMAIL",
    "FIRST_NAME",
    "HOUSE",
    "LAST_NAME",
    "LINE2",
    "MAX_FIELD_CHARS",
    "PHONE",
    "POSTCODE",
    "STREET",
    "Comparison",
    "Level",
    "level_of",
]

# Longest value a comparison reads: names and streets past this are not names or streets.
MAX_FIELD_CHARS = 64
# Entries per level cache: keys are at most 2 x MAX_FIELD_CHARS characters, so each cache
# holds at most about 2 x 16384 x (49 + 4 x 64) bytes = 10 MB even for 4-byte characters.
_CACHE_ENTRIES = 16384


@dataclass(frozen=True)
class Level:
    """One named level of a comparison: ``test(a, b)`` says whether two values reach it."""

    name: str
    test: Callable[[str, str], bool]


@dataclass(frozen=True)
class Comparison:
    """One field's comparison: the Profile feature it reads and its levels, best first.

    The last level always holds (else). ``cut``: values are cut to MAX_FIELD_CHARS and
    the levels of a pair cached; phones and emails are short already and not cut.
    """

    name: str
    feature: str  # the Profile attribute it reads
    table: tuple[Level, ...]
    term_frequency: bool = False
    cut: bool = True
    levels: tuple[str, ...] = field(init=False, compare=False)  # the level names, best first
    _cached: functools._lru_cache_wrapper[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "levels", tuple(level.name for level in self.table))
        cached = functools.lru_cache(maxsize=_CACHE_ENTRIES)(self._first)
        object.__setattr__(self, "_cached", cached)

    def level(self, a: str, b: str) -> str:
        """The name of the first level two values reach."""
        if self.cut:
            return self._cached(a[:MAX_FIELD_CHARS], b[:MAX_FIELD_CHARS])
        return self._first(a, b)

    def cache_info(self) -> functools._CacheInfo:
        """The level cache's statistics (hits, misses, maxsize, currsize)."""
        return self._cached.cache_info()

    def cache_clear(self) -> None:
        """Empty the level cache."""
        self._cached.cache_clear()

    def _first(self, a: str, b: str) -> str:
        for level in self.table:
            if level.test(a, b):
                return level.name
        return self.table[-1].name


# --- the tests the levels are made of --------------------------------------------------


def _exact(a: str, b: str) -> bool:
    return a == b


def _else(a: str, b: str) -> bool:
    return True


def _jaro_winkler(threshold: float) -> Callable[[str, str], bool]:
    def test(a: str, b: str) -> bool:
        return JaroWinkler.normalized_similarity(a, b) >= threshold

    return test


def _nickname(a: str, b: str) -> bool:
    """The first words are one given name (bob, robert)."""
    return is_nickname_pair(a.split()[0], b.split()[0])


def _one_edit_of_three(a: str, b: str) -> bool:
    return OSA.distance(a, b) <= 1 and min(len(a), len(b)) >= 3


def _first_name_close(a: str, b: str) -> bool:
    """Jaro-Winkler 0.92, or one edit apart (three letters or more)."""
    return JaroWinkler.normalized_similarity(a, b) >= 0.92 or _one_edit_of_three(a, b)


def _last_name_close(a: str, b: str) -> bool:
    """As first names, or sharing a word: double-barrelled or married names ("smith jones")."""
    return _first_name_close(a, b) or bool(set(a.split()) & set(b.split()))


def _same_sound(a: str, b: str) -> bool:
    return bool(soundex(a)) and soundex(a) == soundex(b)


def _initial(a: str, b: str) -> bool:
    return (len(a) == 1 or len(b) == 1) and a[0] == b[0]


def _one_edit(a: str, b: str) -> bool:
    return OSA.distance(a, b) <= 1


def _same_words(a: str, b: str) -> bool:
    """Words in another order, or one word dropped."""
    return fuzz.token_sort_ratio(a, b) >= 85


def _one_digit_off(a: str, b: str) -> bool:
    return len(a) == len(b) and OSA.distance(a, b) <= 1


def _same_last7(a: str, b: str) -> bool:
    return a[-7:] == b[-7:]


def _domain_typo(a: str, b: str) -> bool:
    """Same mailbox name, a domain within two edits."""
    local_a, _, domain_a = a.partition("@")
    local_b, _, domain_b = b.partition("@")
    return (
        local_a == local_b
        and OSA.distance(domain_a[:MAX_FIELD_CHARS], domain_b[:MAX_FIELD_CHARS]) <= 2
    )


EXACT = Level("exact", _exact)
ELSE = Level("else", _else)
JW92 = Level("jw92", _jaro_winkler(0.92))
JW80 = Level("jw80", _jaro_winkler(0.80))
OSA1 = Level("osa1", _one_edit)
_TEXT_LEVELS = (EXACT, JW92, Level("tokens", _same_words), JW80, ELSE)

# The table: every comparison, its feature, its levels best first. Street names carry no
# house number; a phone is the digits of an E.164 number. An email counts only as the same
# mailbox (or a domain typo): a local part is built from the person's names, so two
# people of one name pick "maryjones" and "mary.jones", evidence the names already gave.
FIRST_NAME = Comparison(
    "first_name",
    "first",
    (
        EXACT,
        Level("nickname", _nickname),
        Level("jw92", _first_name_close),
        Level("phonetic", _same_sound),
        JW80,
        Level("initial", _initial),
        ELSE,
    ),
    term_frequency=True,
)
LAST_NAME = Comparison(
    "last_name",
    "last",
    (EXACT, Level("jw92", _last_name_close), Level("phonetic", _same_sound), JW80, ELSE),
    term_frequency=True,
)
HOUSE = Comparison("house", "houses", (EXACT, OSA1, ELSE))
STREET = Comparison("street", "street_names", _TEXT_LEVELS, term_frequency=True)
LINE2 = Comparison("line2", "lines", _TEXT_LEVELS)
CITY = Comparison("city", "city_names", _TEXT_LEVELS, term_frequency=True)
POSTCODE = Comparison("postcode", "zips", (EXACT, OSA1, ELSE))
PHONE = Comparison(
    "phone",
    "phones",
    (EXACT, Level("osa1", _one_digit_off), Level("last7", _same_last7), ELSE),
    cut=False,
)
EMAIL = Comparison("email", "emails", (EXACT, Level("domain_typo", _domain_typo), ELSE), cut=False)

COMPARISONS: tuple[Comparison, ...] = (
    FIRST_NAME,
    LAST_NAME,
    HOUSE,
    STREET,
    LINE2,
    CITY,
    POSTCODE,
    PHONE,
    EMAIL,
)


def level_of(comparison: Comparison, xs: tuple[str, ...], ys: tuple[str, ...]) -> str | None:
    """The best level over all value pairs of two records; None (null) when a side is empty."""
    if not xs or not ys:
        return None
    best = len(comparison.levels) - 1
    for x in xs:
        for y in ys:
            rank = comparison.levels.index(comparison.level(x, y))
            if rank < best:
                best = rank
                if rank == 0:
                    return comparison.levels[0]
    return comparison.levels[best]
