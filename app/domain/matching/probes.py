"""The probe: what one record offers to identity resolution, and the keys it is filed under."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from realgeeks_sync.app.domain.matching.blocking import PlaceKeys, blocking_keys_with, place_keys
from realgeeks_sync.app.domain.matching.features import (
    address_parts,
    as_str,
    first_key,
    is_placeholder_phone,
    name_key,
    phone_digits,
    place,
    postcode,
    split_last,
    street_parts,
)
from realgeeks_sync.app.domain.matching.profile import Profile
from realgeeks_sync.app.domain.normalize import normalize_email, normalize_state

__all__ = ["Probe", "build_probe"]


@dataclass(frozen=True)
class Probe:
    """What one record offers to identity resolution, and the keys it is filed under."""

    source_lead_id: str | None
    profile: Profile
    emails: tuple[str, ...] = ()  # exact email keys (never the agent's own email)
    phones: tuple[str, ...] = ()  # exact E.164 keys (placeholder numbers left out)
    name_address: tuple[str, ...] = ()
    blocks: tuple[str, ...] = ()  # blocking keys the lead is filed under
    query_blocks: tuple[str, ...] = ()  # blocking keys to look up (adds swapped names)
    # The names and places it was built from, with their features and keys, for
    # build_probe(like=...); None for a probe built by hand. Not part of its value.
    place_part: _Place | None = field(default=None, compare=False, repr=False)


def build_probe(
    fields: Mapping[str, Any],
    *,
    source_lead_id: str | None = None,
    emails: Iterable[str] = (),
    phones: Iterable[str] = (),
    query: bool = True,
    like: Probe | None = None,
) -> Probe:
    """Features and keys of a record from its normalized fields (normalize.normalize_lead).

    `emails`/`phones` add identifiers beyond the fields (a snapshot's history). Every
    text feature is cut to a bounded length first (MAX_NAME_CHARS, MAX_STREET_CHARS, ...).
    `query=False`: no look-up keys (`query_blocks` empty), for a probe that only files a lead.
    `like`: a probe built before; when its names and places were read from the same text
    as these fields', their features and keys are taken from it, not built again (a
    decision builds the record's probe, then its lead's after and before the change).
    """
    # Lists, not generators: built two or three times per decision.
    agent_email = normalize_email(fields.get("agent_email"))
    found = [normalize_email(fields.get("email")), normalize_email(fields.get("second_email"))]
    # An agent who types their own address for a lead has not identified the lead.
    id_emails = tuple([e for e in dict.fromkeys([*found, *emails]) if e and e != agent_email])
    numbers = [as_str(fields.get("phone")), as_str(fields.get("phone2")), *phones]
    id_phones = tuple(
        [
            p
            for p in dict.fromkeys([p[:20] for p in numbers if p])
            if p.startswith("+") and not is_placeholder_phone(p)
        ]
    )

    values = tuple([fields.get(key) for key in _PLACE_FIELDS])
    known = like.place_part if like is not None else None
    if known is not None and not known.reusable(values, query):
        known = None
    person = known.person if known is not None else _read_person(*values)
    profile = Profile(
        first=person.first,
        last=person.last,
        gen=person.gen,
        streets=person.streets,
        lines=person.lines,
        zips=person.zips,
        cities=person.cities,
        city_names=person.city_names,
        emails=id_emails,
        phones=tuple(phone_digits(p) for p in id_phones),
    )
    keys = known.keys if known is not None else place_keys(profile, query=query)
    blocks, query_blocks = blocking_keys_with(profile, keys, query=query)
    return Probe(
        source_lead_id=source_lead_id,
        profile=profile,
        emails=id_emails,
        phones=id_phones,
        name_address=person.name_address,
        blocks=blocks,
        query_blocks=query_blocks,
        place_part=known if known is not None else _Place(values, person, keys),
    )


# The fields a probe's names and places are read from, in `_read_person`'s order.
_PLACE_FIELDS = ("first_name", "last_name", "address", "street_address", "zip", "city", "state")


class _Person(NamedTuple):
    """A record's name and place features, as its profile holds them, and its exact key."""

    first: tuple[str, ...]
    last: tuple[str, ...]
    gen: tuple[str, ...]
    streets: tuple[str, ...]
    lines: tuple[str, ...]
    zips: tuple[str, ...]
    cities: tuple[str, ...]
    city_names: tuple[str, ...]
    name_address: tuple[str, ...]


class _Place(NamedTuple):
    """The names-and-places part of a probe: read from `values`, reusable for the same."""

    values: tuple[object, ...]
    person: _Person
    keys: PlaceKeys

    def reusable(self, values: tuple[object, ...], query: bool) -> bool:
        """True when a probe of these field values may take this part as it is.

        Text and None only: equal text reads alike, whereas 1 == 1.0 == True do not.
        """
        if query and self.keys.looked_up is None:
            return False
        if len(values) != len(self.values):
            return False
        for mine, theirs in zip(self.values, values, strict=True):
            if mine is theirs:
                continue
            if type(mine) is not str or type(theirs) is not str or mine != theirs:
                return False
        return True


def _read_person(
    first_name: object,
    last_name: object,
    address: object,
    street_address: object,
    zip_code: object,
    city_name: object,
    state_name: object,
) -> _Person:
    """Names and places from the normalized fields (each cut to a bounded length)."""
    first, first_generation = split_last(first_key(first_name))
    last, generation = split_last(name_key(last_name))
    generation = generation or first_generation  # "Bryant Sr" typed in the first box
    line_street, line_city, line_state, line_zip = address_parts(address)
    street, line2 = street_parts(street_address)
    if street is None:
        street, line2 = street_parts(line_street)
    zip5 = postcode(as_str(zip_code)) or line_zip
    city = place(city_name) or place(line_city)
    state = place(state_name) or place(normalize_state(line_state))
    city_key = f"{city} {state}".strip() if city else None

    # One location per exact name+address key: the postcode, else the city.
    loc = zip5 or (f"c:{city_key}" if city_key else "-")
    name_address: tuple[str, ...] = ()
    if first and last and street:
        names = " ".join(sorted((first, last)))  # swapped first/last is the same person
        name_address = (f"{names}|{street}|{loc}",)
    return _Person(
        first=(first,) if first else (),
        last=(last,) if last else (),
        gen=(generation,) if generation else (),
        streets=(street,) if street else (),
        lines=(line2,) if line2 else (),
        zips=(zip5,) if zip5 else (),
        cities=(city_key,) if city_key else (),
        city_names=(city,) if city else (),
        name_address=name_address,
    )
