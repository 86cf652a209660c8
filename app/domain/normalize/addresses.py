"""Addresses: street lines with USPS abbreviations, cities, states and ZIP codes.

Abbreviations apply wherever a word appears: the street form is a key first and a display
second, so the same address typed two ways must come out identical.
"""

from __future__ import annotations

import re

from realgeeks_sync.app.domain.normalize.names import capitalize_words, normalize_name
from realgeeks_sync.app.domain.normalize.text import fold_key, normalize_text

__all__ = ["normalize_city", "normalize_state", "normalize_street", "normalize_zip"]

# USPS Publication 28 street suffixes and the spellings people type for them.
_SUFFIXES: dict[str, str] = {
    "alley": "Aly", "aly": "Aly", "avenue": "Ave", "ave": "Ave", "av": "Ave",
    "aven": "Ave", "avenu": "Ave", "avn": "Ave", "avnue": "Ave", "boulevard": "Blvd",
    "blvd": "Blvd", "boul": "Blvd", "boulv": "Blvd", "center": "Ctr", "ctr": "Ctr",
    "centre": "Ctr", "circle": "Cir", "cir": "Cir", "circ": "Cir", "court": "Ct",
    "ct": "Ct", "cove": "Cv", "cv": "Cv", "creek": "Crk", "crk": "Crk",
    "crescent": "Cres", "cres": "Cres", "crossing": "Xing", "xing": "Xing",
    "drive": "Dr", "dr": "Dr", "driv": "Dr", "drv": "Dr", "expressway": "Expy",
    "expy": "Expy", "freeway": "Fwy", "fwy": "Fwy", "gardens": "Gdns", "gdns": "Gdns",
    "glen": "Gln", "gln": "Gln", "grove": "Grv", "grv": "Grv", "heights": "Hts",
    "hts": "Hts", "highway": "Hwy", "hwy": "Hwy", "highwy": "Hwy", "hill": "Hl",
    "hl": "Hl", "hills": "Hls", "hls": "Hls", "junction": "Jct", "jct": "Jct",
    "lane": "Ln", "ln": "Ln", "loop": "Loop", "manor": "Mnr", "mnr": "Mnr",
    "meadows": "Mdws", "mdws": "Mdws", "mount": "Mt", "mt": "Mt", "mountain": "Mtn",
    "mtn": "Mtn", "parkway": "Pkwy", "pkwy": "Pkwy", "pky": "Pkwy", "parkwy": "Pkwy",
    "place": "Pl", "pl": "Pl", "plaza": "Plz", "plz": "Plz", "point": "Pt", "pt": "Pt",
    "ridge": "Rdg", "rdg": "Rdg", "road": "Rd", "rd": "Rd", "square": "Sq", "sq": "Sq",
    "street": "St", "st": "St", "str": "St", "saint": "St", "terrace": "Ter",
    "ter": "Ter", "terr": "Ter", "trail": "Trl", "trl": "Trl", "turnpike": "Tpke",
    "tpke": "Tpke", "valley": "Vly", "vly": "Vly", "view": "Vw", "vw": "Vw",
    "village": "Vlg", "vlg": "Vlg", "way": "Way", "wy": "Way",
}  # fmt: skip

_DIRECTIONALS: dict[str, str] = {
    "north": "N", "n": "N", "south": "S", "s": "S", "east": "E", "e": "E",
    "west": "W", "w": "W", "northeast": "NE", "ne": "NE", "northwest": "NW",
    "nw": "NW", "southeast": "SE", "se": "SE", "southwest": "SW", "sw": "SW",
}  # fmt: skip

# Secondary unit designators (USPS C2), only those that are not also common street words.
_UNITS: dict[str, str] = {
    "apartment": "Apt", "apt": "Apt", "suite": "Ste", "ste": "Ste", "unit": "Unit",
    "room": "Rm", "rm": "Rm", "floor": "Fl", "fl": "Fl", "building": "Bldg",
    "bldg": "Bldg", "space": "Spc", "spc": "Spc", "trailer": "Trlr", "trlr": "Trlr",
    "penthouse": "Ph", "ph": "Ph", "lot": "Lot", "#": "#",
}  # fmt: skip

_ORDINALS: dict[str, str] = {
    "first": "1st", "second": "2nd", "third": "3rd", "fourth": "4th", "fifth": "5th",
    "sixth": "6th", "seventh": "7th", "eighth": "8th", "ninth": "9th", "tenth": "10th",
    "eleventh": "11th", "twelfth": "12th",
}  # fmt: skip

_ORDINAL_RE = re.compile(r"^\d+(st|nd|rd|th)$")
_STREET_PUNCT = re.compile(r"[^\w\s#/,-]")


def normalize_street(value: object) -> str | None:
    """Canonical street line: punctuation dropped, USPS abbreviations, tidy case.

    "123 north Main Street, Apartment #4b" -> "123 N Main St Apt 4B". Abbreviations apply
    wherever the word appears: the form is a key first and a display second, so the same
    address typed two ways must come out identical.
    """
    text = _street_once(value)
    # As for names: capitalizing Greek with combining marks can yield a form the next
    # pass changes again (hypothesis found "ῢ"); a key must be a fixed point.
    for _ in range(4):
        if text is None:
            return None
        again = _street_once(text)
        if again == text:
            break
        text = again
    return text


