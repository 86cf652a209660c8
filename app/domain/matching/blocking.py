"""Blocking: named rules giving the keys a lead is filed under and a record looks up.

Fuzzy matching scores only the leads that share a blocking key with a record, never a
scan. Each rule's key survives a typo the others do not; a candidate sharing more keys
is scored first.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from realgeeks_sync.app.domain.matching.features import email_local
from realgeeks_sync.app.domain.matching.names import ROOTS, phonetic
from realgeeks_sync.app.domain.matching.profile import Profile, dedupe

__all__ = [
    "BLOCKING",
    "BlockingRule",
    "PlaceKeys",
    "blocking_keys",
    "blocking_keys_with",
    "filing_keys_by_rule",
    "place_keys",
]

_DIRECTION_WORDS = frozenset({"n", "s", "e", "w", "ne", "nw", "se", "sw"})
_EMAIL_BLOCK_STOPLIST = frozenset(
    {"info", "admin", "contact", "sales", "office", "test", "noreply", "none", "mail"}
)


@dataclass(frozen=True)
class BlockingRule:
    """A named blocking rule: the keys a profile is filed under and the keys it looks up.

    `keys(profile, locations)` gets the profile and where it is filed or looked up
    (its postcode, else its city); each rule survives a typo the others do not.
    `located`: False for a rule whose keys ignore the locations (built once per record).
    `contacts`: True for a rule that reads emails or phones (and ignores the locations);
    the keys of the others depend on names and places only (`PlaceKeys`).
    """

    name: str
    keys: Callable[[Profile, Sequence[str]], list[str]]
    located: bool = True
    contacts: bool = False  # reads emails/phones; every other rule reads names and places


def _surname_keys(p: Profile, locs: Sequence[str]) -> list[str]:
    """Sound of the surname in the postcode: survives a typo in it, a new first name and a
    new street."""
    return [f"n|{phonetic(last)}|{loc}" for last in p.last[-1:] for loc in locs]


def _initial_house_keys(p: Profile, locs: Sequence[str]) -> list[str]:
    """First initial and house number, site-wide: survives a wrong postcode and surname."""
    if not p.first or not p.houses:
        return []
    return [f"i|{initial}|{p.houses[-1]}" for initial in _initials(p.first[-1])]


def _street_keys(p: Profile, locs: Sequence[str]) -> list[str]:
    """House number and the sound of the street in the postcode: survives name typos."""
    house = p.streets[-1].split("|", 1)[0] if p.streets else ""
    sound = _street_sound(p)
    if not house or sound is None:
        return []
    return [f"a|{house}|{sound}|{loc}" for loc in locs]


def _street_sound(p: Profile) -> str | None:
    """Soundex of the newest street's first word that is not a direction (N Main -> M500)."""
    if not p.streets:
        return None
    return _name_sound(p.streets[-1].split("|", 1)[-1])


# Built for every record (filed and looked up): remembered per street name and first
# name, bounded (entries are strings cut to MAX_STREET_CHARS / MAX_NAME_CHARS).
_CACHE_ENTRIES = 8192


@lru_cache(maxsize=_CACHE_ENTRIES)
def _name_sound(name: str) -> str:
    """Soundex of a street name's first word that is not a direction."""
    words = [w for w in name.split() if w not in _DIRECTION_WORDS] or name.split()
    return phonetic(words[0]) if words else ""


def _names_keys(p: Profile, locs: Sequence[str]) -> list[str]:
    """Sounds of both names, site-wide: survives a new address and a wrong postcode."""
    if not p.first or not p.last:
        return []
    return [f"f|{phonetic(p.first[-1].split()[0])}|{phonetic(p.last[-1])}"]


def _surname_city_keys(p: Profile, locs: Sequence[str]) -> list[str]:
    """Sound of the surname in the city: survives a wrong postcode without a first name."""
    if not p.last or not p.city_names:
        return []
    return [f"l|{phonetic(p.last[-1])}|{p.city_names[-1]}"]


def _first_postcode_keys(p: Profile, locs: Sequence[str]) -> list[str]:
    """Sound of the first name in the postcode: survives a new surname and a new house."""
    if not p.first:
        return []
    return [f"g|{phonetic(p.first[-1].split()[0])}|{loc}" for loc in locs]


def _street_city_keys(p: Profile, locs: Sequence[str]) -> list[str]:
    """House number and street sound in the city: survives a wrong postcode and names."""
    if not p.city_names:
        return []
    city = p.city_names[-1]
    return ["t" + key[1:-1] + city for key in _street_keys(p, ["-"])]


def _contact_keys(p: Profile, locs: Sequence[str]) -> list[str]:
    """The last seven digits of a phone and an email's local part."""
    keys = [f"p|{digits[-7:]}" for digits in p.phones]
    for email in p.emails:
        local = email_local(email)
        if len(local) >= 3 and local not in _EMAIL_BLOCK_STOPLIST:
            keys.append(f"e|{local}")
    return keys


