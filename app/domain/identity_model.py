"""The fitted Fellegi-Sunter model of fuzzy identity resolution: levels in code, weights as data.

Each comparison (first name, last name, house number, street, second address line,
city, postcode, phone, email) sorts a pair of values into one of its named levels,
best first, as splink's comparisons do (exact, nickname, Jaro-Winkler or OSA bands,
phonetic, initial, else); a side without a value is the null level and weighs nothing.
The weight of a level is log2(m / u): m the share of true pairs at that level, u the
share of random pairs. Both are fitted from data by ops/fit_identity_model.py (u from
random pairs, m and the prior by EM over blocked pairs) and kept in a JSON file that
the agent loads at start-up; scoring needs no splink. Exact levels of names, streets
and cities are term-frequency adjusted: "smith" = "smith" is weaker evidence than
"zaoui" = "zaoui" (weight log2(m / tf(value)) instead of log2(m / u)).

The level functions read only the first `MAX_FIELD_CHARS` characters of a value, so a
300,000-character name costs what a 64-character one does.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from rapidfuzz import fuzz
from rapidfuzz.distance import OSA, JaroWinkler

from realgeeks_sync.app.domain.names import is_nickname_pair, soundex

__all__ = [
    "COMPARISONS",
    "DEFAULT_MODEL_PATH",
    "MAX_FIELD_CHARS",
    "Comparison",
    "IdentityModel",
    "ModelFileError",
    "default_model",
    "level_of",
]

DEFAULT_MODEL_PATH = Path(__file__).with_name("data") / "identity_model.json"
MODEL_SCHEMA = "identity_model.v1"
# Longest value a comparison reads: names and streets past this are not names or streets.
MAX_FIELD_CHARS = 64
# Entries per level cache: keys are at most 2 x MAX_FIELD_CHARS characters, so each cache
# holds at most about 2 x 16384 x (49 + 4 x 64) bytes = 10 MB even for 4-byte characters.
_CACHE_ENTRIES = 16384


class ModelFileError(ValueError):
    """The identity model file is missing, unreadable or lacks a level the code needs."""


def _cut(value: str) -> str:
    return value[:MAX_FIELD_CHARS]


@lru_cache(maxsize=_CACHE_ENTRIES)
def _name_level(a: str, b: str, first: bool) -> str:
    if a == b:
        return "exact"
    if first and is_nickname_pair(a.split()[0], b.split()[0]):
        return "nickname"
    similarity = JaroWinkler.normalized_similarity(a, b)
    if similarity >= 0.92 or (OSA.distance(a, b) <= 1 and min(len(a), len(b)) >= 3):
        return "jw92"
    if soundex(a) and soundex(a) == soundex(b):
        return "phonetic"
    if similarity >= 0.8:
        return "jw80"
    if first and (len(a) == 1 or len(b) == 1) and a[0] == b[0]:
        return "initial"
    return "else"


def first_name_level(a: str, b: str) -> str:
    """exact, nickname, jw92 (or one edit), phonetic, jw80, initial, else."""
    return _name_level(_cut(a), _cut(b), True)


def last_name_level(a: str, b: str) -> str:
    """exact, jw92 (or one edit), phonetic, jw80, else."""
    a, b = _cut(a), _cut(b)
    level = _name_level(a, b, False)
    # Double-barrelled or married names: "smith jones" and "smith".
    if level in ("phonetic", "jw80", "else") and set(a.split()) & set(b.split()):
        return "jw92"
    return level


@lru_cache(maxsize=_CACHE_ENTRIES)
def _house_level(a: str, b: str) -> str:
    if a == b:
        return "exact"
    return "osa1" if OSA.distance(a, b) <= 1 else "else"


def house_level(a: str, b: str) -> str:
    """exact, osa1 (one digit typed wrong, swapped, missing or extra), else."""
    return _house_level(_cut(a), _cut(b))


@lru_cache(maxsize=_CACHE_ENTRIES)
def _text_level(a: str, b: str) -> str:
    if a == b:
        return "exact"
    similarity = JaroWinkler.normalized_similarity(a, b)
    if similarity >= 0.92:
        return "jw92"
    if fuzz.token_sort_ratio(a, b) >= 85:
        return "tokens"  # words in another order, or one word dropped
    return "jw80" if similarity >= 0.8 else "else"


def street_level(a: str, b: str) -> str:
    """Street names (no house number): exact, jw92, tokens, jw80, else."""
    return _text_level(_cut(a), _cut(b))


def line2_level(a: str, b: str) -> str:
    """Second address line (unit, building, estate): exact, jw92, tokens, jw80, else."""
    return _text_level(_cut(a), _cut(b))


def city_level(a: str, b: str) -> str:
    """exact, jw92, tokens, jw80, else."""
    return _text_level(_cut(a), _cut(b))


def postcode_level(a: str, b: str) -> str:
    """exact, osa1 (one digit off), else."""
    return _house_level(_cut(a), _cut(b))


def phone_level(a: str, b: str) -> str:
    """Digits of E.164 numbers: exact, osa1, last7, else."""
    if a == b:
        return "exact"
    if len(a) == len(b) and OSA.distance(a, b) <= 1:
        return "osa1"
    return "last7" if a[-7:] == b[-7:] else "else"


def email_level(a: str, b: str) -> str:
    """exact, domain_typo (same mailbox name, a domain within two edits), else.

    Nothing weaker counts: a local part is built from the person's names, so two people
    of one name pick "maryjones" and "mary.jones"; that similarity is the names'
    evidence, already counted by the name comparisons.
    """
    if a == b:
        return "exact"
    local_a, _, domain_a = a.partition("@")
    local_b, _, domain_b = b.partition("@")
    if (
        local_a == local_b
        and OSA.distance(domain_a[:MAX_FIELD_CHARS], domain_b[:MAX_FIELD_CHARS]) <= 2
    ):
        return "domain_typo"
    return "else"


@dataclass(frozen=True)
class Comparison:
    """One field's comparison: its levels (best first), the level function, tf or not."""

    name: str
    feature: str  # the Profile attribute it reads
    levels: tuple[str, ...]
    level: Callable[[str, str], str]
    term_frequency: bool = False