def _street_once(value: object) -> str | None:
    text = normalize_text(value)
    if text is None:
        return None
    text = text.replace(".", "")  # "St." -> "St", "P.O." -> "PO"
    text = _STREET_PUNCT.sub(" ", text)
    text = text.replace("#", " # ").replace(",", " , ")
    words = text.split()
    out: list[str] = []
    i = 0
    while i < len(words):
        word = words[i]
        low = word.casefold()
        if low in ("po", "p") and _po_box_follows(words, i):
            out.append("PO Box")
            i += 2 if low == "po" else 3
            continue
        if low == "post" and [w.casefold() for w in words[i + 1 : i + 3]] == ["office", "box"]:
            out.append("PO Box")
            i += 3
            continue
        if word == ",":
            # Commas separate street, city and state in a one-line address; keep one.
            if out and out[-1] != ",":
                out.append(",")
        elif low in _UNITS:
            designator = _UNITS[low]
            # "Apt #4" carries the designator twice; keep the first.
            if designator == "#" and out and out[-1] in _UNITS.values():
                i += 1
                continue
            if out and out[-1] == ",":
                out.pop()  # "Main St, Apt 4" and "Main St Apt 4" are one address
            out.append(designator)
        elif low in _SUFFIXES:
            out.append(_SUFFIXES[low])
        elif low in _DIRECTIONALS:
            out.append(_DIRECTIONALS[low])
        elif low in _ORDINALS:
            out.append(_ORDINALS[low])
        elif word[:1].isdigit():
            out.append(low if _ORDINAL_RE.match(low) else word.upper())
        elif out and out[-1] == "," and word.upper() in _STATE_CODES:
            out.append(word.upper())  # ", HI 96813" in a one-line address
        else:
            out.append(capitalize_words(word))
        i += 1
    while out and out[-1] == ",":
        out.pop()
    return " ".join(out).replace(" ,", ",") or None


def _po_box_follows(words: list[str], i: int) -> bool:
    """True when words[i:] spells "PO Box" or "P O Box"."""
    if words[i].casefold() == "po":
        return i + 1 < len(words) and words[i + 1].casefold() == "box"
    return (
        i + 2 < len(words) and words[i + 1].casefold() == "o" and words[i + 2].casefold() == "box"
    )


def normalize_city(value: object) -> str | None:
    """City for display: whitespace, periods dropped, shouting case fixed."""
    text = normalize_text(value)
    if text is None:
        return None
    return normalize_name(text.replace(".", ""))


_STATES: dict[str, str] = {
    "alabama": "AL", "alaska": "AK", "arizona": "AZ", "arkansas": "AR",
    "california": "CA", "colorado": "CO", "connecticut": "CT", "delaware": "DE",
    "district of columbia": "DC", "florida": "FL", "georgia": "GA", "hawaii": "HI",
    "idaho": "ID", "illinois": "IL", "indiana": "IN", "iowa": "IA", "kansas": "KS",
    "kentucky": "KY", "louisiana": "LA", "maine": "ME", "maryland": "MD",
    "massachusetts": "MA", "michigan": "MI", "minnesota": "MN", "mississippi": "MS",
    "missouri": "MO", "montana": "MT", "nebraska": "NE", "nevada": "NV",
    "new hampshire": "NH", "new jersey": "NJ", "new mexico": "NM", "new york": "NY",
    "north carolina": "NC", "north dakota": "ND", "ohio": "OH", "oklahoma": "OK",
    "oregon": "OR", "pennsylvania": "PA", "rhode island": "RI", "south carolina": "SC",
    "south dakota": "SD", "tennessee": "TN", "texas": "TX", "utah": "UT",
    "vermont": "VT", "virginia": "VA", "washington": "WA", "west virginia": "WV",
    "wisconsin": "WI", "wyoming": "WY", "puerto rico": "PR", "guam": "GU",
    "us virgin islands": "VI", "american samoa": "AS",
    "northern mariana islands": "MP",
}  # fmt: skip
_STATE_CODES = frozenset(_STATES.values())


def normalize_state(value: object) -> str | None:
    """Two-letter USPS code for a US state or territory name or code; else tidy text."""
    text = normalize_text(value)
    if text is None:
        return None
    key = fold_key(text)
    if key.upper() in _STATE_CODES:
        return key.upper()
    if key in _STATES:
        return _STATES[key]
    return normalize_name(text.replace(".", ""))


_ZIP_RE = re.compile(r"^(\d{5})(?:-?(\d{4}))?$")


def normalize_zip(value: object) -> str | None:
    """US ZIP as "96813" or "96813-1234" (numbers zero-padded); other codes upper-cased."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 99999:
        return f"{value:05d}"  # JSON numbers lose New England's leading zero
    text = normalize_text(value)
    if text is None:
        return None
    compact = text.replace(" ", "")
    match = _ZIP_RE.match(compact)
    if match:
        return match.group(1) + (f"-{match.group(2)}" if match.group(2) else "")
    return text.upper()
