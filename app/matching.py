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

Fuzzy scoring is Fellegi-Sunter style, as in splink: each comparison (first name, last
name, street, phone, email, ZIP/city) falls into a level with a hand-set weight in bits
(log2 of how much likelier the level is for the same person than for two random
people); the sum plus a prior is a match probability, compared with `fuzzy_threshold`.
A last name that disagrees costs 8 bits, which no other evidence in practice outweighs.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any

from rapidfuzz import fuzz
from rapidfuzz.distance import OSA, JaroWinkler

from app.normalize import fold_key, normalize_email, normalize_state
from tables.identity import IdentityIndex

__all__ = [
    "RULES",
    "Conflict",
    "Match",
    "MatcherConfig",
    "Probe",
    "Profile",
    "Resolution",
    "Rule",
    "build_probe",
    "first_name_level",
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

    # Measured with ops/bench_dedup.py (seeds 7, 8): precision 0.998 at every threshold
    # from 0.5 to 0.9999 (the vetoes do the precision work), recall 0.981 at 0.5, 0.978
    # at 0.9, 0.971 at 0.98, 0.95 at 0.9999. 0.9 (about 3 bits of evidence beyond the
    # prior) keeps "same name, same ZIP, nothing else" (p = 0.5) out on unseen data.
    fuzzy_threshold: float = 0.9
    candidate_cap: int = 50  # leads kept per blocking key (oldest evicted)
    max_candidates: int = 64  # leads scored per event, across all blocking keys
    shared_cap: int = 8  # leads per exact identifier before it stops identifying anyone
    profile_cap: int = 4  # values kept per feature in a lead's profile
    default_region: str = "US"  # phone numbers without "+"

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


# --- names -----------------------------------------------------------------------------

# One line per given name: the formal name (or its spellings, all treated as formal),
# then the short forms people type for it. A short form on several lines (chris, pat,
# kate) may stand for any of them. A line with one name only makes the name "known":
# two known names that share no line are two different names (Mark and Mary, Donald
# and Ronald), even though they are one letter apart.
_NAME_GROUPS = """
robert | bob bobby rob robbie bert
william | bill billy will willy liam
james | jim jimmy jamie
john | jack johnny jon
jonathan | jon jonny
michael | mike mikey mick mickey
richard | rick ricky rich richie dick
thomas | tom tommy
charles | charlie chuck chas
joseph | joe joey
daniel | dan danny
david | dave davey
steven stephen | steve stevie
matthew mathew | matt matty
anthony | tony
andrew | andy drew
christopher | chris kit topher
nicholas nicolas | nick nicky
benjamin | ben benny
edward | ed eddie ted ned
edwin | ed eddie
theodore | ted teddy theo
gregory | greg
jeffrey geoffrey | jeff geoff
joshua | josh
kenneth | ken kenny
lawrence laurence | larry
leonard | len lenny leo
peter | pete
philip phillip | phil
ronald | ron ronnie
russell | russ
timothy | tim timmy
samuel | sam sammy
alexander | alex al xander
albert | al bert bertie
alfred | al alf fred
alan allen allan | al
frederick frederic | fred freddy
francis | frank frankie
franklin | frank
gerald | gerry jerry
jerome | jerry
harold | harry hal
henry | hank harry hal
donald | don donny
douglas | doug
eugene | gene
nathaniel | nate nat nathan
nathan | nate
raymond | ray
stanley | stan
terrence terence | terry
walter | walt wally
zachary | zach zack
gabriel | gabe
manuel | manny
jose | pepe
francisco | paco pancho frank
randall | randy
vincent | vince vinny
wesley | wes
mitchell | mitch
martin | marty
maxwell | max
oliver | ollie
patrick | pat patty
louis | lou louie
herbert | herb bert
bradley | brad
calvin | cal
cameron | cam
isaac | ike
jacob | jake
rodney | rod
roger | rog
brian bryan |
eric erik |
sean shawn |
elizabeth | liz lizzie beth betsy betty eliza lisa libby elsie
katherine catherine kathryn | kate katie kathy cathy kat kay cate
kathleen | kathy kate katie
margaret | maggie meg peggy marge margie greta
patricia | pat patty trish tricia
jennifer | jen jenny jenn
rebecca | becky becca
deborah debra | debbie deb
susan | sue susie
suzanne | sue suzy
cynthia | cindy
jessica | jess jessie
abigail | abby
amanda | mandy
barbara | barb barbie
caroline carolyn | carol carrie
christine christina | chris chrissy tina
kimberly | kim
lorraine | lori
mary | molly polly mae
ann anne | annie nancy
anna | annie
eleanor | ellie nell nora
helen | nell nellie
sandra | sandy
tamara | tammy
theresa teresa | terry tess tessa
victoria | vicky tori
virginia | ginny ginger
valerie | val
constance | connie
dorothy | dot dottie
frances | fran frannie
josephine | jo josie
joanne | jo
judith | judy
louise | lou
samantha | sam sammy
alexandra | alex alexa sandra
gwendolyn | gwen wendy
sarah sara | sally sadie
jacqueline | jackie
stephanie | steph
melissa | missy mel
pamela | pam
angela | angie
michelle | shelly
danielle | dani
gabrielle | gabby
leilani | lani
"""

# Given names with no common short form, so that the table knows them as names.
_KNOWN_NAMES = """
aaron adam arthur austin billy brandon bruce carl carlos christian craig dennis derek
dylan elijah ethan evan gary george harvey jason jeremy jesse joel jordan juan justin
keith kevin kyle logan luis marcus mark noah paul ralph roy ryan scott todd travis tyler
wayne willie miguel jorge keoni kimo kainoa hiroshi kenji minh duc rajesh arjun wei jun
amy andrea ashley brenda carmen diana diane donna emily emma erin grace heather janet
jane jean joan julia julie karen laura linda lauren maria marie megan monica nicole
olivia paula rachel rose ruth sharon shirley tiffany dana dawn keiko malia yuki mai linh
priya mei sofia lucia rosa valeria hannah madison martha gloria janice alice sophia denise
amber doris marilyn beverly isabella natalie brittany charlotte kayla alexis evelyn joyce
cheryl judy nancy
"""


def _name_tables() -> dict[str, frozenset[str]]:
    """Name -> the formal names it may stand for (itself included when formal)."""
    roots: dict[str, set[str]] = {}
    for line in _NAME_GROUPS.strip().splitlines():
        formal_part, _, short_part = line.partition("|")
        formals = formal_part.split()
        for name in (*formals, *short_part.split()):
            roots.setdefault(name, set()).update(formals)
    for name in _KNOWN_NAMES.split():
        roots.setdefault(name, {name})
    return {k: frozenset(v) for k, v in roots.items()}


_ROOTS = _name_tables()
# Formal name -> every name that may stand for it.
_GROUPS: dict[str, frozenset[str]] = {}
for _name, _name_roots in _ROOTS.items():
    for _root in _name_roots:
        _GROUPS[_root] = _GROUPS.get(_root, frozenset()) | {_name, _root}
_TITLES = frozenset({"mr", "mrs", "ms", "miss", "dr", "prof"})
_GENERATIONS = frozenset({"jr", "sr", "ii", "iii", "iv"})


def is_nickname_pair(a: str, b: str) -> bool:
    """True when two folded first names can be the same given name (bob, robert)."""
    if a == b:
        return True
    return bool(_ROOTS.get(a, frozenset({a})) & _ROOTS.get(b, frozenset({b})))


def _forms(name: str) -> frozenset[str]:
    """A first name and every name that shares a formal name with it."""
    forms = {name}
    for root in _ROOTS.get(name, ()):
        forms |= _GROUPS[root]
    return frozenset(forms)


_SOUNDEX_CODES = {
    **dict.fromkeys("bfpv", "1"),
    **dict.fromkeys("cgjkqsxz", "2"),
    **dict.fromkeys("dt", "3"),
    "l": "4",
    **dict.fromkeys("mn", "5"),
    "r": "6",
}


@lru_cache(maxsize=65536)
def soundex(name: str) -> str:
    """American Soundex of the ASCII letters of a name ("Robert" -> "R163"); "" if none."""
    letters = [ch for ch in name.lower() if "a" <= ch <= "z"]
    if not letters:
        return ""
    out = [letters[0].upper()]
    previous = _SOUNDEX_CODES.get(letters[0], "")
    for ch in letters[1:]:
        code = _SOUNDEX_CODES.get(ch, "")
        if code and code != previous:
            out.append(code)
            if len(out) == 4:
                break
        if ch not in "hw":  # h and w do not separate equal codes; vowels do
            previous = code
    return "".join(out).ljust(4, "0")


def _phonetic(name: str) -> str:
    """Soundex for Latin-script names; the first four characters for other scripts."""
    return soundex(name) or name.replace(" ", "")[:4]


@lru_cache(maxsize=65536)
def first_name_level(a: str, b: str) -> int:
    """How well two folded first names agree: 3 same/nickname, 2 typo, 1 initial, 0 not.

    Only the first word counts ("mary ann" vs "mary"). Two names the table knows are
    different names unless they share a line. Otherwise a one-letter difference (or a
    typo of a nickname's formal name) is a typo, a one-letter name an initial.
    """
    if a == b:
        return 3
    ta, tb = a.split()[0], b.split()[0]
    if ta == tb or is_nickname_pair(ta, tb):
        return 3
    if ta in _ROOTS and tb in _ROOTS:
        return 0
    if len(ta) == 1 or len(tb) == 1:
        return 1 if ta[0] == tb[0] else 0
    shorter = min(len(ta), len(tb))
    if shorter >= 3 and (ta.startswith(tb) or tb.startswith(ta)):
        return 1  # an unknown name that starts like the other: weak
    distance = OSA.distance(ta, tb)
    if distance <= 1 and (shorter >= 3 or ta[0] == tb[0]):
        return 2  # "wi" for "wei" is a typo; "ed" and "ted" are two names
    # A typo of a nickname's formal name: "williiam" and "bill", "tny" and "anthony".
    if min(OSA.distance(x, y) for x in _forms(ta) for y in _forms(tb)) <= 1:
        return 2
    if (
        distance <= 2
        and shorter >= 4
        and ta[0] == tb[0]
        and JaroWinkler.normalized_similarity(ta, tb) >= 0.88
    ):
        return 2  # "hlen" and "hellen": two typos of one name
    return 0


@lru_cache(maxsize=65536)
def _last_name_level(a: str, b: str) -> int:
    """How well two folded last names agree: 3 same, 2 typo, 1 close, 0 not."""
    if a == b or a.replace(" ", "") == b.replace(" ", ""):
        return 3
    # Hyphenated or double surnames after marriage: "smith jones" vs "smith".
    if set(a.split()) & set(b.split()):
        return 2
    if OSA.distance(a, b) <= 1 and min(len(a), len(b)) >= 4:
        return 2
    similarity = JaroWinkler.normalized_similarity(a, b)
    if similarity >= 0.92:
        return 2
    return 1 if similarity >= 0.85 else 0


# --- features --------------------------------------------------------------------------


@dataclass(frozen=True)
class Profile:
    """Compact, JSON-safe features of a lead for comparing it with a new record.

    first/last: folded names (last without Jr/Sr); gen: generational suffixes;
    streets: "house|street" keys; zips: 5-digit ZIPs; cities: folded "city state";
    emails: normalized emails; phones: digits of E.164 numbers.
    """

    first: tuple[str, ...] = ()
    last: tuple[str, ...] = ()
    gen: tuple[str, ...] = ()
    streets: tuple[str, ...] = ()
    zips: tuple[str, ...] = ()
    cities: tuple[str, ...] = ()
    emails: tuple[str, ...] = ()
    phones: tuple[str, ...] = ()

    _KEYS = ("first", "last", "gen", "streets", "zips", "cities", "emails", "phones")

    def to_json(self) -> dict[str, list[str]]:
        """As stored in the index (a new dict)."""
        return {name: list(getattr(self, name)) for name in self._KEYS}

    @classmethod
    def from_json(cls, value: Mapping[str, Any] | None) -> Profile:
        """Read a stored profile; damaged parts read as empty."""
        if not isinstance(value, Mapping):
            return cls()
        parts: dict[str, tuple[str, ...]] = {}
        for name in cls._KEYS:
            items = value.get(name)
            if isinstance(items, list):
                parts[name] = tuple(x for x in items if isinstance(x, str))
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


def _street_key(street: object) -> str | None:
    """ "house|street name" from a normalized street line, unit and city part dropped."""
    line = _as_str(street)
    if line is None:
        return None
    words = line.split(",")[0].split()
    kept: list[str] = []
    for i, word in enumerate(words):
        if i > 0 and word in _UNIT_DESIGNATORS:
            break
        kept.append(word)
    folded = fold_key(" ".join(kept)).split()
    if not folded:
        return None
    if any(ch.isdigit() for ch in folded[0]) and len(folded) > 1:
        return f"{folded[0]}|{' '.join(folded[1:])}"
    return f"|{' '.join(folded)}"


_ZIP_AT_END = re.compile(r"^(.*?)[\s,]*\b(\d{5})(?:-\d{4})?$")


def _address_parts(address: object) -> tuple[str | None, str | None, str | None, str | None]:
    """(street, city, state, ZIP) of a one-line "street, city, ST 96813" address."""
    line = _as_str(address)
    if line is None:
        return None, None, None, None
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


def _split_last(name: str) -> tuple[str, str | None]:
    """A folded name without a trailing generational suffix (Jr, Sr, III), and the suffix."""
    words = name.split()
    if len(words) > 1 and words[-1] in _GENERATIONS:
        return " ".join(words[:-1]), words[-1]
    return name, None


def _first_key(first: object) -> str:
    """Folded first name without a leading title (Dr, Mrs)."""
    words = fold_key(first).split()
    while len(words) > 1 and words[0] in _TITLES:
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
    local = email.split("@", 1)[0].split("+", 1)[0]
    return "".join(ch for ch in local if ch.isalnum())


def _dedupe(items: Iterable[str]) -> tuple[str, ...]:
    """Items in first-seen order without repeats."""
    return tuple(dict.fromkeys(items))


def _as_str(value: object) -> str | None:
    """The value when it is a non-empty string."""
    return value if isinstance(value, str) and value else None


def build_probe(
    fields: Mapping[str, Any],
    *,
    source_lead_id: str | None = None,
    emails: Iterable[str] = (),
    phones: Iterable[str] = (),
) -> Probe:
    """Features and keys of a record from its normalized fields (app.normalize.normalize_lead).

    `emails`/`phones` add identifiers beyond the fields (a snapshot's history).
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
        p for p in (*(_as_str(fields.get(k)) for k in ("phone", "phone2")), *phones) if p
    )
    id_phones = tuple(p for p in all_phones if p.startswith("+") and not _is_placeholder_phone(p))

    first, first_generation = _split_last(_first_key(fields.get("first_name")))
    last, generation = _split_last(fold_key(fields.get("last_name")))
    generation = generation or first_generation  # "Bryant Sr" typed in the first box
    line_street, line_city, line_state, line_zip = _address_parts(fields.get("address"))
    street = _street_key(fields.get("street_address")) or _street_key(line_street)
    zip_value = _as_str(fields.get("zip")) or line_zip
    zip5 = zip_value[:5] if zip_value and zip_value[:5].isdigit() else None
    city = fold_key(fields.get("city")) or fold_key(line_city)
    state = fold_key(fields.get("state")) or fold_key(normalize_state(line_state))
    city_key = f"{city} {state}".strip() if city else None

    profile = Profile(
        first=(first,) if first else (),
        last=(last,) if last else (),
        gen=(generation,) if generation else (),
        streets=(street,) if street else (),
        zips=(zip5,) if zip5 else (),
        cities=(city_key,) if city_key else (),
        emails=id_emails,
        phones=tuple(_phone_digits(p) for p in id_phones),
    )

    # One location per exact name+address key: the ZIP, else the city.
    loc = zip5 or (f"c:{city_key}" if city_key else "-")
    name_address: list[str] = []
    if first and last and street:
        names = " ".join(sorted((first, last)))  # swapped first/last is the same person
        name_address = [f"{names}|{street}|{loc}"]

    # Where a lead is filed by location. ZIP blocks are small. "c:" city blocks hold
    # everyone in the city (large, capped) and are read only by records without a
    # ZIP; "cz:" blocks hold only the leads without a ZIP and are read by the rest.
    if zip5:
        file_locs = [zip5, *([f"c:{city_key}"] if city_key else [])]
        look_locs = [zip5, *([f"cz:{city_key}"] if city_key else [])]
    elif city_key:
        file_locs, look_locs = [f"c:{city_key}", f"cz:{city_key}"], [f"c:{city_key}"]
    else:
        file_locs = look_locs = ["-"]

    blocks: list[str] = []
    query_blocks: list[str] = []
    if last:
        initials = _initials(first)
        blocks += [f"n|{_phonetic(last)}|{i}|{loc}" for loc in file_locs for i in initials]
        query_blocks += [f"n|{_phonetic(last)}|{i}|{loc}" for loc in look_locs for i in initials]
        if first:  # first and last typed in each other's boxes
            query_blocks += [
                f"n|{_phonetic(first)}|{i}|{loc}" for loc in look_locs for i in _initials(last)
            ]
    shared: list[str] = [f"p|{digits[-7:]}" for digits in profile.phones]
    for email in id_emails:
        local = _email_local(email)
        if len(local) >= 3 and local not in _EMAIL_BLOCK_STOPLIST:
            shared.append(f"e|{local}")
    blocks += shared
    query_blocks += shared
    if street and not street.startswith("|"):
        # House number and the sound of the street's name: "12 N Main St" -> 12|M500.
        house, name = street.split("|", 1)
        words = [w for w in name.split() if w not in _DIRECTION_WORDS] or name.split()
        address = f"a|{house}|{_phonetic(words[0]) if words else ''}"
        blocks += [f"{address}|{loc}" for loc in file_locs]
        query_blocks += [f"{address}|{loc}" for loc in look_locs]

    return Probe(
        source_lead_id=source_lead_id,
        profile=profile,
        emails=id_emails,
        phones=id_phones,
        name_address=tuple(name_address),
        blocks=_dedupe(blocks),
        query_blocks=_dedupe(query_blocks),
    )


def _initials(first: str) -> tuple[str, ...]:
    """First letters of a first name and of the formal names it may stand for."""
    if not first:
        return ("_",)
    token = first.split()[0]
    return tuple(sorted({token[0]} | {root[0] for root in _ROOTS.get(token, ())}))


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
    return guesses, any(len(g) == 1 or g in _ROOTS for g in guesses)


def _any_name_level(a: str, b: str) -> int:
    """Agreement of two names when it is unknown which box held a first name."""
    return max(first_name_level(a, b), _last_name_level(a, b))


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
        _best_level(_last_name_level, a.last, b.last),
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


# Comparison levels and weights in bits: log2(P(level | same person) / P(level | not)).
# Hand-set from record-linkage practice, then checked with ops/bench_dedup.py.
_FIRST_BITS = {3: 6.5, 2: 3.5, 1: -0.5, -1: 0.0}
_LAST_BITS = {3: 8.0, 2: 4.5, 1: 1.0, 0: -8.0, -1: 0.0}
_STREET_BITS = {3: 11.0, 2: 7.0, 1: 3.0, 0: -2.5, -1: 0.0}
_PHONE_BITS = {3: 14.0, 2: 9.0, 1: 5.0, 0: -2.0, -1: 0.0}
_EMAIL_BITS = {4: 14.0, 3: 10.0, 2: 5.0, 1: 2.5, 0: -1.5, -1: 0.0}
_LOCATION_BITS = {2: 5.0, 1: 1.0, 0: -3.0, -1: 0.0}
_PRIOR_BITS = -19.5  # about one pair in 700 000 is the same person


def _street_level(a: str, b: str) -> int:
    """3 same street, 2 close, 1 house number one typo off, 0 different."""
    house_a, name_a = a.split("|", 1)
    house_b, name_b = b.split("|", 1)
    similarity = 1.0 if name_a == name_b else fuzz.token_sort_ratio(name_a, name_b) / 100.0
    if house_a != house_b:
        # "1234 Main St" for "1243 Main St"; a neighbour's number is weak evidence only.
        typo = bool(house_a and house_b) and OSA.distance(house_a, house_b) <= 1
        return 1 if typo and similarity >= 0.9 else 0
    if similarity >= 0.9:
        return 3
    return 2 if similarity >= 0.75 else 0


def _phone_level(a: str, b: str) -> int:
    """3 same number, 2 one typo, 1 same last seven digits, 0 different."""
    if a == b:
        return 3
    if len(a) == len(b) and OSA.distance(a, b) <= 1:
        return 2
    return 1 if a[-7:] == b[-7:] else 0


def _email_level(a: str, b: str) -> int:
    """4 same, 3 domain typo, 2 local-part typo, 1 same local part elsewhere, 0 different.

    A typo in the local part counts less than one in the domain: local parts are built
    from names, so "jon.smith" and "john.smith" may just be two similar names.
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


def _best_level(fn: Callable[[str, str], int], xs: Sequence[str], ys: Sequence[str]) -> int:
    """The best level over all pairs; -1 when either side has no value."""
    return max((fn(x, y) for x in xs for y in ys), default=-1)


def score_pair(probe: Profile, candidate: Profile) -> tuple[float, NameAgreement] | None:
    """Match probability of two profiles and their name agreement; None when vetoed."""
    names = person_evidence(probe, candidate)
    if names is None:
        return None
    bits = _PRIOR_BITS + _FIRST_BITS.get(names.first, 0.0) + _LAST_BITS[names.last]
    bits += _STREET_BITS[_best_level(_street_level, probe.streets, candidate.streets)]
    bits += _PHONE_BITS[_best_level(_phone_level, probe.phones, candidate.phones)]
    email = _best_level(_email_level, probe.emails, candidate.emails)
    if email == 2 and names.first == 3 and names.last == 3:
        email = 3  # same full name: the local-part typo is not two similar names
    bits += _EMAIL_BITS[email]
    if probe.zips and candidate.zips:
        location = 2 if set(probe.zips) & set(candidate.zips) else 0
        if location == 0 and set(probe.cities) & set(candidate.cities):
            location = 1  # another ZIP in the same city
    elif probe.cities and candidate.cities:
        location = 1 if set(probe.cities) & set(candidate.cities) else 0
    else:
        location = -1
    bits += _LOCATION_BITS[location]
    probability = 1.0 / (1.0 + math.pow(2.0, -bits))
    return round(probability, 6), names


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


def _by_fuzzy(ctx: RuleContext) -> Match | None:
    """The best-scoring candidate from the blocking keys, above the threshold."""
    counts: dict[str, int] = {}
    for block in ctx.probe.query_blocks:
        for lead in ctx.index.candidates(ctx.site, block):
            counts[lead] = counts.get(lead, 0) + 1
    # Leads that share more blocking keys are likelier; dict order breaks ties (stable).
    ranked = sorted(counts, key=lambda lead: -counts[lead])[: ctx.config.max_candidates]
    passing: list[tuple[float, str, Profile]] = []
    for lead in ranked:
        profile = ctx.profile(lead)
        if profile is None:
            continue
        scored = score_pair(ctx.probe.profile, profile)
        if scored is not None and scored[0] >= ctx.config.fuzzy_threshold:
            passing.append((scored[0], lead, profile))
    if not passing:
        return None
    passing.sort(key=lambda item: -item[0])  # stable: equal scores keep candidate order
    score, lead, profile = passing[0]
    for other_score, other, other_profile in passing[1:]:
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