_NAME_LEVELS = ("exact", "jw92", "phonetic", "jw80", "else")
_TEXT_LEVELS = ("exact", "jw92", "tokens", "jw80", "else")
COMPARISONS: tuple[Comparison, ...] = (
    Comparison(
        "first_name",
        "first",
        ("exact", "nickname", "jw92", "phonetic", "jw80", "initial", "else"),
        first_name_level,
        term_frequency=True,
    ),
    Comparison("last_name", "last", _NAME_LEVELS, last_name_level, term_frequency=True),
    Comparison("house", "houses", ("exact", "osa1", "else"), house_level),
    Comparison("street", "street_names", _TEXT_LEVELS, street_level, term_frequency=True),
    Comparison("line2", "lines", _TEXT_LEVELS, line2_level),
    Comparison("city", "city_names", _TEXT_LEVELS, city_level, term_frequency=True),
    Comparison("postcode", "zips", ("exact", "osa1", "else"), postcode_level),
    Comparison("phone", "phones", ("exact", "osa1", "last7", "else"), phone_level),
    Comparison("email", "emails", ("exact", "domain_typo", "else"), email_level),
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


@dataclass(frozen=True)
class _Weights:
    """Fitted weights of one comparison: bits per level, term frequencies for exact."""

    bits: Mapping[str, float]
    m_exact: float
    tf: Mapping[str, float] = field(default_factory=dict)
    tf_floor: float = 0.0

    def exact_bits(self, value: str) -> float:
        """log2(m / tf(value)) for an exact agreement on this value."""
        frequency = max(self.tf.get(value, self.tf_floor), self.tf_floor)
        if frequency <= 0.0:
            return self.bits["exact"]
        return math.log2(self.m_exact / frequency)


@dataclass(frozen=True)
class IdentityModel:
    """Fitted m/u weights per comparison level and the prior, read from the model file."""

    prior_bits: float
    weights: Mapping[str, _Weights]
    meta: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> IdentityModel:
        """Read a model document (as written by ops/fit_identity_model.py).

        Raises:
            ModelFileError: wrong schema, or a comparison or level the code needs is missing.
        """
        if not isinstance(data, Mapping) or data.get("schema") != MODEL_SCHEMA:
            raise ModelFileError(f"not an {MODEL_SCHEMA} document")
        fitted = data.get("comparisons")
        if not isinstance(fitted, Mapping):
            raise ModelFileError("model has no comparisons")
        weights: dict[str, _Weights] = {}
        for comparison in COMPARISONS:
            entry = fitted.get(comparison.name)
            if not isinstance(entry, Mapping) or not isinstance(entry.get("levels"), Mapping):
                raise ModelFileError(f"model lacks comparison {comparison.name}")
            bits: dict[str, float] = {}
            for level in comparison.levels:
                mu = entry["levels"].get(level)
                try:
                    m, u = float(mu["m"]), float(mu["u"])
                except (TypeError, KeyError, ValueError) as exc:
                    raise ModelFileError(f"{comparison.name}.{level}: no m and u") from exc
                if not (0.0 < m <= 1.0 and 0.0 < u <= 1.0):
                    raise ModelFileError(f"{comparison.name}.{level}: m and u must be in (0, 1]")
                bits[level] = math.log2(m / u)
            tf = entry.get("tf") if comparison.term_frequency else None
            weights[comparison.name] = _Weights(
                bits=bits,
                m_exact=float(entry["levels"]["exact"]["m"]),
                tf={str(k): float(v) for k, v in tf.items()} if isinstance(tf, Mapping) else {},
                tf_floor=float(entry.get("tf_floor", 0.0)) if isinstance(tf, Mapping) else 0.0,
            )
        try:
            prior = float(data["prior_bits"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFileError("model has no prior_bits") from exc
        meta = data.get("fitted")
        meta = meta if isinstance(meta, Mapping) else {}
        return cls(prior_bits=prior, weights=weights, meta=meta)

    @classmethod
    def load(cls, path: Path) -> IdentityModel:
        """Read a model file.

        Raises:
            ModelFileError: the file cannot be read or is not a model.
        """
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ModelFileError(f"cannot read identity model {path}: {exc}") from exc
        return cls.from_json(data)

    def bits(self, comparison: Comparison, level: str | None, value: str | None = None) -> float:
        """Weight in bits of one comparison's level (0 for null); tf-adjusted when exact."""
        if level is None:
            return 0.0
        weights = self.weights[comparison.name]
        if level == "exact" and comparison.term_frequency and value is not None:
            return weights.exact_bits(value)
        return weights.bits[level]


@lru_cache(maxsize=4)
def default_model(path: Path = DEFAULT_MODEL_PATH) -> IdentityModel:
    """The model file shipped with the code (or another path), read once per process.

    Raises:
        ModelFileError: the file cannot be read or is not a model.
    """
    return IdentityModel.load(path)