@lru_cache(maxsize=_CACHE_ENTRIES)
def _initials(first: str) -> tuple[str, ...]:
    """First letters of a first name and of the formal names it may stand for."""
    if not first:
        return ("_",)
    token = first.split()[0]
    return tuple(sorted({token[0]} | {root[0] for root in ROOTS.get(token, ())}))


# The blocking rules, in one place; a candidate sharing more keys is scored first.
BLOCKING: tuple[BlockingRule, ...] = (
    BlockingRule("surname_postcode", _surname_keys),
    BlockingRule("initial_house", _initial_house_keys, located=False),
    BlockingRule("street_postcode", _street_keys),
    BlockingRule("names", _names_keys, located=False),
    BlockingRule("surname_city", _surname_city_keys, located=False),
    BlockingRule("first_postcode", _first_postcode_keys),
    BlockingRule("street_city", _street_city_keys, located=False),
    BlockingRule("contact", _contact_keys, located=False, contacts=True),
)


def _locations(profile: Profile) -> tuple[list[str], list[str]]:
    """(locations a lead is filed under, locations a record looks up).

    Postcode blocks are small. "c:" city blocks hold everyone in the city (large,
    capped) and are read only by records without a postcode; "cz:" blocks hold only
    the leads without a postcode and are read by the rest.
    """
    zip5 = profile.zips[-1] if profile.zips else None
    city_key = profile.cities[-1] if profile.cities else None
    if zip5:
        return [zip5, *([f"c:{city_key}"] if city_key else [])], [
            zip5,
            *([f"cz:{city_key}"] if city_key else []),
        ]
    if city_key:
        return [f"c:{city_key}", f"cz:{city_key}"], [f"c:{city_key}"]
    return ["-"], ["-"]


def filing_keys_by_rule(profile: Profile) -> dict[str, list[str]]:
    """The keys a lead is filed under, per blocking rule (ops/fit_identity_model.py)."""
    file_locs, _ = _locations(profile)
    return {rule.name: rule.keys(profile, file_locs) for rule in BLOCKING}


def blocking_keys(
    profile: Profile, *, query: bool = True
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(keys to file a lead under, keys to look a record up with).

    A record whose names may be swapped also looks up the surname keys of its first name.
    `query=False` leaves the look-up keys out (empty): indexing a lead files it only.
    """
    return blocking_keys_with(profile, place_keys(profile, query=query), query=query)


@dataclass(frozen=True)
class PlaceKeys:
    """The keys of the rules that read names and places only, for one profile's names and
    places: reusable for any profile with the same ones, whatever its emails and phones.

    `filed`/`looked_up`: the keys of the rules between contact rules (one run more than
    there are contact rules); `looked_up` is None when built without look-up keys.
    `swapped`: the surname keys of the first name (names typed in each other's boxes).
    """

    filed: tuple[tuple[str, ...], ...]
    looked_up: tuple[tuple[str, ...], ...] | None
    swapped: tuple[str, ...]


_CONTACT_RULES = tuple(rule for rule in BLOCKING if rule.contacts)


def place_keys(profile: Profile, *, query: bool = True) -> PlaceKeys:
    """The keys of the name-and-place rules of a profile (look-up keys too when `query`)."""
    file_locs, look_locs = _locations(profile)
    filed: list[tuple[str, ...]] = []
    looked: list[tuple[str, ...]] = []
    run: list[str] = []
    looked_run: list[str] = []
    for rule in BLOCKING:
        if rule.contacts:
            filed.append(tuple(run))
            looked.append(tuple(looked_run))
            run, looked_run = [], []
        elif rule.located:
            run += rule.keys(profile, file_locs)
            if query:
                looked_run += rule.keys(profile, look_locs)
        else:
            keys = rule.keys(profile, ())
            run += keys
            if query:
                looked_run += keys
    filed.append(tuple(run))
    looked.append(tuple(looked_run))
    swapped: tuple[str, ...] = ()
    if query and profile.first and profile.last:  # names typed in each other's boxes
        swapped = tuple(_surname_keys(Profile(first=profile.last, last=profile.first), look_locs))
    return PlaceKeys(tuple(filed), tuple(looked) if query else None, swapped)


def blocking_keys_with(
    profile: Profile, place: PlaceKeys, *, query: bool = True
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """`blocking_keys` of a profile whose name-and-place keys are `place`.

    Raises:
        ValueError: look-up keys asked of a `place` built without them.
    """
    if query and place.looked_up is None:
        raise ValueError("place keys built without look-up keys")
    blocks: list[str] = list(place.filed[0])
    lookups: list[str] = list(place.looked_up[0]) if place.looked_up and query else []
    for n, rule in enumerate(_CONTACT_RULES, start=1):
        keys = rule.keys(profile, ())
        blocks += keys
        blocks += place.filed[n]
        if query and place.looked_up:
            lookups += keys
            lookups += place.looked_up[n]
    if not query:
        return dedupe(blocks), ()
    lookups += place.swapped
    return dedupe(blocks), dedupe(lookups)
