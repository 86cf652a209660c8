"""Identity resolution rules, conflicts, and the people who must stay apart."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from realgeeks_sync.app.domain.leads import decide_lead
from realgeeks_sync.app.domain.matching import (
    RULES,
    MatcherConfig,
    Probe,
    Profile,
    Resolution,
    blocking_keys,
    build_probe,
    first_name_level,
    is_nickname_pair,
    names_agree,
    resolve,
    score_pair,
    soundex,
)
from realgeeks_sync.app.domain.matching.household import best_level
from realgeeks_sync.app.domain.matching.profile import MAX_STREET_CHARS, dedupe
from realgeeks_sync.app.domain.normalize import normalize_lead, normalize_lead_id
from realgeeks_sync.tables.identity import IdentityIndex

SITE = "5ead6dd1-2cb9-4f80-80fc-5716b05c90ba"
CONFIG = MatcherConfig()

JACK = {
    "id": "a1",
    "first_name": "Jack",
    "last_name": "Johnson",
    "email": "jack@mail.com",
    "phone": "808-817-2382",
    "street_address": "12 Kapiolani Boulevard Apt 4",
    "city": "Honolulu",
    "state": "HI",
    "zip": "96813",
}


class CountingStore(dict[str, Any]):
    """A dict that counts reads, to show lookups do not grow with the index."""

    reads = 0

    def get(self, key: str, default: Any = None) -> Any:
        self.reads += 1
        return super().get(key, default)


def _index() -> IdentityIndex:
    return IdentityIndex({}, {})


def _add(index: IdentityIndex, body: dict[str, Any], n: int = 0) -> str:
    """Index a lead the real way; returns its canonical id."""
    decision = decide_lead(
        index,
        site_uuid=SITE,
        action="created",
        body=body,
        source_timestamp=None,
        message_id=f"seed-{body.get('id')}-{n}",
        now="2024-06-01T00:00:00Z",
        config=CONFIG,
    )
    return decision.lead_id


def _resolve(
    index: IdentityIndex, body: dict[str, Any], config: MatcherConfig = CONFIG
) -> Resolution:
    fields = normalize_lead(body)
    probe = build_probe(fields, source_lead_id=normalize_lead_id(body.get("id")))
    return resolve(index, SITE, probe, config)


def _rule(resolution: Resolution) -> tuple[str | None, str | None]:
    match = resolution.match
    return (match.rule, match.lead_id) if match else (None, None)


# --- the rules, one by one ---------------------------------------------------------------


def test_rule_order_is_data_in_one_place() -> None:
    assert [rule.name for rule in RULES] == ["lead_id", "email", "phone", "name_address", "fuzzy"]
    assert [rule.exhaustive for rule in RULES] == [True, True, True, True, False]


def test_lead_id_rule_ignores_dashes_and_case() -> None:
    index = _index()
    _add(index, dict(JACK, id="A27C20AF-4497-415D-9E4E-7334DD1D40D2"))
    found = _resolve(index, {"id": "a27c20af4497415d9e4e7334dd1d40d2"})
    assert _rule(found) == ("lead_id", "a27c20af4497415d9e4e7334dd1d40d2")
    assert found.match is not None and found.match.score == 1.0


def test_email_rule_is_case_and_space_insensitive() -> None:
    index = _index()
    _add(index, JACK)
    assert _rule(_resolve(index, {"id": "b2", "email": "  JACK@Mail.com "})) == ("email", "a1")


def test_phone_rule_uses_e164_across_formats() -> None:
    index = _index()
    _add(index, JACK)
    body = {"id": "b2", "first_name": "Jack", "phone": "+1 (808) 817.2382"}
    assert _rule(_resolve(index, body)) == ("phone", "a1")


def test_name_address_rule_uses_normalized_name_and_street() -> None:
    index = _index()
    _add(index, JACK)
    body = {"id": "b2", "first_name": "JACK", "last_name": "johnson",
            "street_address": "12 Kapiolani Blvd., Apartment 4", "zip": "96813-1234"}  # fmt: skip
    assert _rule(_resolve(index, body)) == ("name_address", "a1")


def test_one_line_address_matches_separate_fields() -> None:
    index = _index()
    _add(index, JACK)
    body = {"id": "b2", "first_name": "Jack", "last_name": "Johnson",
            "address": "12 Kapiolani Blvd, Apt. 4, Honolulu, Hawaii 96813"}  # fmt: skip
    assert _rule(_resolve(index, body)) == ("name_address", "a1")


def test_fuzzy_rule_matches_a_typo_and_a_nickname_at_the_same_address() -> None:
    index = _index()
    _add(index, dict(JACK, first_name="Robert", last_name="Kowalski"))
    body = {"id": "b2", "first_name": "Bob", "last_name": "Kowalsky", "email": "bobk@work.com",
            "street_address": "12 Kapiolani Blvd #4", "zip": "96813"}  # fmt: skip
    found = _resolve(index, body)
    assert _rule(found) == ("fuzzy", "a1")
    assert found.match is not None and CONFIG.fuzzy_threshold <= found.match.score <= 1.0


def test_fuzzy_needs_more_than_a_name_and_a_zip() -> None:
    index = _index()
    _add(index, JACK)
    body = {"id": "b2", "first_name": "Jack", "last_name": "Johnson", "zip": "96813"}
    assert _rule(_resolve(index, body)) == (None, None)


def test_fuzzy_threshold_is_configurable() -> None:
    index = _index()
    _add(index, dict(JACK, first_name="Robert", last_name="Kowalski"))
    body = {"id": "b2", "first_name": "Bob", "last_name": "Kowalsky",
            "street_address": "12 Kapiolani Blvd #4", "zip": "96813"}  # fmt: skip
    assert _rule(_resolve(index, body)) == ("fuzzy", "a1")
    strict = replace(CONFIG, fuzzy_threshold=1.0)
    assert _rule(_resolve(index, body, strict)) == (None, None)


def test_swapped_first_and_last_name_still_match() -> None:
    index = _index()
    _add(index, JACK)
    body = {"id": "b2", "first_name": "Johnson", "last_name": "Jack", "email": "jack@mail.com"}
    assert _rule(_resolve(index, body)) == ("email", "a1")


def test_placeholder_phone_never_matches() -> None:
    index = _index()
    _add(index, dict(JACK, phone="555-555-5555", email="a@x.com"))
    body = {"id": "b2", "first_name": "Jack", "phone": "(555) 555-5555", "email": "b@y.com"}
    assert _rule(_resolve(index, body)) == (None, None)


def test_agents_own_email_does_not_identify_the_lead() -> None:
    index = _index()
    _add(index, {"id": "a1", "first_name": "Ann", "last_name": "Lee", "email": "ben@mail.com",
                 "agent_email": "ben@mail.com"})  # fmt: skip
    body = {"id": "b2", "first_name": "Ann", "last_name": "Lee", "email": "ben@mail.com",
            "agent_email": "BEN@mail.com"}  # fmt: skip
    assert _rule(_resolve(index, body)) == (None, None)


def test_identifier_shared_by_many_leads_stops_identifying() -> None:
    config = replace(CONFIG, shared_cap=3)
    index = _index()
    for n, first in enumerate(["Ann", "Bea", "Cy"]):
        decide_lead(index, site_uuid=SITE, action="created",
                    body={"id": f"x{n}", "first_name": first, "phone": "808-817-2382"},
                    source_timestamp=None, message_id=f"s{n}", now="2024-06-01T00:00:00Z",
                    config=config)  # fmt: skip
    found = _resolve(index, {"id": "y", "first_name": "Ann", "phone": "808-817-2382"}, config)
    assert found.match is None
    assert any(c.reason == "shared_identifier" for c in found.conflicts)


# --- conflicts ---------------------------------------------------------------------------


def test_email_and_phone_disagree_rule_order_wins_and_the_loser_is_reported() -> None:
    index = _index()
    _add(index, JACK)
    _add(index, {"id": "b2", "first_name": "Jack", "last_name": "Johnson",
                 "email": "jj@work.com", "phone": "808-555-0199"})  # fmt: skip
    found = _resolve(index, {"id": "c3", "first_name": "Jack", "email": "jack@mail.com",
                             "phone": "808-555-0199"})  # fmt: skip
    assert _rule(found) == ("email", "a1")
    assert [(c.rule, c.lead_id, c.reason) for c in found.conflicts] == [
        ("phone", "b2", "outranked")
    ]


def test_known_lead_id_outranks_an_email_of_another_lead() -> None:
    index = _index()
    _add(index, JACK)
    _add(index, {"id": "b2", "first_name": "Jack", "email": "jj@work.com"})
    found = _resolve(index, {"id": "b2", "email": "jack@mail.com"})
    assert _rule(found) == ("lead_id", "b2")
    assert [(c.rule, c.lead_id, c.reason) for c in found.conflicts] == [
        ("email", "a1", "outranked")
    ]


def test_two_emails_of_one_record_pointing_at_two_leads() -> None:
    index = _index()
    _add(index, JACK)
    _add(index, {"id": "b2", "first_name": "Jack", "email": "jj@work.com"})
    found = _resolve(index, {"id": "c3", "first_name": "Jack", "email": "jack@mail.com",
                             "second_email": "jj@work.com"})  # fmt: skip
    assert _rule(found) == ("email", "a1")
    assert ("email", "b2", "outranked") in [(c.rule, c.lead_id, c.reason) for c in found.conflicts]


# --- people who must stay apart ---------------------------------------------------------


def test_same_surname_and_city_are_different_people() -> None:
    index = _index()
    _add(index, JACK)
    body = {"id": "b2", "first_name": "Mary", "last_name": "Johnson", "city": "Honolulu",
            "state": "HI", "zip": "96813", "email": "mary.j@mail.com",
            "street_address": "99 Beretania St"}  # fmt: skip
    assert _rule(_resolve(index, body)) == (None, None)


def test_same_first_name_and_zip_are_different_people() -> None:
    # Same building, another apartment: the shared street proves nothing (units differ).
    index = _index()
    _add(index, JACK)
    body = {"id": "b2", "first_name": "Jack", "last_name": "Nakamura", "zip": "96813",
            "street_address": "12 Kapiolani Blvd Apt 9", "email": "jn@mail.com"}  # fmt: skip
    assert _rule(_resolve(index, body)) == (None, None)


def test_household_sharing_phone_and_address_is_not_merged() -> None:
    index = _index()
    _add(index, JACK)
    spouse = {"id": "b2", "first_name": "Mary", "last_name": "Johnson",
              "email": "mary@mail.com", "phone": "(808) 817-2382",
              "street_address": "12 Kapiolani Blvd Apt 4", "zip": "96813"}  # fmt: skip
    found = _resolve(index, spouse)
    assert found.match is None
    assert ("phone", "a1", "name_mismatch") in [
        (c.rule, c.lead_id, c.reason) for c in found.conflicts
    ]


def test_household_member_registering_again_finds_herself() -> None:
    index = _index()
    _add(index, JACK)
    mary = _add(index, {"id": "b2", "first_name": "Mary", "last_name": "Johnson",
                        "email": "mary@mail.com", "phone": "(808) 817-2382"})  # fmt: skip
    assert mary == "b2"
    again = {"id": "c3", "first_name": "Mary", "last_name": "Johnson", "phone": "8088172382",
             "email": "mary.new@mail.com"}  # fmt: skip
    assert _rule(_resolve(index, again)) == ("phone", "b2")


def test_nameless_record_on_a_shared_phone_is_ambiguous() -> None:
    index = _index()
    _add(index, JACK)
    _add(index, {"id": "b2", "first_name": "Mary", "last_name": "Johnson",
                 "phone": "(808) 817-2382"})  # fmt: skip
    found = _resolve(index, {"id": "c3", "last_name": "Johnson", "phone": "808-817-2382"})
    assert found.match is None
    assert {c.reason for c in found.conflicts} == {"ambiguous"}


def test_nameless_record_whose_email_names_someone_else() -> None:
    index = _index()
    _add(index, JACK)
    body = {"id": "b2", "last_name": "Johnson", "email": "mary.johnson@mail.com",
            "phone": "808-817-2382"}  # fmt: skip
    assert _rule(_resolve(index, body)) == (None, None)
    body_jack = dict(body, email="jack.johnson77@mail.com")
    assert _rule(_resolve(index, body_jack)) == ("phone", "a1")


def test_shared_family_email_with_another_first_name_is_not_merged() -> None:
    index = _index()
    _add(index, dict(JACK, email="johnsons@mail.com"))
    found = _resolve(index, {"id": "b2", "first_name": "Mary", "email": "johnsons@mail.com"})
    assert found.match is None
    assert found.conflicts[0].reason == "name_mismatch"


def test_junior_and_senior_at_one_address_stay_apart() -> None:
    index = _index()
    _add(index, dict(JACK, last_name="Johnson Sr"))
    body = dict(JACK, id="b2", last_name="Johnson Jr", email="jr@mail.com")
    assert _rule(_resolve(index, body)) == (None, None)


def test_similar_names_without_shared_contacts_stay_apart() -> None:
    index = _index()
    _add(index, JACK)
    body = {"id": "b2", "first_name": "Jake", "last_name": "Jonson", "zip": "96813",
            "email": "jake.jonson@mail.com", "phone": "808-555-0142",
            "street_address": "700 Bishop St"}  # fmt: skip
    assert _rule(_resolve(index, body)) == (None, None)


ADDRESS_ONLY = {"id": "a1", "first_name": "Lachlan", "last_name": "Reid",
                "street_address": "5 Carrington Road, Legacy Vlge", "city": "Yagoona",
                "state": "nsw", "zip": "2464"}  # fmt: skip


def test_without_contacts_a_different_first_name_is_weighed_not_vetoed() -> None:
    # Nothing personal on either record: the first name is one comparison among others.
    index = _index()
    _add(index, ADDRESS_ONLY)
    body = dict(ADDRESS_ONLY, id="b2", first_name="Elton")
    assert _rule(_resolve(index, body)) == ("fuzzy", "a1")


def test_with_contacts_a_different_first_name_is_a_household_member() -> None:
    index = _index()
    _add(index, dict(ADDRESS_ONLY, phone="808-817-2382"))
    body = dict(ADDRESS_ONLY, id="b2", first_name="Elton", phone="808-817-2382")
    resolution = _resolve(index, body)
    assert _rule(resolution) == (None, None)
    assert any(c.reason == "name_mismatch" for c in resolution.conflicts)


def test_same_name_whose_every_email_and_phone_differ_is_someone_else() -> None:
    index = _index()
    _add(index, JACK)
    body = dict(JACK, id="b2", email="jack.j@other.com", phone="808-555-0199",
                street_address="99 Kalakaua Ave")  # fmt: skip
    assert _rule(_resolve(index, body)) == (None, None)


def test_street_and_second_line_typed_the_other_way_round() -> None:
    index = _index()
    _add(index, dict(ADDRESS_ONLY, street_address="207 Curtis Place, Rosewood Garden"))
    body = dict(ADDRESS_ONLY, id="b2", street_address="207 Rosewood Garden, Curtis Place",
                zip="2446")  # fmt: skip
    assert _rule(_resolve(index, body)) == ("fuzzy", "a1")


# --- names and scores -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b"),
    [("bob", "robert"), ("bill", "william"), ("liz", "elizabeth"), ("jim", "james"),
     ("kate", "katherine"), ("kate", "catherine"), ("peggy", "margaret"), ("steve", "stephen"),
     ("steven", "stephen"), ("tony", "anthony")],
)  # fmt: skip
def test_nicknames(a: str, b: str) -> None:
    assert is_nickname_pair(a, b) and is_nickname_pair(b, a)
    assert first_name_level(a, b) == 3


@pytest.mark.parametrize(
    ("a", "b", "level"),
    [
        ("jhon", "john", 2),  # transposition
        ("wi", "wei", 2),  # short name, one letter dropped
        ("williiam", "bill", 2),  # typo of the nickname's formal name
        ("j", "john", 1),  # initial
        ("mary ann", "mary", 3),
        ("mark", "mary", 0),  # two known names one letter apart
        ("donald", "ronald", 0),
        ("jack", "mary", 0),
        ("ed", "ted", 3),  # both Edward
        ("ed", "fred", 0),
    ],
)
def test_first_name_levels(a: str, b: str, level: int) -> None:
    assert first_name_level(a, b) == level


@pytest.mark.parametrize(
    ("name", "code"),
    [("Robert", "R163"), ("Rupert", "R163"), ("Ashcraft", "A261"), ("Tymczak", "T522"),
     ("Pfister", "P236"), ("Honeyman", "H555"), ("Lee", "L000"), ("O'Brien", "O165"), ("", "")],
)  # fmt: skip
def test_soundex(name: str, code: str) -> None:
    assert soundex(name) == code


def test_names_agree_veto_and_swap() -> None:
    jack = Profile(first=("jack",), last=("johnson",))
    assert names_agree(jack, Profile(first=("mary",), last=("johnson",))) is None
    swapped = names_agree(jack, Profile(first=("johnson",), last=("jack",)))
    assert swapped is not None and swapped.first == 3 and swapped.last == 3
    unknown = names_agree(Profile(last=("johnson",)), jack)
    assert unknown is not None and unknown.first == -1


def test_score_is_a_probability_and_rises_with_evidence() -> None:
    base = Profile(first=("jack",), last=("johnson",), zips=("96813",))
    cand = Profile(first=("jack",), last=("johnson",), zips=("96813",),
                   streets=("12|kapiolani blvd",), phones=("18088172382",))  # fmt: skip
    weak = score_pair(base, cand)
    strong = score_pair(replace(base, streets=("12|kapiolani blvd",)), cand)
    assert weak is not None and strong is not None
    assert 0.0 < weak[0] < strong[0] <= 1.0
    assert score_pair(replace(base, first=("mary",)), cand) is None


def test_config_is_validated() -> None:
    with pytest.raises(ValueError):
        MatcherConfig(fuzzy_threshold=0.0)
    with pytest.raises(ValueError):
        MatcherConfig(candidate_cap=0)


# --- cost does not grow with the index ---------------------------------------------------


def _people(count: int) -> list[dict[str, Any]]:
    firsts = ["Ann", "Bea", "Carl", "Dee", "Eli", "Fay", "Gus", "Hal", "Ida", "Jo"]
    lasts = ["Smith", "Smyth", "Smithe", "Nakamura", "Lee", "Kim", "Ortiz", "Brown"]
    return [
        {"id": f"p{n}", "first_name": firsts[n % 10], "last_name": lasts[n % 8],
         "email": f"person{n}@mail.com", "phone": f"808-{200 + n // 1000}-{n % 1000:04d}",
         "street_address": f"{n % 50} Main St", "zip": "96813"}
        for n in range(count)
    ]  # fmt: skip


def test_fuzzy_reads_only_candidates_from_blocking_keys() -> None:
    reads: list[int] = []
    for size in (150, 600):
        store = CountingStore()
        index = IdentityIndex(store, {})
        for person in _people(size):
            _add(index, person)
        store.reads = 0
        probe_body = {"id": "new", "first_name": "Ann", "last_name": "Smith", "zip": "96813",
                      "street_address": "7 Main St", "email": "ann.new@mail.com"}  # fmt: skip
        _resolve(index, probe_body)
        reads.append(store.reads)
    # A scan would read 4x more at 600 leads; blocking keys and caps keep it flat.
    assert reads[1] <= reads[0] + 5
    assert reads[1] <= 20 + CONFIG.max_candidates


_PART = st.one_of(st.none(), st.sampled_from(["", "Mary", "mary ann", "Bob", "O'Brien", "Sr"]))
_FIELDS = st.fixed_dictionaries(
    {},
    optional={
        "first_name": _PART,
        "last_name": st.one_of(_PART, st.sampled_from(["Stone Jr", "Dr Lee"])),
        "email": st.sampled_from(["mary@x.org", "info@x.org", "m.stone+a@y.com", "bad"]),
        "second_email": st.sampled_from(["bob@x.org", ""]),
        "agent_email": st.sampled_from(["mary@x.org", "agent@rg.com"]),
        "phone": st.sampled_from(["+18088172382", "+15555555555", "808", ""]),
        "street_address": st.sampled_from(["12 Main St", "12 N Main St Apt 4", "Main", ""]),
        "address": st.sampled_from(["12 Main St, Honolulu, HI 96813", "PO Box 1", ""]),
        "city": st.sampled_from(["Honolulu", "Hilo", ""]),
        "state": st.sampled_from(["HI", "CA", ""]),
        "zip": st.sampled_from(["96813", "96813-1234", "ab", ""]),
    },
)


@given(_FIELDS, st.lists(st.sampled_from(["old@x.org", "mary@x.org"]), max_size=2))
def test_a_filing_probe_is_the_full_probe_without_look_up_keys(
    body: dict[str, Any], emails: list[str]
) -> None:
    # index_lead builds probes with query=False: every other part must be the same.
    fields = normalize_lead(body)
    full = build_probe(fields, emails=emails, phones=["+18088172383"])
    filing = build_probe(fields, emails=emails, phones=["+18088172383"], query=False)
    assert filing == replace(full, query_blocks=())


@given(st.one_of(st.text(max_size=12), st.sampled_from(["bob", "n main st", "w", "", "liz ann"])))
def test_blocking_caches_return_what_the_uncached_functions_return(text: str) -> None:
    from realgeeks_sync.app.domain.matching import blocking

    def outcome(fn: Any) -> object:
        try:
            return fn(text)
        except IndexError as exc:  # "  " has no first word, cached or not
            return type(exc)

    for cached in (blocking._initials, blocking._name_sound):
        assert outcome(cached) == outcome(cached.__wrapped__)


# --- probes built like another (issue 13): the same keys as built from scratch ----------

_NAME_OR_PLACE = st.lists(
    st.sampled_from(["mary", "bob", "o brien", "12|main st", "|main", "96813", "honolulu hi"]),
    max_size=2,
    unique=True,
).map(tuple)
_PROFILES = st.builds(
    Profile,
    first=_NAME_OR_PLACE,
    last=_NAME_OR_PLACE,
    gen=st.sampled_from([(), ("sr",)]),
    streets=st.lists(st.sampled_from(["12|main st", "|main", "4|n king st"]), max_size=2).map(
        tuple
    ),
    lines=st.sampled_from([(), ("apt 4",)]),
    zips=st.lists(st.sampled_from(["96813", "96720"]), max_size=2).map(tuple),
    cities=st.lists(st.sampled_from(["honolulu hi", "hilo hi"]), max_size=2).map(tuple),
    city_names=st.lists(st.sampled_from(["honolulu", "hilo"]), max_size=2).map(tuple),
    emails=st.lists(st.sampled_from(["mary@x.org", "info@x.org", "m.s+a@y.com"]), max_size=2).map(
        tuple
    ),
    phones=st.lists(st.sampled_from(["18088172382", "18088172383"]), max_size=2).map(tuple),
)
_PLACE_FEATURES = ("first", "last", "gen", "streets", "lines", "zips", "cities", "city_names")


def _blocking_keys_as_built_before(
    profile: Profile, query: bool
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """blocking_keys as it was before name-and-place keys could be reused (issue 13)."""
    from realgeeks_sync.app.domain.matching import blocking

    file_locs, look_locs = blocking._locations(profile)
    blocks: list[str] = []
    lookups: list[str] = []
    for rule in blocking.BLOCKING:
        if rule.located:
            blocks += rule.keys(profile, file_locs)
            if query:
                lookups += rule.keys(profile, look_locs)
        else:
            keys = rule.keys(profile, ())
            blocks += keys
            if query:
                lookups += keys
    if not query:
        return dedupe(blocks), ()
    if profile.first and profile.last:
        lookups += blocking._surname_keys(
            Profile(first=profile.last, last=profile.first), look_locs
        )
    return dedupe(blocks), dedupe(lookups)


@given(_PROFILES, _PROFILES, st.booleans())
def test_blocking_keys_with_another_profiles_place_keys_are_its_own(
    profile: Profile, other: Profile, query: bool
) -> None:
    from realgeeks_sync.app.domain.matching import blocking

    expected = _blocking_keys_as_built_before(profile, query)
    assert blocking_keys(profile, query=query) == expected
    # Another profile with the same names and places, other emails and phones: its
    # name-and-place keys serve this one (the contact keys are this one's own).
    same_place = replace(other, **{k: getattr(profile, k) for k in _PLACE_FEATURES})
    for source, built_with_lookups in ((same_place, True), (same_place, query)):
        place = blocking.place_keys(source, query=built_with_lookups)
        assert blocking.blocking_keys_with(profile, place, query=query) == expected


def test_contact_rules_ignore_locations() -> None:
    from realgeeks_sync.app.domain.matching import BLOCKING

    # blocking_keys_with hands a contact rule no locations: it must not need any.
    assert [rule.name for rule in BLOCKING if rule.contacts] == ["contact"]
    assert all(not rule.located for rule in BLOCKING if rule.contacts)


def test_place_keys_without_look_ups_cannot_give_look_up_keys() -> None:
    from realgeeks_sync.app.domain.matching import blocking

    profile = build_probe(normalize_lead({"first_name": "Mary", "last_name": "Stone"})).profile
    with pytest.raises(ValueError, match="look-up"):
        blocking.blocking_keys_with(profile, blocking.place_keys(profile, query=False))


def _probe_as_built_before(
    fields: dict[str, Any], emails: list[str], phones: list[str], query: bool
) -> Probe:
    """build_probe as it was before names and places could be reused (issue 13)."""
    from realgeeks_sync.app.domain.matching import features
    from realgeeks_sync.app.domain.normalize import normalize_email, normalize_state

    agent_email = normalize_email(fields.get("agent_email"))
    all_emails = dedupe(
        e
        for e in (*(normalize_email(fields.get(k)) for k in ("email", "second_email")), *emails)
        if e
    )
    id_emails = tuple(e for e in all_emails if e != agent_email)
    all_phones = dedupe(
        p[:20]
        for p in (*(features.as_str(fields.get(k)) for k in ("phone", "phone2")), *phones)
        if p
    )
    id_phones = tuple(
        p for p in all_phones if p.startswith("+") and not features.is_placeholder_phone(p)
    )
    first, first_generation = features.split_last(features.first_key(fields.get("first_name")))
    last, generation = features.split_last(features.name_key(fields.get("last_name")))
    generation = generation or first_generation
    line_street, line_city, line_state, line_zip = features.address_parts(fields.get("address"))
    street, line2 = features.street_parts(fields.get("street_address"))
    if street is None:
        street, line2 = features.street_parts(line_street)
    zip5 = features.postcode(features.as_str(fields.get("zip"))) or line_zip
    city = features.place(fields.get("city")) or features.place(line_city)
    state = features.place(fields.get("state")) or features.place(normalize_state(line_state))
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
        phones=tuple(features.phone_digits(p) for p in id_phones),
    )
    loc = zip5 or (f"c:{city_key}" if city_key else "-")
    name_address: list[str] = []
    if first and last and street:
        names = " ".join(sorted((first, last)))
        name_address = [f"{names}|{street}|{loc}"]
    blocks, query_blocks = _blocking_keys_as_built_before(profile, query)
    return Probe(
        source_lead_id=None,
        profile=profile,
        emails=id_emails,
        phones=id_phones,
        name_address=tuple(name_address),
        blocks=blocks,
        query_blocks=query_blocks,
    )


_ODD_VALUES = st.one_of(st.none(), st.just(96813), st.just(True), st.just(1), st.just(1.0))


@given(
    _FIELDS,
    _FIELDS,
    st.fixed_dictionaries({}, optional={"zip": _ODD_VALUES, "first_name": _ODD_VALUES}),
    st.lists(st.sampled_from(["old@x.org", "mary@x.org"]), max_size=2),
    st.lists(st.sampled_from(["+18088172383", "+18088172382"]), max_size=2),
    st.booleans(),
    st.booleans(),
)
def test_a_probe_built_like_another_is_the_probe_built_from_scratch(
    body: dict[str, Any],
    other: dict[str, Any],
    odd: dict[str, Any],
    emails: list[str],
    phones: list[str],
    query: bool,
    first_query: bool,
) -> None:
    # A decision builds the record's probe, then its lead's after and before the change,
    # each like the one before: same names and places, other emails and phones.
    record = normalize_lead(body)
    after = normalize_lead({**other, **body})
    before = {**normalize_lead(other), **odd}
    like = build_probe(record, query=first_query)
    for fields in (record, after, before, record):
        expected = _probe_as_built_before(fields, emails, phones, query)
        assert build_probe(fields, emails=emails, phones=phones, query=query) == expected
        built = build_probe(fields, emails=emails, phones=phones, query=query, like=like)
        assert built == expected
        like = built


def test_a_probe_is_reused_only_for_the_same_text() -> None:
    # 1 == 1.0 == True, but they read differently: only text (and the same object) counts.
    like = build_probe({"zip": 96813, "first_name": "Mary", "last_name": "Stone"})
    for zip_code in (96813.0, "96813", None):
        fields = {"zip": zip_code, "first_name": "Mary", "last_name": "Stone"}
        expected = _probe_as_built_before(fields, [], [], True)
        assert build_probe(fields, like=like) == expected


@given(
    st.one_of(
        st.from_regex(r"\+[0-9]{1,25}", fullmatch=True),
        st.sampled_from(["+15555555555", "+11234567890", "+18088172382", "+1808555"]),
    )
)
def test_placeholder_phones_remembered_or_not_are_the_same(e164: str) -> None:
    from realgeeks_sync.app.domain.matching import features

    assert features.is_placeholder_phone(e164) == features._is_placeholder(e164)
    assert features.is_placeholder_phone(e164) == features._is_placeholder(e164)


_TEXT = st.text(max_size=120)
_FIELD = st.one_of(
    st.none(), st.integers(), _TEXT, st.lists(st.one_of(_TEXT, st.integers(), st.none()))
)


@given(st.dictionaries(st.sampled_from([*Profile._KEYS, "other"]), _FIELD))
def test_a_profile_read_from_json_is_the_profile_its_parts_make(value: dict[str, Any]) -> None:
    # Whatever a damaged stored value holds, from_json reads it as the constructor would
    # read its list parts (text only, cut to length), and round-trips through to_json.
    profile = Profile.from_json(value)
    parts = {
        name: tuple(x[:MAX_STREET_CHARS] for x in value[name] if isinstance(x, str))
        for name in Profile._KEYS
        if isinstance(value.get(name), list)
    }
    if "city_names" not in parts and parts.get("cities"):
        parts["city_names"] = tuple(c.rsplit(" ", 1)[0] for c in parts["cities"])
    built = Profile(**parts)
    assert profile == built and hash(profile) == hash(built)
    assert profile.street_names == built.street_names
    assert Profile.from_json(profile.to_json()) == built
    with pytest.raises(AttributeError):
        profile.first = ("x",)  # type: ignore[misc]


@given(
    st.lists(st.text(max_size=8), max_size=3),
    st.lists(st.text(max_size=8), max_size=3),
)
def test_best_level_is_the_best_over_all_pairs(xs: list[str], ys: list[str]) -> None:
    def level(x: str, y: str) -> int:
        return len(set(x) & set(y))

    expected = max((level(x, y) for x in xs for y in ys), default=-1)
    assert best_level(level, xs, ys) == expected
