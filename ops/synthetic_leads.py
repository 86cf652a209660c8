"""Seeded generator of labeled synthetic Real Geeks leads for dedup benchmarks.

Each record is a `created` body plus the id of the real person it describes. Persons
come as duplicate clusters (the same person registering again with typos, nicknames,
case changes, other phone formats, abbreviated streets, swapped names, missing fields,
a new email or phone) and as look-alikes that must stay apart (same surname and city,
same first name and ZIP, household members sharing a street and a landline, similar
names, same full name in the same city, Jr/Sr at one address, couples sharing one
email). Names come from outside the matcher: given names and surnames from the 1990
US census frequency lists shipped in the `names` package, drawn by frequency; nicknames
from the `nicknames` package (a public list the matcher does not read); typos from a
keyboard and a spelling model that know nothing of the matcher's tables. Streets and
places are hand-written; nothing is downloaded (both packages are in the `bench` extra).

    .venv/bin/python ops/synthetic_leads.py --seed 1 --clusters 5   # prints JSON lines
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

__all__ = ["LabeledLead", "NameSourceError", "Person", "generate", "name_lists", "nicknames_of"]

# How many of the census' commonest names to draw from (by their frequency).
_FIRST_KEEP = 1000
_LAST_KEEP = 8000


class NameSourceError(RuntimeError):
    """The `names` or `nicknames` package (the bench extra) is not installed."""


def _census(filename: str, keep: int) -> tuple[tuple[str, ...], tuple[float, ...]]:
    """(names, weights) of one census list from the `names` package, title-cased."""
    spec = importlib.util.find_spec("names")
    if spec is None or not spec.submodule_search_locations:
        raise NameSourceError("synthetic names need the bench extra: pip install -e '.[bench]'")
    path = Path(next(iter(spec.submodule_search_locations))) / filename
    out: list[str] = []
    weights: list[float] = []
    for line in path.read_text(encoding="ascii").splitlines()[:keep]:
        name, frequency = line.split()[:2]
        out.append(name.capitalize() if not name.startswith("MC") else "Mc" + name[2:].capitalize())
        weights.append(float(frequency) or 0.0001)
    return tuple(out), tuple(weights)


@lru_cache(maxsize=1)
def name_lists() -> dict[str, tuple[tuple[str, ...], tuple[float, ...]]]:
    """The census lists: "m" and "f" given names, "last" surnames, with frequencies.

    Raises:
        NameSourceError: the names package is not installed.
    """
    return {
        "m": _census("dist.male.first", _FIRST_KEEP),
        "f": _census("dist.female.first", _FIRST_KEEP),
        "last": _census("dist.all.last", _LAST_KEEP),
    }


@lru_cache(maxsize=1)
def _nicknamer() -> Any:
    try:
        from nicknames import NickNamer
    except ImportError as exc:
        raise NameSourceError("nicknames need the bench extra: pip install -e '.[bench]'") from exc
    return NickNamer()


def nicknames_of(first: str) -> tuple[str, ...]:
    """Nicknames the `nicknames` package lists for a given name, title-cased, sorted."""
    return tuple(sorted(n.capitalize() for n in _nicknamer().nicknames_of(first.lower())))


def _draw(rng: random.Random, kind: str) -> str:
    """A census name of a kind ("m", "f", "last") drawn by its frequency."""
    names, weights = name_lists()[kind]
    return rng.choices(names, weights=weights)[0]


STREET_NAMES = (
    "Main|Oak|Pine|Maple|Cedar|Elm|Washington|Lake|Hill|Park|Kalakaua|Kapiolani|"
    "Ala Moana|King|Beretania|Pali|Likelike|Waialae|Kamehameha|Lincoln|Jefferson|Madison|"
    "Sunset|Highland|Ridge|Meadow|Willow|Chestnut|Walnut|Spruce|Sycamore|Magnolia|"
    "Church|Mill|River|Spring|Valley|Forest|Center|Broadway|Franklin|Jackson|Adams|"
    "Monroe|Harrison|Grant|Cherry|Dogwood|Juniper|Hickory|Laurel|Aspen|Mountain View|"
    "Ocean|Bay|Harbor|Palm|Orange|Mesa|Canyon|Desert Rose|Prairie|Cottonwood|Mission|"
    "Santa Fe|Rio Grande|Bluebonnet|Lamar|Congress|Guadalupe|Camelback|Indian School|"
    "Colfax|Speer|Federal|Kennedy|Martin Luther King Jr|Dale Mabry|Bayshore|Fowler|"
    "Saint Charles|Mount Vernon|Fort Worth"
).split("|")
STREET_TYPES = (
    ("Street", "St", "St.", "Str"),
    ("Avenue", "Ave", "Ave.", "Av"),
    ("Road", "Rd", "Rd."),
    ("Drive", "Dr", "Dr."),
    ("Lane", "Ln"),
    ("Boulevard", "Blvd", "Blvd."),
    ("Court", "Ct"),
    ("Place", "Pl"),
    ("Circle", "Cir"),
    ("Way",),
    ("Terrace", "Ter"),
    ("Parkway", "Pkwy"),
)
DIRECTIONS = (("North", "N", "N."), ("South", "S"), ("East", "E"), ("West", "W"))
UNITS = (("Apartment", "Apt", "Apt.", "#"), ("Suite", "Ste", "#"), ("Unit", "#"))
# (city, state name, state code, area codes, ZIPs)
PLACES = (
    (
        "Honolulu",
        "Hawaii",
        "HI",
        ("808",),
        ("96813", "96814", "96815", "96816", "96817", "96822", "96825", "96826"),
    ),
    ("Kailua", "Hawaii", "HI", ("808",), ("96734",)),
    ("Pearl City", "Hawaii", "HI", ("808",), ("96782",)),
    (
        "Austin",
        "Texas",
        "TX",
        ("512", "737"),
        ("78701", "78702", "78703", "78704", "78745", "78749", "78758"),
    ),
    ("Round Rock", "Texas", "TX", ("512",), ("78664", "78665", "78681")),
    ("Phoenix", "Arizona", "AZ", ("602", "480"), ("85003", "85004", "85016", "85018", "85032")),
    ("Scottsdale", "Arizona", "AZ", ("480",), ("85250", "85251", "85254")),
    ("Tampa", "Florida", "FL", ("813",), ("33602", "33606", "33609", "33611", "33629")),
    ("Denver", "Colorado", "CO", ("303", "720"), ("80202", "80203", "80205", "80206", "80210")),
    ("Sacramento", "California", "CA", ("916",), ("95814", "95816", "95818", "95819")),
    ("Saint Louis", "Missouri", "MO", ("314",), ("63101", "63104", "63110")),
    ("Hartford", "Connecticut", "CT", ("860",), ("06103", "06105", "06106")),
)
DOMAINS = (
    "gmail.com",
    "yahoo.com",
    "hotmail.com",
    "outlook.com",
    "aol.com",
    "icloud.com",
    "comcast.net",
    "msn.com",
    "hawaiiantel.net",
    "att.net",
    "live.com",
)
DOMAIN_TYPOS = {
    "gmail.com": ("gmial.com", "gmal.com", "gmail.co"),
    "yahoo.com": ("yaho.com", "yahooo.com"),
    "hotmail.com": ("hotmial.com",),
    "outlook.com": ("outlok.com",),
    "icloud.com": ("iclod.com",),
}
SOURCES = (
    "Website Property Search",
    "Zillow",
    "Facebook Ads",
    "Open House",
    "Referral",
    "Google PPC",
    "Home Valuation",
)
ROLES = ("Buyer", "Seller", "Buyer and Seller", "Renter")
KEYBOARD = {
    "a": "qsz", "b": "vn", "c": "xv", "d": "sf", "e": "wr", "f": "dg", "g": "fh",
    "h": "gj", "i": "uo", "j": "hk", "k": "jl", "l": "k", "m": "n", "n": "bm", "o": "ip",
    "p": "o", "q": "w", "r": "et", "s": "ad", "t": "ry", "u": "yi", "v": "cb", "w": "qe",
    "x": "zc", "y": "tu", "z": "x",
}  # fmt: skip


@dataclass(frozen=True)
class Person:
    """One real person: the truth a record is generated from."""

    first: str
    last: str
    gender: str
    house: int
    direction: tuple[str, ...] | None
    street: str
    street_type: tuple[str, ...]
    unit: tuple[tuple[str, ...], str] | None
    city: str
    state_name: str
    state: str
    zip: str
    phone: str  # 10 digits
    email: str
    mobile: str | None = None  # a second number, e.g. when `phone` is a household line


@dataclass(frozen=True)
class LabeledLead:
    """A created body and the person it really is."""

    entity: str
    kind: str  # scenario and perturbations, for error analysis
    body: dict[str, Any] = field(default_factory=dict)


@dataclass
class _World:
    """The generator's state: random source and the identifiers already handed out."""

    rng: random.Random
    emails: set[str] = field(default_factory=set)
    phones: set[str] = field(default_factory=set)
    entities: int = 0
    ids: int = 0

    def entity(self) -> str:
        self.entities += 1
        return f"p{self.entities}"

    def lead_id(self) -> str:
        self.ids += 1
        return f"{self.rng.getrandbits(128):032x}"

    def phone(self, area_codes: tuple[str, ...]) -> str:
        while True:
            exchange = self.rng.randint(201, 989)
            if exchange % 100 == 11 or exchange == 555:
                continue  # N11 codes and 555 are not subscriber exchanges
            number = f"{self.rng.choice(area_codes)}{exchange}{self.rng.randint(0, 9999):04d}"
            if number not in self.phones:
                self.phones.add(number)
                return number

    def email(self, first: str, last: str) -> str:
        rng = self.rng
        f, la = _ascii(first).lower(), _ascii(last).lower().replace(" ", "")
        patterns = (f"{f}.{la}", f"{f}{la}", f"{f[0]}{la}", f"{f}_{la}", f"{la}.{f}",
                    f"{f}{rng.randint(1, 99)}", f"{f}{la}{rng.randint(60, 99)}",
                    f"{f[0]}{la}{rng.randint(1, 999)}")  # fmt: skip
        local = rng.choice(patterns)
        domain = rng.choice(DOMAINS)
        candidate = f"{local}@{domain}"
        while candidate in self.emails:  # a mailbox belongs to one person
            candidate = f"{local}{rng.randint(1, 9999)}@{domain}"
        self.emails.add(candidate)
        return candidate


