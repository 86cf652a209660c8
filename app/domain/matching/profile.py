"""A lead's profile: the compact, JSON-safe features identity resolution compares."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

__all__ = [
    "EMPTY_PROFILE",
    "MAX_PLACE_CHARS",
    "MAX_POSTCODE_CHARS",
    "MAX_STREET_CHARS",
    "Profile",
    "dedupe",
]

# Longest street line, city or postcode the matcher reads (names: names.MAX_NAME_CHARS).
# Longer input is cut before any key or comparison sees it, so one absurd field costs
# what an ordinary one does and cannot inflate a stored profile.
MAX_STREET_CHARS = 96
MAX_PLACE_CHARS = 48
MAX_POSTCODE_CHARS = 12


def dedupe(items: Iterable[str]) -> tuple[str, ...]:
    """Items in first-seen order without repeats."""
    return tuple(dict.fromkeys(items))


@dataclass(frozen=True)
class Profile:
    """Compact, JSON-safe features of a lead for comparing it with a new record.

    first/last: folded names (last without Jr/Sr); gen: generational suffixes;
    streets: "house|street" keys; lines: second address lines (unit, building);
    zips: postcodes (US ZIPs as 5 digits); cities: folded "city state"; city_names:
    folded cities; emails: normalized emails; phones: digits of E.164 numbers.
    """

    first: tuple[str, ...] = ()
    last: tuple[str, ...] = ()
    gen: tuple[str, ...] = ()
    streets: tuple[str, ...] = ()
    lines: tuple[str, ...] = ()
    zips: tuple[str, ...] = ()
    cities: tuple[str, ...] = ()
    city_names: tuple[str, ...] = ()
    emails: tuple[str, ...] = ()
    phones: tuple[str, ...] = ()

    _KEYS = (
        "first", "last", "gen", "streets", "lines", "zips", "cities", "city_names",
        "emails", "phones",
    )  # fmt: skip

    @cached_property
    def houses(self) -> tuple[str, ...]:
        """House numbers of the streets."""
        return dedupe(h for h in (s.split("|", 1)[0] for s in self.streets) if h)

    @cached_property
    def street_names(self) -> tuple[str, ...]:
        """Street names without house numbers."""
        return dedupe(n for n in (s.split("|", 1)[-1] for s in self.streets) if n)

    def to_json(self) -> dict[str, list[str]]:
        """As stored in the index (a new dict)."""
        return {name: list(getattr(self, name)) for name in self._KEYS}

    @classmethod
    def from_json(cls, value: Mapping[str, Any] | None) -> Profile:
        """Read a stored profile; damaged parts read as empty, long values are cut."""
        if not isinstance(value, Mapping):
            return cls()
        parts: dict[str, tuple[str, ...]] = {}
        for name in cls._KEYS:
            items = value.get(name)
            if isinstance(items, list):
                # A list, not a generator, into tuple(): read for every candidate scored.
                parts[name] = tuple([x[:MAX_STREET_CHARS] for x in items if isinstance(x, str)])
        if "city_names" not in parts and parts.get("cities"):
            # Profiles stored before city_names existed: "honolulu hi" -> "honolulu".
            parts["city_names"] = tuple(c.rsplit(" ", 1)[0] for c in parts["cities"])
        return cls(**parts)


EMPTY_PROFILE = Profile()
