"""Identity resolution: an ordered list of named rules, each giving a Match or None.

    RULES = lead_id -> email -> phone -> name_address -> fuzzy

The first rule that matches decides; the cheap exact rules always all run, so a
disagreement (email says lead A, phone says lead B) is reported as a `Conflict`.
Fuzzy runs only when no exact rule matched, and only over candidates from blocking
keys (never a scan).

The household rule. Surname, street and a shared phone are household-level facts: a
couple buying together shares all three, and a family landline or email is a
real-estate commonplace. They can prove a household, never a person; the person is told
by the first name. So every rule but lead_id (and fuzzy too) is vetoed when both
records have first names that cannot be one given name: not equal, not nicknames (a
hand-written table), not a one-letter typo or an initial, and never two different names
the table knows (Mark/Mary, Donald/Ronald are two people even one letter apart).
Generational suffixes that differ (Jr/Sr) veto as well. A record without a first name
must not disagree on what is personal: its email, when it spells a first name
("mary.johnson", "mjohnson"), must fit; otherwise the surname and the email (when both
sides have one) must not differ. Vetoed matches are reported as conflicts
("name_mismatch"). When several leads share an identifier, the one whose first name
agrees best wins; a tie between people who are not compatible with each other matches
nobody ("ambiguous"); an identifier carried by `shared_cap` leads or more (an office
line, an agent's placeholder) identifies no one ("shared_identifier").

Fuzzy scoring is Fellegi-Sunter, as splink does it (app/domain/identity_model.py): each
comparison (first name, last name, house number, street, second address line, city,
postcode, phone, email) falls into a level whose weight in bits was fitted from data
and is read from the model file; the sum plus the fitted prior is a match probability,
compared with `fuzzy_threshold`. Candidates come from named blocking rules (`BLOCKING`),
each a key that survives a different typo, and never from a scan.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property, lru_cache
from typing import Any

from rapidfuzz.distance import OSA

from realgeeks_sync.app.domain.identity_model import (
    COMPARISONS,
    IdentityModel,
    default_model,
    level_of,
)
from realgeeks_sync.app.domain.names import (
    GENERATIONS,
    MAX_NAME_CHARS,
    ROOTS,
    TITLES,
    first_name_level,
    is_nickname_pair,
    last_name_level,
    phonetic,
    soundex,
)
from realgeeks_sync.app.domain.normalize import fold_key, normalize_email, normalize_state
from realgeeks_sync.tables.identity import IdentityIndex

__all__ = [
    "BLOCKING",
    "RULES",
    "BlockingRule",
    "Conflict",
    "Match",
    "MatcherConfig",
    "Probe",
    "Profile",
    "Resolution",
    "Rule",
    "blocking_keys",
    "build_probe",
    "candidate_leads",
    "filing_keys_by_rule",
    "first_name_level",
    "fuzzy_evidence",
    "is_nickname_pair",
    "names_agree",
    "person_evidence",
    "resolve",
    "score_pair",
    "soundex",
]


@dataclass(frozen=True)
class MatcherConfig:
    """Tunables of identity resolution (built from settings at start-up).

    Raises:
        ValueError: a value out of range.
    """

    # Chosen with ops/bench_dedup.py on FEBRL1, FEBRL2, FEBRL4 and the synthetic set
    # (one threshold for all): see the README's benchmark table.
    fuzzy_threshold: float = 0.999
    # Leads kept per blocking key (oldest evicted) and leads scored per event, those
    # sharing more keys first: what bounds the cost of a record however large the index
    # (ops/bench_identity.py); FEBRL and synthetic figures are the same at 50 and 64.
    candidate_cap: int = 16
    max_candidates: int = 8
    shared_cap: int = 8  # leads per exact identifier before it stops identifying anyone
    profile_cap: int = 4  # values kept per feature in a lead's profile
    default_region: str = "US"  # phone numbers without "+"
    # The fitted weights (app/data/identity_model.json unless RGSYNC_IDENTITY_MODEL).
    model: IdentityModel = field(default_factory=default_model, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not 0.0 < self.fuzzy_threshold <= 1.0:
            raise ValueError("fuzzy_threshold must be in (0, 1]")
        for name in ("candidate_cap", "max_candidates", "shared_cap", "profile_cap"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")


@dataclass(frozen=True)
class Match:
    """One rule's verdict: this record is lead `lead_id`, with `score` in [0, 1]."""

    rule: str
    score: float
    lead_id: str

    def to_json(self) -> dict[str, Any]:
        """The event's `match` object."""
        return {"rule": self.rule, "score": self.score, "lead_id": self.lead_id}