def _soundex(name: str) -> str:
    """Rough sound-alike key for keeping household names apart (not the matcher's)."""
    letters = [c for c in name.lower() if c.isalpha()]
    codes = {**dict.fromkeys("bfpv", "1"), **dict.fromkeys("cgjkqsxz", "2"),
             **dict.fromkeys("dt", "3"), "l": "4", **dict.fromkeys("mn", "5"), "r": "6"}  # fmt: skip
    out = letters[0] if letters else ""
    for ch in letters[1:]:
        code = codes.get(ch, "")
        if code and not out.endswith(code):
            out += code
    return out[:4]


def _ascii(text: str) -> str:
    """Letters and spaces only, for building email local parts."""
    return "".join(ch for ch in text if ch.isalpha() or ch == " ")


def _new_person(world: _World, **overrides: Any) -> Person:
    """A random person; overrides pin attributes (same surname, same address, ...)."""
    rng = world.rng
    gender = overrides.pop("gender", rng.choice("mf"))
    first = overrides.pop("first", None) or _draw(rng, gender)
    last = overrides.pop("last", None) or _draw(rng, "last")
    place = overrides.pop("place", rng.choice(PLACES))
    city, state_name, state, areas, zips = place
    base = {
        "first": first,
        "last": last,
        "gender": gender,
        "house": rng.choice((rng.randint(1, 99), rng.randint(100, 9999), rng.randint(100, 999))),
        "direction": rng.choice(DIRECTIONS) if rng.random() < 0.2 else None,
        "street": rng.choice(STREET_NAMES),
        "street_type": rng.choice(STREET_TYPES),
        "unit": (
            rng.choice(UNITS),
            str(rng.choice((rng.randint(1, 40), f"{rng.randint(1, 9)}{rng.choice('ABCD')}"))),
        )
        if rng.random() < 0.25
        else None,
        "city": city,
        "state_name": state_name,
        "state": state,
        "zip": overrides.pop("zip", rng.choice(zips)),
        "phone": overrides.pop("phone", None) or world.phone(areas),
        "email": overrides.pop("email", None) or world.email(first, last),
    }
    base.update(overrides)
    return Person(**base)


