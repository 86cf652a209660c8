"""Given names and surnames: the nickname table, Soundex, and the household veto's levels.

The veto asks whether two first names can be one given name (equal, a nickname of it, a
typo or an initial); two names the table knows that share no line are two people (Mark
and Mary, Donald and Ronald). The level functions read at most `MAX_NAME_CHARS`
characters, so their caches hold bounded keys whatever a webhook sends.
"""

from __future__ import annotations

from functools import lru_cache

from rapidfuzz.distance import OSA, JaroWinkler

__all__ = [
    "GENERATIONS",
    "MAX_NAME_CHARS",
    "ROOTS",
    "TITLES",
    "first_name_level",
    "is_nickname_pair",
    "last_name_level",
    "name_forms",
    "phonetic",
    "soundex",
]

# Longest name the comparisons read; nobody's given name or surname is longer.
MAX_NAME_CHARS = 64
# Cached pairs per level function: keys of at most 2 x 64 characters keep each cache
# under about 16384 x 2 x (49 + 4 x 64) bytes = 10 MB, whatever the input.
_CACHE_ENTRIES = 16384


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


ROOTS = _name_tables()
# Formal name -> every name that may stand for it.
_GROUPS: dict[str, frozenset[str]] = {}
for _name, _name_roots in ROOTS.items():
    for _root in _name_roots:
        _GROUPS[_root] = _GROUPS.get(_root, frozenset()) | {_name, _root}
TITLES = frozenset({"mr", "mrs", "ms", "miss", "dr", "prof"})
GENERATIONS = frozenset({"jr", "sr", "ii", "iii", "iv"})


def is_nickname_pair(a: str, b: str) -> bool:
    """True when two folded first names can be the same given name (bob, robert)."""
    if a == b:
        return True
    return bool(ROOTS.get(a, frozenset({a})) & ROOTS.get(b, frozenset({b})))


def name_forms(name: str) -> frozenset[str]:
    """A first name and every name that shares a formal name with it."""
    forms = {name}
    for root in ROOTS.get(name, ()):
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


def soundex(name: str) -> str:
    """American Soundex of the ASCII letters of a name ("Robert" -> "R163"); "" if none."""
    return _soundex(name[:MAX_NAME_CHARS])


@lru_cache(maxsize=_CACHE_ENTRIES)
def _soundex(name: str) -> str:
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


def phonetic(name: str) -> str:
    """Soundex for Latin-script names; the first four characters for other scripts."""
    return soundex(name) or name.replace(" ", "")[:4]


def first_name_level(a: str, b: str) -> int:
    """How well two folded first names agree: 3 same/nickname, 2 typo, 1 initial, 0 not.

    Only the first word counts ("mary ann" vs "mary"). Two names the table knows are
    different names unless they share a line. Otherwise a one-letter difference (or a
    typo of a nickname's formal name) is a typo, a one-letter name an initial.
    """
    if a == b:
        return 3
    if not a.strip() or not b.strip():
        return 0
    return _first_name_level(a[:MAX_NAME_CHARS], b[:MAX_NAME_CHARS])


@lru_cache(maxsize=_CACHE_ENTRIES)
def _first_name_level(a: str, b: str) -> int:
    if a == b:
        return 3
    ta, tb = a.split()[0], b.split()[0]
    if ta == tb or is_nickname_pair(ta, tb):
        return 3
    if ta in ROOTS and tb in ROOTS:
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
    if min(OSA.distance(x, y) for x in name_forms(ta) for y in name_forms(tb)) <= 1:
        return 2
    if (
        distance <= 2
        and shorter >= 4
        and ta[0] == tb[0]
        and JaroWinkler.normalized_similarity(ta, tb) >= 0.88
    ):
        return 2  # "hlen" and "hellen": two typos of one name
    return 0


def last_name_level(a: str, b: str) -> int:
    """How well two folded last names agree: 3 same, 2 typo, 1 close, 0 not."""
    return _last_name_level(a[:MAX_NAME_CHARS], b[:MAX_NAME_CHARS])


@lru_cache(maxsize=_CACHE_ENTRIES)
def _last_name_level(a: str, b: str) -> int:
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