@dataclass(frozen=True)
class Conflict:
    """A match that was not taken, and why (outranked, name_mismatch, ambiguous, ...)."""

    rule: str
    score: float
    lead_id: str | None
    reason: str

    def to_json(self) -> dict[str, Any]:
        """The event's entry in `conflicts`."""
        return {
            "rule": self.rule,
            "score": self.score,
            "lead_id": self.lead_id,
            "reason": self.reason,
        }


# --- features --------------------------------------------------------------------------

# Longest street line, city or postcode the matcher reads (names: app.names.MAX_NAME_CHARS).
# Longer input is cut before any key or comparison sees it, so one absurd field costs
# what an ordinary one does and cannot inflate a stored profile.
MAX_STREET_CHARS = 96
MAX_PLACE_CHARS = 48
MAX_POSTCODE_CHARS = 12


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
        return _dedupe(h for h in (s.split("|", 1)[0] for s in self.streets) if h)

    @cached_property
    def street_names(self) -> tuple[str, ...]:
        """Street names without house numbers."""
        return _dedupe(n for n in (s.split("|", 1)[-1] for s in self.streets) if n)

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
                parts[name] = tuple(x[:MAX_STREET_CHARS] for x in items if isinstance(x, str))
        if "city_names" not in parts and parts.get("cities"):
            # Profiles stored before city_names existed: "honolulu hi" -> "honolulu".
            parts["city_names"] = tuple(c.rsplit(" ", 1)[0] for c in parts["cities"])
        return cls(**parts)

    def merged(self, newer: Profile, cap: int) -> Profile:
        """This profile plus a newer one, newest values kept, at most cap per feature.

        A newer record that matched with first and last name swapped is filed the
        right way round, so the lead does not collect its surname as a first name.
        """
        if self == _EMPTY_PROFILE:  # a new lead: nothing to merge with
            return Profile(**{n: getattr(newer, n)[-cap:] for n in self._KEYS})
        if self.first and newer.first and newer.last:
            names = names_agree(newer, self)
            straight = _best_level(first_name_level, newer.first, self.first)
            if names is not None and straight < 1 and names.first >= 2:
                newer = replace(newer, first=newer.last, last=newer.first)

        def union(old: tuple[str, ...], new: tuple[str, ...]) -> tuple[str, ...]:
            out = [x for x in old if x not in new] + list(new)
            return tuple(out[-cap:])

        return Profile(**{n: union(getattr(self, n), getattr(newer, n)) for n in self._KEYS})


_EMPTY_PROFILE = Profile()


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


_UNIT_DESIGNATORS = frozenset({"Apt", "Ste", "Unit", "Rm", "Fl", "Bldg", "Spc", "Trlr", "Ph"})
_UNIT_DESIGNATORS |= {"Lot", "#"}
_DIRECTION_WORDS = frozenset({"n", "s", "e", "w", "ne", "nw", "se", "sw"})
_EMAIL_BLOCK_STOPLIST = frozenset(
    {"info", "admin", "contact", "sales", "office", "test", "noreply", "none", "mail"}
)


def _street_parts(street: object) -> tuple[str | None, str | None]:
    """("house|street name", second line) of a normalized street line.

    The second line is what follows the first comma or a unit designator: "12 Main St
    Apt 4" -> ("12|main st", "apt 4"); "6 Tullaroop St, Willaroo" -> ("6|tullaroop st",
    "willaroo").
    """
    line = _as_str(street)
    if line is None:
        return None, None
    line = line[:MAX_STREET_CHARS]
    first, _, rest = line.partition(",")
    words = first.split()
    kept: list[str] = []
    for i, word in enumerate(words):
        if i > 0 and word in _UNIT_DESIGNATORS:
            rest = " ".join(words[i:]) + (f" {rest}" if rest else "")
            break
        kept.append(word)
    second = fold_key(rest) or None
    folded = fold_key(" ".join(kept)).split()
    if not folded:
        return None, second
    if any(ch.isdigit() for ch in folded[0]) and len(folded) > 1:
        return f"{folded[0]}|{' '.join(folded[1:])}", second
    return f"|{' '.join(folded)}", second