# --- rendering a person as a Real Geeks body -----------------------------------------


def _format_phone(rng: random.Random, digits: str) -> str:
    a, b, c = digits[:3], digits[3:6], digits[6:]
    return rng.choice(
        (
            f"({a}) {b}-{c}",
            f"{a}.{b}.{c}",
            f"+1 {a} {b} {c}",
            f"{a}{b}{c}",
            f"{a}-{b}-{c}",
            f"1-{a}-{b}-{c}",
            f"+1{a}{b}{c}",
            f"{a} {b} {c}",
        )
    )


def _street_line(rng: random.Random, p: Person, abbreviate: bool) -> str:
    """The street as a person might type it; abbreviate picks random spellings."""

    def pick(forms: tuple[str, ...]) -> str:
        return rng.choice(forms) if abbreviate else forms[0]

    parts = [str(p.house)]
    if p.direction:
        parts.append(pick(p.direction))
    street = p.street
    if abbreviate and rng.random() < 0.3:
        street = street.replace("Saint", "St.").replace("Mount", "Mt").replace("Fort", "Ft")
    parts += [street, pick(p.street_type)]
    if p.unit:
        forms, number = p.unit
        designator = pick(forms)
        parts.append(f"#{number}" if designator == "#" else f"{designator} {number}")
    if abbreviate and rng.random() < 0.2:
        type_at = 3 if p.direction else 2
        parts[type_at] += ","  # "12 Main St, Apt 4"
    return " ".join(parts)


