"""The household veto: whether two profiles can be one person, read from their names.

Surname, street and a shared phone are household-level facts: a couple buying together
shares all three, and a family landline or email is a real-estate commonplace. They can
prove a household, never a person; the person is told by the first name. Two records
whose first names cannot be one given name (not equal, not nicknames, not a one-letter
typo or an initial, never two different names the nickname table knows), or whose
generational suffixes differ (Jr/Sr), are two people. A record without a first name
must not disagree on what is personal: its email, when it spells a first name, must
fit; otherwise the surname and the email (when both sides have one) must not differ.

The agreements here are ranks (names.first_name_level: 3 same or nickname, 2 typo,
1 initial, 0 not), not the fitted comparison levels of scoring: the veto is a rule.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from rapidfuzz.distance import OSA

from realgeeks_sync.app.domain.matching.features import email_local
from realgeeks_sync.app.domain.matching.names import ROOTS, first_name_level, last_name_level
from realgeeks_sync.app.domain.matching.profile import EMPTY_PROFILE, Profile, dedupe

__all__ = [
    "NameAgreement",
    "best_level",
    "fuzzy_evidence",
    "merge_profiles",
    "names_agree",
    "person_evidence",
]


@dataclass(frozen=True)
class NameAgreement:
    """Best agreement of two profiles' names: first and last levels (-1 = unknown)."""

    first: int
    last: int


def best_level(fn: Callable[[str, str], int], xs: Sequence[str], ys: Sequence[str]) -> int:
    """The best level over all pairs; -1 when either side has no value."""
    return max((fn(x, y) for x in xs for y in ys), default=-1)


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
        guessed = best_level(first_name_level, guesses, named.first)
        if guessed >= 1:
            return NameAgreement(guessed, names.last)
        if telling:
            return None  # the email spells somebody else's name or initial
    if a.emails and b.emails and best_level(_mailbox_level, a.emails, b.emails) == 0:
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
    return NameAgreement(0, best_level(last_name_level, a.last, b.last))


def _contacts_disagree(a: Profile, b: Profile) -> bool:
    """Both records carry an email and a phone, and not one of them is the other's.

    A person who registers again keeps a mailbox or a number far more often than the
    independent weights assume; two people of one name in one town change all of them.
    """
    if not (a.emails and b.emails and a.phones and b.phones):
        return False
    if best_level(_mailbox_level, a.emails, b.emails) > 0:
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
    guesses = dedupe(found)
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
        best_level(first_name_level, a.first, b.first),
        best_level(last_name_level, a.last, b.last),
    )
    if straight.first >= 1:
        return straight
    # Swapped: one record has first and last name in each other's boxes.
    swapped = NameAgreement(
        best_level(_any_name_level, a.last, b.first),
        best_level(_any_name_level, a.first, b.last),
    )
    if swapped.first >= 2 and swapped.last >= 2:
        return swapped
    if straight.first == 0:
        return None
    # No first name on one side: its surname may sit in the other's first-name box.
    if straight.last == 0 and max(swapped.first, swapped.last) >= 2:
        return NameAgreement(-1, max(swapped.first, swapped.last))
    return straight


def _mailbox_level(a: str, b: str) -> int:
    """4 same, 3 domain typo, 2 local-part typo, 1 same local part elsewhere, 0 different.

    The household veto reads only 0: two plainly different mailboxes.
    """
    if a == b:
        return 4
    local_a, _, domain_a = a.partition("@")
    local_b, _, domain_b = b.partition("@")
    if local_a == local_b:
        return 3 if OSA.distance(domain_a, domain_b) <= 2 else 1
    if email_local(a) == email_local(b):
        return 1  # "mary.lee" and "marylee": how two Mary Lees would both pick it
    if domain_a == domain_b and OSA.distance(local_a, local_b) <= 1:
        return 2
    return 0


def merge_profiles(stored: Profile, newer: Profile, cap: int) -> Profile:
    """A lead's profile plus a newer record's, newest values kept, at most cap per feature.

    A newer record that matched with first and last name swapped is filed the right way
    round, so the lead does not collect its surname as a first name.
    """
    keys = Profile._KEYS
    if stored == EMPTY_PROFILE:  # a new lead: nothing to merge with
        return Profile(**{n: getattr(newer, n)[-cap:] for n in keys})
    if stored.first and newer.first and newer.last:
        names = names_agree(newer, stored)
        straight = best_level(first_name_level, newer.first, stored.first)
        if names is not None and straight < 1 and names.first >= 2:
            newer = replace(newer, first=newer.last, last=newer.first)

    def union(old: tuple[str, ...], new: tuple[str, ...]) -> tuple[str, ...]:
        out = [x for x in old if x not in new] + list(new)
        return tuple(out[-cap:])

    return Profile(**{n: union(getattr(stored, n), getattr(newer, n)) for n in keys})