def _street_key(street: object) -> str | None:
    """ "house|street name" from a normalized street line, unit and city part dropped."""
    return _street_parts(street)[0]


_ZIP_AT_END = re.compile(r"^(.*?)[\s,]*\b(\d{5})(?:-\d{4})?$")


def _address_parts(address: object) -> tuple[str | None, str | None, str | None, str | None]:
    """(street, city, state, ZIP) of a one-line "street, city, ST 96813" address."""
    line = _as_str(address)
    if line is None:
        return None, None, None, None
    line = line[: MAX_STREET_CHARS + MAX_PLACE_CHARS + 16]
    zip5 = None
    match = _ZIP_AT_END.match(line)
    if match:
        line, zip5 = match.group(1), match.group(2)
    parts = [part.strip() for part in line.split(",")]
    city = parts[1] if len(parts) > 1 else None
    state = parts[2] if len(parts) > 2 else None
    if city and state is None and " " in city and zip5:
        city, _, state = city.rpartition(" ")  # "Honolulu HI 96813"
    return parts[0] or None, city or None, state or None, zip5


def _postcode(value: str | None) -> str | None:
    """A postcode as a key: US ZIP+4 cut to 5 digits, others letters and digits upper-cased."""
    if not value:
        return None
    compact = "".join(ch for ch in value[:MAX_POSTCODE_CHARS] if ch.isalnum()).upper()
    if len(compact) == 9 and compact.isdigit() and "-" in value:
        return compact[:5]  # 96813-1234
    return compact if 3 <= len(compact) <= 10 and compact.isascii() else None


def _split_last(name: str) -> tuple[str, str | None]:
    """A folded name without a trailing generational suffix (Jr, Sr, III), and the suffix."""
    words = name.split()
    if len(words) > 1 and words[-1] in GENERATIONS:
        return " ".join(words[:-1]), words[-1]
    return name, None


def _name_key(name: object) -> str:
    """Folded name, cut to MAX_NAME_CHARS characters."""
    text = name[: MAX_NAME_CHARS * 2] if isinstance(name, str) else name
    return fold_key(text)[:MAX_NAME_CHARS].strip()


def _first_key(first: object) -> str:
    """Folded first name without a leading title (Dr, Mrs)."""
    words = _name_key(first).split()
    while len(words) > 1 and words[0] in TITLES:
        words = words[1:]
    return " ".join(words)


def _phone_digits(e164: str) -> str:
    """Digits of an E.164 number."""
    return e164.lstrip("+")


def _is_placeholder_phone(e164: str) -> bool:
    """Numbers typed to get past a form (555-555-5555, 123-456-7890) identify no one."""
    digits = _phone_digits(e164)
    national = digits[1:] if len(digits) == 11 and digits[0] == "1" else digits
    subscriber = national[-7:]
    if len(set(national)) <= 2 or len(set(subscriber)) == 1:
        return True
    runs = ("0123456789", "1234567890", "9876543210", "0987654321")
    return any(national in run or subscriber in run for run in runs)


def _email_local(email: str) -> str:
    """Email local part without +tag and punctuation ("john.smith+x" -> "johnsmith")."""
    # Remembered for addresses of ordinary length: each is compared with every candidate's.
    return _cached_email_local(email) if len(email) <= 128 else _strip_email_local(email)


_NOT_ALNUM = re.compile(r"[\W_]+")  # \w is str.isalnum() plus "_"


def _strip_email_local(email: str) -> str:
    return _NOT_ALNUM.sub("", email.split("@", 1)[0].split("+", 1)[0])


_cached_email_local = lru_cache(maxsize=16384)(_strip_email_local)


def _dedupe(items: Iterable[str]) -> tuple[str, ...]:
    """Items in first-seen order without repeats."""
    return tuple(dict.fromkeys(items))


def _as_str(value: object) -> str | None:
    """The value when it is a non-empty string."""
    return value if isinstance(value, str) and value else None


def _place(value: object) -> str:
    """A folded city or state, cut to MAX_PLACE_CHARS characters."""
    text = value[: MAX_PLACE_CHARS * 2] if isinstance(value, str) else value
    return fold_key(text)[:MAX_PLACE_CHARS].strip()