def _render(world: _World, p: Person, *, varied: bool) -> dict[str, Any]:
    """A created body for a person; varied=True uses other spellings and formats."""
    rng = world.rng
    body: dict[str, Any] = {
        "id": world.lead_id(),
        "source": rng.choice(SOURCES),
        "role": rng.choice(ROLES),
        "first_name": p.first,
        "last_name": p.last,
        "email": p.email,
        "phone": _format_phone(rng, p.phone) if varied else p.phone,
        "street_address": _street_line(rng, p, abbreviate=varied),
        "city": p.city,
        "state": rng.choice((p.state, p.state_name)) if varied else p.state,
        "zip": p.zip,
    }
    if p.mobile and rng.random() < 0.5:
        body["phone2"] = _format_phone(rng, p.mobile)
    if rng.random() < 0.3:
        body["agent_name"] = "Ben Harper"
        body["agent_email"] = "ben@mail.com"
    return body


# --- perturbations (one registration of the same person, typed differently) ----------


def _typo(rng: random.Random, word: str) -> str:
    """One keyboard-style edit: substitute a neighbour, drop, double or swap letters."""
    if len(word) < 3:
        return word
    i = rng.randrange(1, len(word) - 1)  # people rarely mistype the first letter
    kind = rng.choice(("sub", "del", "dup", "swap"))
    ch = word[i].lower()
    if kind == "sub" and ch in KEYBOARD:
        return word[:i] + rng.choice(KEYBOARD[ch]) + word[i + 1 :]
    if kind == "del":
        return word[:i] + word[i + 1 :]
    if kind == "dup":
        return word[:i] + word[i] + word[i:]
    return word[: i - 1] + word[i] + word[i - 1] + word[i + 1 :]


# Spellings English speakers swap when they write a name they heard (a sound model,
# not the matcher's Soundex or nickname table).
_RESPELLINGS = (
    ("ph", "f"), ("f", "ph"), ("ck", "k"), ("k", "ck"), ("ie", "y"), ("y", "ie"),
    ("ei", "ie"), ("ie", "ei"), ("ll", "l"), ("l", "ll"), ("nn", "n"), ("n", "nn"),
    ("ss", "s"), ("tt", "t"), ("c", "k"), ("ou", "ow"), ("ae", "a"), ("ey", "y"),
    ("son", "sen"), ("sen", "son"), ("man", "mann"), ("er", "ar"),
)  # fmt: skip


def _respell(rng: random.Random, word: str) -> str:
    """The word with one sound-alike spelling swapped (Stephen -> Stefen); else a typo."""
    low = word.lower()
    options = [(a, b) for a, b in _RESPELLINGS if a in low[1:]]
    if not options:
        return _typo(rng, word)
    a, b = rng.choice(options)
    at = low.index(a, 1)
    return word[:at] + b + word[at + len(a) :]


