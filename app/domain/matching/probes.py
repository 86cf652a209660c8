"""The probe: what one record offers to identity resolution, and the keys it is filed under."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from realgeeks_sync.app.domain.matching.blocking import blocking_keys
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
from realgeeks_sync.app.domain.matching.profile import Profile, dedupe
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


def build_probe(
    fields: Mapping[str, Any],
    *,
    source_lead_id: str | None = None,
    emails: Iterable[str] = (),
    phones: Iterable[str] = (),
    query: bool = True,
) -> Probe:
    """Features and keys of a record from its normalized fields (normalize.normalize_lead).

    `emails`/`phones` add identifiers beyond the fields (a snapshot's history). Every
    text feature is cut to a bounded length first (MAX_NAME_CHARS, MAX_STREET_CHARS, ...).
    `query=False`: no look-up keys (`query_blocks` empty), for a probe that only files a lead.
    """
    agent_email = normalize_email(fields.get("agent_email"))
    all_emails = dedupe(
        e
        for e in (*(normalize_email(fields.get(k)) for k in ("email", "second_email")), *emails)
        if e
    )
    # An agent who types their own address for a lead has not identified the lead.
    id_emails = tuple(e for e in all_emails if e != agent_email)
    all_phones = dedupe(
        p[:20] for p in (*(as_str(fields.get(k)) for k in ("phone", "phone2")), *phones) if p
    )
    id_phones = tuple(p for p in all_phones if p.startswith("+") and not is_placeholder_phone(p))

    first, first_generation = split_last(first_key(fields.get("first_name")))
    last, generation = split_last(name_key(fields.get("last_name")))
    generation = generation or first_generation  # "Bryant Sr" typed in the first box
    line_street, line_city, line_state, line_zip = address_parts(fields.get("address"))
    street, line2 = street_parts(fields.get("street_address"))
    if street is None:
        street, line2 = street_parts(line_street)
    zip5 = postcode(as_str(fields.get("zip"))) or line_zip
    city = place(fields.get("city")) or place(line_city)
    state = place(fields.get("state")) or place(normalize_state(line_state))
    city_key = f"{city} {state}".strip() if city else None

    profile = Profile(
        first=(first,) if first else (),
        last=(last,) if last else (),
        gen=(generation,) if generation else (),
        streets=(street,) if street else (),
        lines=(line2,) if line2 else (),
        zips=(zip5,) if zip5 else (),
        cities=(city_key,) if city_key else (),
        city_names=(city,) if city else (),
        emails=id_emails,
        phones=tuple(phone_digits(p) for p in id_phones),
    )

    # One location per exact name+address key: the postcode, else the city.
    loc = zip5 or (f"c:{city_key}" if city_key else "-")
    name_address: list[str] = []
    if first and last and street:
        names = " ".join(sorted((first, last)))  # swapped first/last is the same person
        name_address = [f"{names}|{street}|{loc}"]

    blocks, query_blocks = blocking_keys(profile, query=query)
    return Probe(
        source_lead_id=source_lead_id,
        profile=profile,
        emails=id_emails,
        phones=id_phones,
        name_address=tuple(name_address),
        blocks=blocks,
        query_blocks=query_blocks,
    )