# --- blocking --------------------------------------------------------------------------


@dataclass(frozen=True)
class BlockingRule:
    """A named blocking rule: the keys a profile is filed under and the keys it looks up.

    `keys(profile, locations)` gets the profile and where it is filed or looked up
    (its postcode, else its city); each rule survives a typo the others do not.
    """

    name: str
    keys: Callable[[Profile, Sequence[str]], list[str]]


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
    name = p.streets[-1].split("|", 1)[-1]
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
        local = _email_local(email)
        if len(local) >= 3 and local not in _EMAIL_BLOCK_STOPLIST:
            keys.append(f"e|{local}")
    return keys


# The blocking rules, in one place; a candidate sharing more keys is scored first.
BLOCKING: tuple[BlockingRule, ...] = (
    BlockingRule("surname_postcode", _surname_keys),
    BlockingRule("initial_house", _initial_house_keys),
    BlockingRule("street_postcode", _street_keys),
    BlockingRule("names", _names_keys),
    BlockingRule("surname_city", _surname_city_keys),
    BlockingRule("first_postcode", _first_postcode_keys),
    BlockingRule("street_city", _street_city_keys),
    BlockingRule("contact", _contact_keys),
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


def blocking_keys(profile: Profile) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(keys to file a lead under, keys to look a record up with).

    A record whose names may be swapped also looks up the surname keys of its first name.
    """
    file_locs, look_locs = _locations(profile)
    blocks: list[str] = []
    query: list[str] = []
    for rule in BLOCKING:
        blocks += rule.keys(profile, file_locs)
        query += rule.keys(profile, look_locs)
    if profile.first and profile.last:  # names typed in each other's boxes
        query += _surname_keys(Profile(first=profile.last, last=profile.first), look_locs)
    return _dedupe(blocks), _dedupe(query)


def build_probe(
    fields: Mapping[str, Any],
    *,
    source_lead_id: str | None = None,
    emails: Iterable[str] = (),
    phones: Iterable[str] = (),
) -> Probe:
    """Features and keys of a record from its normalized fields (app.normalize.normalize_lead).

    `emails`/`phones` add identifiers beyond the fields (a snapshot's history). Every
    text feature is cut to a bounded length first (MAX_NAME_CHARS, MAX_STREET_CHARS, ...).
    """
    agent_email = normalize_email(fields.get("agent_email"))
    all_emails = _dedupe(
        e
        for e in (*(normalize_email(fields.get(k)) for k in ("email", "second_email")), *emails)
        if e
    )
    # An agent who types their own address for a lead has not identified the lead.
    id_emails = tuple(e for e in all_emails if e != agent_email)
    all_phones = _dedupe(
        p[:20] for p in (*(_as_str(fields.get(k)) for k in ("phone", "phone2")), *phones) if p
    )
    id_phones = tuple(p for p in all_phones if p.startswith("+") and not _is_placeholder_phone(p))

    first, first_generation = _split_last(_first_key(fields.get("first_name")))
    last, generation = _split_last(_name_key(fields.get("last_name")))
    generation = generation or first_generation  # "Bryant Sr" typed in the first box
    line_street, line_city, line_state, line_zip = _address_parts(fields.get("address"))
    street, line2 = _street_parts(fields.get("street_address"))
    if street is None:
        street, line2 = _street_parts(line_street)
    zip5 = _postcode(_as_str(fields.get("zip"))) or line_zip
    city = _place(fields.get("city")) or _place(line_city)
    state = _place(fields.get("state")) or _place(normalize_state(line_state))
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
        phones=tuple(_phone_digits(p) for p in id_phones),
    )

    # One location per exact name+address key: the postcode, else the city.
    loc = zip5 or (f"c:{city_key}" if city_key else "-")
    name_address: list[str] = []
    if first and last and street:
        names = " ".join(sorted((first, last)))  # swapped first/last is the same person
        name_address = [f"{names}|{street}|{loc}"]

    blocks, query_blocks = blocking_keys(profile)
    return Probe(
        source_lead_id=source_lead_id,
        profile=profile,
        emails=id_emails,
        phones=id_phones,
        name_address=tuple(name_address),
        blocks=blocks,
        query_blocks=query_blocks,
    )


def _initials(first: str) -> tuple[str, ...]:
    """First letters of a first name and of the formal names it may stand for."""
    if not first:
        return ("_",)
    token = first.split()[0]
    return tuple(sorted({token[0]} | {root[0] for root in ROOTS.get(token, ())}))


# --- comparisons -----------------------------------------------------------------------


@dataclass(frozen=True)
class NameAgreement:
    """Best agreement of two profiles' names: first and last levels (-1 = unknown)."""

    first: int
    last: int


def person_evidence(a: Profile, b: Profile) -> NameAgreement | None:
    """Name agreement when nothing says these are two people of one household, else None.

    Surname, street and a shared phone are household-level: they can prove a household,
    not a person. With first names on both sides that agree, the person is settled.
    Without a first name on one side, that side's email may spell one ("davidchavez64",
    "reyes.francisco"): it must fit. Failing that, the records must not disagree on
    what is personal: the surname and the email (when both sides have one).
    """
    names = names_agree(a, b)
    if names is None or names.first >= 1:
        return names
    if names.last == 0:
        return None
    if bool(a.first) != bool(b.first):
        nameless, named = (b, a) if a.first else (a, b)
        guesses, telling = _email_first_names(nameless)
        guessed = _best_level(first_name_level, guesses, named.first)
        if guessed >= 1:
            return NameAgreement(guessed, names.last)
        if telling:
            return None  # the email spells somebody else's name or initial
    if a.emails and b.emails and _best_level(_email_level, a.emails, b.emails) == 0:
        return None  # different mailboxes, no first name to tell: a household member
    return names


def fuzzy_evidence(a: Profile, b: Profile) -> NameAgreement | None:
    """`person_evidence`, except between two records with nothing personal on them.

    The household veto trusts the first name because something else (a mailbox, a
    mobile) usually tells the members of a household apart. Two records without any
    email or phone offer only a name and an address: there a different first name is
    one comparison among the others, with its fitted weight (a typed-over first name,
    a name registered by someone else), not a veto. Differing Jr/Sr still vetoes.
    """
    names = person_evidence(a, b)
    if names is not None and _contacts_disagree(a, b):
        return None
    if names is not None or a.emails or a.phones or b.emails or b.phones:
        return names
    if a.gen and b.gen and not set(a.gen) & set(b.gen):
        return None
    return NameAgreement(0, _best_level(last_name_level, a.last, b.last))


def _contacts_disagree(a: Profile, b: Profile) -> bool:
    """Both records carry an email and a phone, and not one of them is the other's.

    A person who registers again keeps a mailbox or a number far more often than the
    independent weights assume; two people of one name in one town change all of them.
    """
    if not (a.emails and b.emails and a.phones and b.phones):
        return False
    if _best_level(_email_level, a.emails, b.emails) > 0:
        return False
    return not any(x[-7:] == y[-7:] or OSA.distance(x, y) <= 1 for x in a.phones for y in b.phones)


def _email_first_names(profile: Profile) -> tuple[tuple[str, ...], bool]:
    """First names (or initials) spelled by a profile's email local parts.

    "david.chavez", "chavez_david", "davidchavez64" -> "david"; "dchavez" -> "d" (for
    last name Chavez); "marilyn77" -> "marilyn". The flag says whether any guess is
    telling enough to rule a name out.
    """
    found: list[str] = []
    lasts = [last.replace(" ", "") for last in profile.last if last]
    for email in profile.emails:
        local = email.split("@", 1)[0].split("+", 1)[0]
        tokens = [t for t in re.split(r"[^a-z]+", local) if t]
        for last in lasts:
            if last in tokens and len(tokens) > 1:
                found += [t for t in tokens if t != last][:1]
            for token in tokens:
                if token != last and token.startswith(last):
                    found.append(token[len(last) :])
                elif token != last and token.endswith(last):
                    found.append(token[: -len(last)])
        if len(tokens) == 1 and len(tokens[0]) >= 3 and not any(x in tokens[0] for x in lasts):
            found.append(tokens[0])
    guesses = _dedupe(found)
    # Only an initial or a known first name rules anyone out ("johnsonfamily" does not).
    return guesses, any(len(g) == 1 or g in ROOTS for g in guesses)


def _any_name_level(a: str, b: str) -> int:
    """Agreement of two names when it is unknown which box held a first name."""
    return max(first_name_level(a, b), last_name_level(a, b))


def names_agree(a: Profile, b: Profile) -> NameAgreement | None:
    """How the names of two profiles agree, or None when they are different people.

    None (the household veto) when both have first names and no orientation (as typed,
    or first and last swapped) makes them compatible, or when generational suffixes
    differ (Jr vs Sr). -1 in a level means a side has no such name.
    """
    if a.gen and b.gen and not set(a.gen) & set(b.gen):
        return None
    straight = NameAgreement(
        _best_level(first_name_level, a.first, b.first),
        _best_level(last_name_level, a.last, b.last),
    )
    if straight.first >= 1:
        return straight
    # Swapped: one record has first and last name in each other's boxes.
    swapped = NameAgreement(
        _best_level(_any_name_level, a.last, b.first),
        _best_level(_any_name_level, a.first, b.last),
    )
    if swapped.first >= 2 and swapped.last >= 2:
        return swapped
    if straight.first == 0:
        return None
    # No first name on one side: its surname may sit in the other's first-name box.
    if straight.last == 0 and max(swapped.first, swapped.last) >= 2:
        return NameAgreement(-1, max(swapped.first, swapped.last))
    return straight


def _best_level(fn: Callable[[str, str], int], xs: Sequence[str], ys: Sequence[str]) -> int:
    """The best level over all pairs; -1 when either side has no value."""
    return max((fn(x, y) for x in xs for y in ys), default=-1)


def _email_level(a: str, b: str) -> int:
    """4 same, 3 domain typo, 2 local-part typo, 1 same local part elsewhere, 0 different.

    The household veto reads only 0: two plainly different mailboxes.
    """
    if a == b:
        return 4
    local_a, _, domain_a = a.partition("@")
    local_b, _, domain_b = b.partition("@")
    if local_a == local_b:
        return 3 if OSA.distance(domain_a, domain_b) <= 2 else 1
    if _email_local(a) == _email_local(b):
        return 1  # "mary.lee" and "marylee": how two Mary Lees would both pick it
    if domain_a == domain_b and OSA.distance(local_a, local_b) <= 1:
        return 2
    return 0


_BY_NAME = {comparison.name: comparison for comparison in COMPARISONS}
_NAME_PARTS = ("first_name", "last_name")
_ADDRESS_PARTS = ("house", "street", "line2")
_OTHER_PARTS = tuple(c for c in _BY_NAME if c not in (*_NAME_PARTS, *_ADDRESS_PARTS))


def _bits(model: IdentityModel, name: str, xs: tuple[str, ...], ys: tuple[str, ...]) -> float:
    """Fitted weight of one comparison over two records' values (0 when a side is empty)."""
    comparison = _BY_NAME[name]
    level = level_of(comparison, xs, ys)
    value = None
    if level == "exact" and comparison.term_frequency:
        common = set(xs) & set(ys)
        # The rarest shared value is the evidence (largest weight).
        value = max(common, key=lambda v: model.bits(comparison, "exact", v), default=None)
    return model.bits(comparison, level, value)


def _match_bits(model: IdentityModel, a: Profile, b: Profile) -> float:
    """Sum of the fitted weights of every comparison of two profiles (no prior).

    Names typed in each other's boxes, and street and second address line typed in
    each other's places, are read both ways round; the better reading of each counts.
    """
    total = sum(_bits(model, n, getattr(a, f), getattr(b, f)) for n, f in _OTHER_FEATURES)
    names = _bits(model, "first_name", a.first, b.first) + _bits(model, "last_name", a.last, b.last)
    if a.first and a.last:
        swapped = _bits(model, "first_name", a.last, b.first)
        swapped += _bits(model, "last_name", a.first, b.last)
        names = max(names, swapped)
    house = _bits(model, "house", a.houses, b.houses)
    street = _bits(model, "street", a.street_names, b.street_names)
    street += _bits(model, "line2", a.lines, b.lines)
    if a.street_names and a.lines:
        moved = _bits(model, "street", a.lines, b.street_names)
        moved += _bits(model, "line2", a.street_names, b.lines)
        street = max(street, moved)
    address = house + street
    if _units_differ(a.lines, b.lines):
        # Apartment 4 and apartment 9 of one building are two homes: the shared street
        # proves nothing about the person.
        address = min(address, 0.0)
    return total + names + address


_DIGITS = re.compile(r"\d+")


def _units_differ(xs: tuple[str, ...], ys: tuple[str, ...]) -> bool:
    """Both records give unit numbers on their second lines, and none is the other's."""
    numbers_x = {n for x in xs for n in _DIGITS.findall(x)}
    numbers_y = {n for y in ys for n in _DIGITS.findall(y)}
    return bool(numbers_x and numbers_y) and not numbers_x & numbers_y


_OTHER_FEATURES = tuple((name, _BY_NAME[name].feature) for name in _OTHER_PARTS)


def score_pair(
    probe: Profile, candidate: Profile, model: IdentityModel | None = None
) -> tuple[float, NameAgreement] | None:
    """Match probability of two profiles and their name agreement; None when vetoed."""
    names = fuzzy_evidence(probe, candidate)
    if names is None:
        return None
    model = model or default_model()
    bits = _match_bits(model, probe, candidate) + model.prior_bits
    probability = 1.0 / (1.0 + math.pow(2.0, -max(min(bits, 60.0), -60.0)))
    # Never a certain 1.0: a threshold of 1 switches fuzzy matching off.
    return min(round(probability, 6), 0.999999), names


# --- rules -----------------------------------------------------------------------------


@dataclass
class RuleContext:
    """What a rule reads: the index, the record, the config; and where it files notes."""

    index: IdentityIndex
    site: str
    probe: Probe
    config: MatcherConfig
    notes: list[Conflict] = field(default_factory=list)
    _profiles: dict[str, Profile | None] = field(default_factory=dict)

    def profile(self, lead_id: str) -> Profile | None:
        """A lead's stored profile, read once per resolution."""
        if lead_id not in self._profiles:
            stored = self.index.profile(self.site, lead_id)
            self._profiles[lead_id] = None if stored is None else Profile.from_json(stored)
        return self._profiles[lead_id]


@dataclass(frozen=True)
class Rule:
    """A named matching rule; `exhaustive` rules run even after an earlier match."""

    name: str
    find: Callable[[RuleContext], Match | None]
    exhaustive: bool = True


def _by_lead_id(ctx: RuleContext) -> Match | None:
    """The Real Geeks lead id (dashes ignored) is already known."""
    source = ctx.probe.source_lead_id
    if not source:
        return None
    canonical = ctx.index.canonical_id(ctx.site, source)
    return Match("lead_id", 1.0, canonical) if canonical else None


def _exact(ctx: RuleContext, rule: str, kind: str, values: Sequence[str]) -> Match | None:
    """Exact identifier lookup with the household rule; the first value decides."""
    found: Match | None = None
    for value in values:
        leads = ctx.index.leads_for(ctx.site, kind, value)
        if not leads:
            continue
        if len(leads) >= ctx.config.shared_cap:
            ctx.notes.append(Conflict(rule, 1.0, None, "shared_identifier"))
            continue
        match = _pick_person(ctx, rule, leads)
        if match is None:
            continue
        if found is None:
            found = match
        elif match.lead_id != found.lead_id:
            ctx.notes.append(Conflict(rule, match.score, match.lead_id, "outranked"))
    return found


def _pick_person(ctx: RuleContext, rule: str, leads: Sequence[str]) -> Match | None:
    """The lead among those sharing an identifier whose first name agrees best."""
    ranked: list[tuple[int, str, Profile]] = []
    for lead in leads:
        profile = ctx.profile(lead) or Profile()
        names = person_evidence(ctx.probe.profile, profile)
        if names is None:
            ctx.notes.append(Conflict(rule, 1.0, lead, "name_mismatch"))
            continue
        ranked.append((names.first, lead, profile))
    if not ranked:
        return None
    top = max(level for level, _, _ in ranked)
    best = [(lead, profile) for level, lead, profile in ranked if level == top]
    chosen, chosen_profile = best[0]  # oldest lead first
    for _, other_profile in best[1:]:
        if names_agree(chosen_profile, other_profile) is None:
            # Two different people fit equally well: this identifier cannot tell.
            for lead, _ in best:
                ctx.notes.append(Conflict(rule, 1.0, lead, "ambiguous"))
            return None
    return Match(rule, 1.0, chosen)


def _by_email(ctx: RuleContext) -> Match | None:
    """A case-folded email the site has seen."""
    return _exact(ctx, "email", "email", ctx.probe.emails)


def _by_phone(ctx: RuleContext) -> Match | None:
    """An E.164 phone the site has seen (placeholder numbers never match)."""
    return _exact(ctx, "phone", "phone", ctx.probe.phones)


def _by_name_address(ctx: RuleContext) -> Match | None:
    """Same normalized first and last name at the same normalized street and ZIP/city."""
    return _exact(ctx, "name_address", "name_address", ctx.probe.name_address)


def candidate_leads(
    index: IdentityIndex, site: str, probe: Probe, config: MatcherConfig
) -> list[str]:
    """The leads fuzzy matching scores for a record: from its blocking keys, at most
    `max_candidates`, those sharing more keys first."""
    counts: dict[str, int] = {}
    for block in probe.query_blocks:
        for lead in index.candidates(site, block):
            counts[lead] = counts.get(lead, 0) + 1
    # Leads that share more blocking keys are likelier; dict order breaks ties (stable).
    return sorted(counts, key=lambda lead: -counts[lead])[: config.max_candidates]


def _by_fuzzy(ctx: RuleContext) -> Match | None:
    """The best-scoring candidate from the blocking keys, above the threshold."""
    passing: list[tuple[float, str, Profile]] = []
    for lead in candidate_leads(ctx.index, ctx.site, ctx.probe, ctx.config):
        profile = ctx.profile(lead)
        if profile is None:
            continue
        scored = score_pair(ctx.probe.profile, profile, ctx.config.model)
        if scored is not None and scored[0] >= ctx.config.fuzzy_threshold:
            passing.append((scored[0], lead, profile))
    if not passing:
        return None
    # Candidates whose first name fits come before those only the model accepted (no
    # personal details to veto on); within a tier the best score, ties in candidate order.
    tier = {lead: person_evidence(ctx.probe.profile, p) is not None for _, lead, p in passing}
    passing.sort(key=lambda item: (not tier[item[1]], -item[0]))
    score, lead, profile = passing[0]
    for other_score, other, other_profile in passing[1:]:
        if tier[other] != tier[lead]:
            break
        if names_agree(profile, other_profile) is None:
            ctx.notes.append(Conflict("fuzzy", score, lead, "ambiguous"))
            ctx.notes.append(Conflict("fuzzy", other_score, other, "ambiguous"))
            return None
    return Match("fuzzy", score, lead)


# The order is the policy: earlier rules win conflicts.
RULES: tuple[Rule, ...] = (
    Rule("lead_id", _by_lead_id),
    Rule("email", _by_email),
    Rule("phone", _by_phone),
    Rule("name_address", _by_name_address),
    Rule("fuzzy", _by_fuzzy, exhaustive=False),
)


@dataclass(frozen=True)
class Resolution:
    """The winning match (None: a new person) and every match not taken."""

    match: Match | None
    conflicts: tuple[Conflict, ...] = ()


def resolve(
    index: IdentityIndex,
    site: str,
    probe: Probe,
    config: MatcherConfig,
    rules: Sequence[Rule] = RULES,
) -> Resolution:
    """Run the rules in order; the first match wins, the others become conflicts."""
    ctx = RuleContext(index=index, site=site, probe=probe, config=config)
    winner: Match | None = None
    others: list[Match] = []
    for rule in rules:
        if winner is not None and not rule.exhaustive:
            continue
        match = rule.find(ctx)
        if match is None:
            continue
        if winner is None:
            winner = match
        else:
            others.append(match)
    won = winner.lead_id if winner else None
    conflicts = [Conflict(m.rule, m.score, m.lead_id, "outranked") for m in others]
    conflicts += ctx.notes
    unique = _dedupe_conflicts(c for c in conflicts if c.lead_id is None or c.lead_id != won)
    return Resolution(match=winner, conflicts=unique)


def _dedupe_conflicts(items: Iterable[Conflict]) -> tuple[Conflict, ...]:
    """Conflicts without repeats, first occurrence kept."""
    seen: set[tuple[str, str | None, str]] = set()
    out: list[Conflict] = []
    for item in items:
        key = (item.rule, item.lead_id, item.reason)
        if key not in seen:
            seen.add(key)
            out.append(item)
    return tuple(out)