def _perturb(world: _World, p: Person, body: dict[str, Any], kind: str) -> None:
    """Apply one named perturbation to a body in place."""
    rng = world.rng
    if kind == "case":
        body["first_name"] = str(body.get("first_name", "")).upper()
        body["last_name"] = str(body.get("last_name", "")).lower()
        if "email" in body:
            body["email"] = f"  {str(body['email']).upper()} "
    elif kind == "typo_first" and body.get("first_name"):
        body["first_name"] = _typo(rng, str(body["first_name"]))
    elif kind == "typo_last" and body.get("last_name"):
        surname, space, suffix = str(body["last_name"]).partition(" S")
        if not space:
            surname, space, suffix = str(body["last_name"]).partition(" J")
        body["last_name"] = _typo(rng, surname) + space + suffix  # Jr/Sr typed right
    elif kind == "nickname" and nicknames_of(p.first):
        body["first_name"] = rng.choice(nicknames_of(p.first))
    elif kind == "spelling" and body.get("first_name"):
        body["first_name"] = _respell(rng, str(body["first_name"]))
    elif kind == "spelling_last" and body.get("last_name"):
        body["last_name"] = _respell(rng, str(body["last_name"]))
    elif kind == "swap_names":
        body["first_name"], body["last_name"] = body.get("last_name"), body.get("first_name")
    elif kind == "drop_email":
        body.pop("email", None)
    elif kind == "drop_phone":
        body.pop("phone", None)
        body.pop("phone2", None)
    elif kind == "drop_address":
        for key in ("street_address", "city", "state", "zip"):
            body.pop(key, None)
    elif kind == "drop_first":
        body.pop("first_name", None)
    elif kind == "new_email":  # same phone, another mailbox
        body["email"] = world.email(p.first, p.last)
    elif kind == "new_phone":  # same email, another phone
        body["phone"] = _format_phone(rng, world.phone((p.phone[:3],)))
    elif kind == "email_typo" and "email" in body:
        local, _, domain = str(body["email"]).partition("@")
        if domain in DOMAIN_TYPOS and rng.random() < 0.6:
            typo = f"{local}@{rng.choice(DOMAIN_TYPOS[domain])}"
        else:
            typo = f"{_typo(rng, local)}@{domain}"
        if typo not in world.emails:  # a typo that lands on someone's real mailbox
            body["email"] = typo
    elif kind == "zip_plus4" and "zip" in body:
        body["zip"] = f"{body['zip']}-{rng.randint(1000, 9999)}"
    elif kind == "phone_ext" and "phone" in body:
        body["phone"] = f"{body['phone']} x{rng.randint(1, 999)}"
    elif kind == "moved":  # same person, new address in the same metro
        place = next(pl for pl in PLACES if pl[0] == p.city)
        moved = _new_person(world, first=p.first, last=p.last, place=place, phone=p.phone,
                            email=p.email)  # fmt: skip
        body["street_address"] = _street_line(rng, moved, abbreviate=True)
        body["zip"] = moved.zip
    elif kind == "whitespace":
        for key in ("first_name", "last_name", "street_address", "city"):
            if isinstance(body.get(key), str):
                body[key] = f" {body[key]}  ".replace(" ", "  ", 1)
    elif kind == "second_email" and "email" in body:
        body["second_email"] = world.email(p.first, p.last)


PERTURBATIONS = (
    ("case", 3), ("typo_first", 3), ("typo_last", 3), ("nickname", 3), ("swap_names", 1),
    ("spelling", 1), ("spelling_last", 1),
    ("drop_email", 3), ("drop_phone", 3), ("drop_address", 2), ("drop_first", 1),
    ("new_email", 3), ("new_phone", 2), ("email_typo", 2), ("zip_plus4", 1),
    ("phone_ext", 1), ("moved", 1), ("whitespace", 1), ("second_email", 1),
)  # fmt: skip


def _variant(world: _World, p: Person) -> tuple[dict[str, Any], list[str]]:
    """Another registration by the same person: 1-3 perturbations."""
    rng = world.rng
    body = _render(world, p, varied=True)
    names, weights = zip(*PERTURBATIONS, strict=True)
    kinds = sorted(set(rng.choices(names, weights=weights, k=rng.choice((1, 1, 2, 2, 3)))))
    for kind in kinds:
        _perturb(world, p, body, kind)
    return body, kinds


# --- scenarios -----------------------------------------------------------------------


def _cluster(world: _World, p: Person, scenario: str, copies: int) -> Iterator[LabeledLead]:
    """The first registration of a person and `copies` more."""
    entity = world.entity()
    yield LabeledLead(entity, f"{scenario}:original", _render(world, p, varied=False))
    for _ in range(copies):
        body, kinds = _variant(world, p)
        yield LabeledLead(entity, f"{scenario}:" + "+".join(kinds), body)


def _copies(rng: random.Random) -> int:
    return rng.choice((0, 0, 1, 1, 1, 2, 2, 3))


def _lookalikes(world: _World, kind: str) -> list[Person]:
    """Two to four distinct people who resemble each other in one way."""
    rng = world.rng
    a = _new_person(world)
    place = next(pl for pl in PLACES if pl[0] == a.city)
    if kind == "same_surname_city":
        return [a] + [
            _new_person(world, last=a.last, place=place) for _ in range(rng.randint(1, 3))
        ]
    if kind == "same_first_zip":
        return [a] + [
            _new_person(world, first=a.first, gender=a.gender, place=place, zip=a.zip)
            for _ in range(rng.randint(1, 2))
        ]
    if kind == "same_name_city":  # common names: two John Smiths in one city
        return [a, _new_person(world, first=a.first, gender=a.gender, last=a.last, place=place)]
    if kind == "similar_names":
        b = _new_person(world, first=_typo(rng, a.first), gender=a.gender,
                        last=_typo(rng, a.last), place=place, zip=a.zip)  # fmt: skip
        return [a, b]
    if kind in ("household", "household_email", "generations"):
        members = [a]
        mobile_a = world.phone((a.phone[:3],))
        members[0] = replace(a, mobile=mobile_a)
        count = 2 if kind != "household" else rng.randint(2, 4)
        used = {a.first}
        for i in range(1, count):
            gender = rng.choice("mf")
            # A household has no Lawrence and Larry: nickname forms are one name.
            taken = {n for u in used for n in (u, *nicknames_of(u))}
            sounds = {_soundex(u) for u in taken}  # nor Teresa and Theresa
            first = a.first
            while kind != "generations" and (first in taken or _soundex(first) in sounds):
                first = _draw(rng, gender)
            used.add(first)
            email = a.email if kind == "household_email" else None
            last = a.last if rng.random() < 0.85 or kind == "generations" else _draw(rng, "last")
            member = replace(
                _new_person(
                    world,
                    first=first,
                    gender=gender,
                    last=last,
                    place=place,
                    zip=a.zip,
                    phone=a.phone,
                    email=email,
                ),
                house=a.house,
                direction=a.direction,
                street=a.street,
                street_type=a.street_type,
                unit=a.unit,
                mobile=world.phone((a.phone[:3],)) if i < 3 else None,
            )
            members.append(member)
        if kind == "generations":
            members[0] = replace(members[0], last=f"{a.last} Sr")
            members[1] = replace(members[1], last=f"{a.last} Jr", gender=a.gender)
        return members
    raise ValueError(kind)


LOOKALIKE_KINDS = (
    ("same_surname_city", 4), ("same_first_zip", 3), ("same_name_city", 2),
    ("similar_names", 3), ("household", 4), ("household_email", 1), ("generations", 1),
)  # fmt: skip


def generate(seed: int, clusters: int) -> list[LabeledLead]:
    """`clusters` scenarios (duplicate clusters and look-alike groups), shuffled.

    Same seed and count, same records. Every record is a `created` body with its own
    Real Geeks id; `entity` says which records are truly the same person.
    """
    world = _World(rng=random.Random(seed))
    rng = world.rng
    out: list[LabeledLead] = []
    kinds, weights = zip(*LOOKALIKE_KINDS, strict=True)
    for _ in range(clusters):
        if rng.random() < 0.55:
            person = _new_person(world)
            out.extend(_cluster(world, person, "dupes", rng.choice((1, 1, 2, 2, 3, 4))))
        else:
            kind = rng.choices(kinds, weights=weights)[0]
            for person in _lookalikes(world, kind):
                out.extend(_cluster(world, person, f"lookalike_{kind}", _copies(rng)))
    rng.shuffle(out)
    return out


def main() -> None:
    """Print generated records as JSON lines."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--clusters", type=int, default=10)
    args = parser.parse_args()
    for lead in generate(args.seed, args.clusters):
        print(json.dumps({"entity": lead.entity, "kind": lead.kind, "body": lead.body}))


if __name__ == "__main__":
    main()
