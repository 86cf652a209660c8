"""The fitted identity model: comparison levels, the model file, blocking keys, bounded cost,
and a FEBRL1 regression floor (no broker)."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import realgeeks_sync.app.domain.matching.comparisons as comparisons
import realgeeks_sync.app.domain.matching.names as names
import realgeeks_sync.app.domain.matching.scoring as scoring
from ops.bench_dedup import evaluate, records_of
from ops.fit_identity_model import fit
from realgeeks_sync.agents.normalize_leads import matcher_config
from realgeeks_sync.app.core.errors import ConfigError
from realgeeks_sync.app.domain.leads import decide_lead
from realgeeks_sync.app.domain.matching import (
    BLOCKING,
    COMPARISONS,
    DEFAULT_MODEL_PATH,
    IdentityModel,
    MatcherConfig,
    ModelFileError,
    Profile,
    build_probe,
    resolve,
    score_pair,
)
from realgeeks_sync.app.domain.matching.comparisons import (
    CITY,
    EMAIL,
    FIRST_NAME,
    HOUSE,
    LAST_NAME,
    LINE2,
    PHONE,
    POSTCODE,
    STREET,
)
from realgeeks_sync.app.domain.normalize import normalize_lead
from realgeeks_sync.app.main import load_settings
from realgeeks_sync.tables.identity import IdentityIndex

MODEL = IdentityModel.load(DEFAULT_MODEL_PATH)


def _profile(**body: Any) -> Profile:
    return build_probe(normalize_lead(body)).profile


# --- each comparison level ------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "level"),
    [
        ("robert", "robert", "exact"),
        ("bob", "robert", "nickname"),
        ("jonathon", "jonathan", "jw92"),
        ("lachlnn", "lachlan", "jw92"),
        ("stephen", "stefan", "phonetic"),
        ("makana", "makoa", "jw80"),
        ("j", "jack", "initial"),
        ("mary", "susan", "else"),
    ],
)
def test_first_name_levels(a: str, b: str, level: str) -> None:
    assert FIRST_NAME.level(a, b) == level


@pytest.mark.parametrize(
    ("a", "b", "level"),
    [
        ("nakamura", "nakamura", "exact"),
        ("nakamura", "nakamure", "jw92"),
        ("smith jones", "smith", "jw92"),
        ("meyer", "maier", "phonetic"),
        ("nakamura", "nakashima", "jw80"),
        ("johnson", "nakamura", "else"),
    ],
)
def test_last_name_levels(a: str, b: str, level: str) -> None:
    assert LAST_NAME.level(a, b) == level


def test_address_levels() -> None:
    assert HOUSE.level("1234", "1234") == "exact"
    assert HOUSE.level("1234", "1243") == "osa1"
    assert HOUSE.level("12", "907") == "else"
    assert STREET.level("kapiolani blvd", "kapiolani blvd") == "exact"
    assert STREET.level("kapiolani blvd", "kapiolnai blvd") == "jw92"
    assert STREET.level("rosewood garden curtis pl", "curtis pl rosewood garden") == "tokens"
    assert STREET.level("kapiolani blvd", "kapahulu blvd") == "jw80"
    assert STREET.level("main st", "kalakaua ave") == "else"
    assert LINE2.level("unit 4", "unit 4") == "exact"
    assert LINE2.level("rosetta village", "rosetta vilage") == "jw92"
    assert LINE2.level("rosewood garden unit 4", "unit 4 rosewood garden") == "tokens"
    assert CITY.level("honolulu", "honolulu") == "exact"
    assert CITY.level("parramatta", "parramatat") == "jw92"
    assert CITY.level("kailua kona", "kona kailua") == "tokens"
    assert CITY.level("waipahu", "waiahole") == "jw80"
    assert CITY.level("honolulu", "honokaa") == "else"
    assert LINE2.level("rosetta village", "rosetta heights") == "jw80"
    assert LINE2.level("unit 4 tower b", "tower b") == "else"
    assert POSTCODE.level("96813", "96813") == "exact"
    assert POSTCODE.level("2464", "2446") == "osa1"
    assert POSTCODE.level("96813", "78701") == "else"


def test_contact_levels() -> None:
    assert PHONE.level("18088172382", "18088172382") == "exact"
    assert PHONE.level("18088172382", "18088172383") == "osa1"
    assert PHONE.level("18088172382", "15128172382") == "last7"
    assert PHONE.level("18088172382", "14155550199") == "else"
    assert EMAIL.level("mary@mail.com", "mary@mail.com") == "exact"
    assert EMAIL.level("mary@gmail.com", "mary@gmial.com") == "domain_typo"
    # Two people of one name pick look-alike mailboxes: no evidence beyond the names.
    assert EMAIL.level("mary.jones@mail.com", "maryjones@mail.com") == "else"


def test_every_level_of_the_code_has_fitted_weights() -> None:
    for comparison in COMPARISONS:
        for level in comparison.levels:
            assert MODEL.bits(comparison, level) == pytest.approx(
                MODEL.weights[comparison.name].bits[level]
            )
        assert MODEL.bits(comparison, None) == 0.0  # a missing value weighs nothing
    first = next(c for c in COMPARISONS if c.name == "first_name")
    # Agreement is evidence for, disagreement against.
    assert MODEL.bits(first, "exact") > 0 > MODEL.bits(first, "else")


def test_the_comparisons_are_one_table_of_named_levels_with_their_weights() -> None:
    for comparison in COMPARISONS:
        names_ = [level.name for level in comparison.table]
        assert comparison.levels == tuple(names_)
        assert names_[0] == "exact" and names_[-1] == "else"
        assert len(set(names_)) == len(names_)
    rows = MODEL.table()
    assert [(r.comparison, r.level) for r in rows] == [
        (c.name, level) for c in COMPARISONS for level in c.levels
    ]
    for row in rows:
        assert row.bits == pytest.approx(math.log2(row.m / row.u))
        assert MODEL.weights[row.comparison].bits[row.level] == row.bits


def test_scoring_counts_every_comparison_of_the_table_once() -> None:
    paired = [c.name for pair in scoring.READ_BOTH_WAYS for c in pair]
    alone = [c.name for c in scoring._ON_THEIR_OWN]
    address = [c.name for c in scoring.ADDRESS]
    counted = set(paired) | set(alone) | set(address)
    assert counted == {c.name for c in COMPARISONS}
    assert not set(alone) & (set(paired) | set(address))
    # One comparison's weight moves the score by exactly its level's bits.
    a = _profile(first_name="Lachlan", last_name="Reid", city="Yagoona", zip="2464")
    b = replace(a, city_names=("parramatta",))
    city = MODEL.weights["city"]
    exact_city = MODEL.bits(CITY, "exact", "yagoona")
    assert scoring.match_bits(MODEL, a, a) - scoring.match_bits(MODEL, a, b) == pytest.approx(
        exact_city - city.bits["else"]
    )


def test_term_frequency_makes_a_common_name_weaker_evidence() -> None:
    last = next(c for c in COMPARISONS if c.name == "last_name")
    table = MODEL.weights["last_name"].tf
    common = max(table, key=lambda name: table[name])
    assert MODEL.bits(last, "exact", common) < MODEL.bits(last, "exact", "zzyzxqwv")


@pytest.mark.parametrize(
    ("comparison", "body", "rare"),
    [
        (STREET, {"street_address": "5 {}"}, "zzyzx qwv st"),
        (CITY, {"city": "{}"}, "zzyzxqwv"),
    ],
    ids=["street", "city"],
)
def test_term_frequency_makes_a_common_street_or_city_weaker_evidence(
    comparison: comparisons.Comparison, body: dict[str, str], rare: str
) -> None:
    table = MODEL.weights[comparison.name].tf
    common = max(table, key=lambda value: table[value])
    assert MODEL.bits(comparison, "exact", common) < MODEL.bits(comparison, "exact", rare)
    # And scoring reads it: two records sharing the common value weigh less than two
    # sharing a rare one, by just the difference of the two exact weights.
    person = {"first_name": "Lachlan", "last_name": "Reid", "zip": "2464"}

    def shared(value: str) -> float:
        fields = {key: pattern.format(value) for key, pattern in body.items()}
        a = _profile(**person, **fields)
        assert getattr(a, comparison.feature) == (value,)
        return scoring.match_bits(MODEL, a, replace(a))

    assert shared(common) - shared(rare) == pytest.approx(
        MODEL.bits(comparison, "exact", common) - MODEL.bits(comparison, "exact", rare)
    )


# --- the model file ---------------------------------------------------------------------


def test_model_file_round_trip(tmp_path: Path) -> None:
    document = json.loads(DEFAULT_MODEL_PATH.read_text())
    copy = tmp_path / "model.json"
    copy.write_text(json.dumps(document))
    again = IdentityModel.load(copy)
    assert again.prior_bits == MODEL.prior_bits
    for comparison in COMPARISONS:
        assert again.weights[comparison.name].bits == MODEL.weights[comparison.name].bits


def test_a_model_without_a_level_the_code_needs_is_refused(tmp_path: Path) -> None:
    document = json.loads(DEFAULT_MODEL_PATH.read_text())
    del document["comparisons"]["street"]["levels"]["tokens"]
    with pytest.raises(ModelFileError, match=r"street\.tokens"):
        IdentityModel.from_json(document)
    with pytest.raises(ModelFileError, match=r"identity_model\.v1"):
        IdentityModel.from_json({"schema": "something else"})
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(document))
    env = {"RGSYNC_REALGEEKS_SECRETS": "s", "RGSYNC_IDENTITY_MODEL": str(broken)}
    with pytest.raises(ConfigError, match="RGSYNC_IDENTITY_MODEL"):
        load_settings(env)


def test_the_agent_scores_with_the_model_file_rgsync_identity_model_names(
    tmp_path: Path,
) -> None:
    """normalize_leads builds its matcher from settings (matcher_config): the file
    RGSYNC_IDENTITY_MODEL names decides a fuzzy pair, not the shipped one."""
    document = json.loads(DEFAULT_MODEL_PATH.read_text())
    document["prior_bits"] -= 40.0  # a sceptic: no fuzzy pair reaches the threshold now
    sceptic = tmp_path / "sceptic.json"
    sceptic.write_text(json.dumps(document))
    site = "5ead6dd1-2cb9-4f80-80fc-5716b05c90ba"
    index = IdentityIndex({}, {})
    decide_lead(index, site_uuid=site, action="created", message_id="m1", source_timestamp=None,
                body={"id": "a1", "first_name": "Robert", "last_name": "Kowalski",
                      "street_address": "12 Kapiolani Blvd Apt 4", "zip": "96813"},
                now="2024-06-01T00:00:00Z", config=MatcherConfig())  # fmt: skip
    body = {"id": "b2", "first_name": "Bob", "last_name": "Kowalsky",
            "street_address": "12 Kapiolani Blvd #4", "zip": "96813"}  # fmt: skip

    env = {"RGSYNC_REALGEEKS_SECRETS": "s"}
    shipped = matcher_config(load_settings(env))
    refitted = matcher_config(load_settings({**env, "RGSYNC_IDENTITY_MODEL": str(sceptic)}))
    assert refitted.model.prior_bits == pytest.approx(MODEL.prior_bits - 40.0)

    def rule_with(config: MatcherConfig) -> str | None:
        probe = build_probe(normalize_lead(body), source_lead_id="b2")
        match = resolve(index, site, probe, config).match
        return match.rule if match else None

    assert rule_with(shipped) == "fuzzy"  # the shipped model merges Bob Kowalsky into a1
    assert rule_with(refitted) is None


def test_fit_writes_a_model_the_agent_loads(tmp_path: Path) -> None:
    people = [("Mary", "Jones"), ("Kimo", "Akana"), ("Lachlan", "Reid"), ("Ava", "Zilm")]
    bodies = []
    for n, (first, last) in enumerate(people * 10):
        house = 10 + n // len(people)
        bodies.append({"first_name": first, "last_name": last, "zip": f"{2000 + n % 4}",
                       "street_address": f"{house} Main St", "city": "Ryde"})  # fmt: skip
        bodies.append({"first_name": first[:-1] + "e", "last_name": last, "zip": f"{2000 + n % 4}",
                       "street_address": f"{house} Main Street", "city": "Ryde"})  # fmt: skip
    document = fit({"tiny": bodies}, random_pairs=2000, iterations=20)
    path = tmp_path / "fitted.json"
    path.write_text(json.dumps(document))
    model = IdentityModel.load(path)
    assert set(model.weights) == {c.name for c in COMPARISONS}
    assert document["fitted"]["on"] == {"tiny": len(bodies)}


# --- blocking keys survive typos ------------------------------------------------------


BASE = {"first_name": "Lachlan", "last_name": "Reid", "street_address": "5 Carrington Road",
        "city": "Yagoona", "zip": "2464"}  # fmt: skip


@pytest.mark.parametrize(
    "change",
    [
        {"last_name": "Riedd"},  # surname typo
        {"zip": "2446"},  # postcode digits swapped
        {"first_name": "Lachlnn", "zip": "2446"},  # first-name typo and a wrong postcode
        {"street_address": "15 Carrington Road"},  # house number typo
        {"first_name": "Reid", "last_name": "Lachlan"},  # names in each other's boxes
        {"first_name": "", "zip": "2446"},  # no first name and a wrong postcode
        {"last_name": "Rei d", "street_address": "5 Carringtn Rd", "city": "Yagooa"},
    ],
)
def test_blocking_keys_survive_typos(change: dict[str, str]) -> None:
    original = build_probe(normalize_lead(BASE))
    typed = build_probe(normalize_lead({**BASE, **change}))
    assert set(original.blocks) & set(typed.query_blocks)


def test_blocking_rules_are_named_values() -> None:
    assert [rule.name for rule in BLOCKING] == [
        "surname_postcode",
        "initial_house",
        "street_postcode",
        "names",
        "surname_city",
        "first_postcode",
        "street_city",
        "contact",
    ]


# --- hostile sizes (issue 10): bounded input, bounded caches --------------------------


def test_a_300000_character_name_is_cut_before_any_comparison(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    longest: list[int] = [0]

    def spy(real: Any) -> Any:
        def wrapper(a: str, b: str, *args: Any, **kwargs: Any) -> Any:
            longest[0] = max(longest[0], len(a), len(b))
            return real(a, b, *args, **kwargs)

        return wrapper

    for module in (names, comparisons):
        for cls in ("OSA", "JaroWinkler"):
            target = getattr(module, cls)
            for fn in ("distance", "normalized_similarity"):
                if hasattr(target, fn):
                    monkeypatch.setattr(target, fn, spy(getattr(target, fn)))
    for comparison in COMPARISONS:
        comparison.cache_clear()
    names._first_name_level.cache_clear()
    huge = "Jonathan" + "a" * 300_000
    probe = _profile(first_name=huge, last_name=huge, street_address="12 " + huge,
                     city=huge, zip="9" * 300_000)  # fmt: skip
    assert max(len(v) for vs in probe.to_json().values() for v in vs) <= 96
    other = _profile(first_name="Jonathan" + "b" * 50, last_name="Smith",
                     street_address="12 Main St", city="Honolulu")  # fmt: skip
    score_pair(probe, other)  # scored or vetoed, the comparisons saw short strings only
    assert 0 < longest[0] <= names.MAX_NAME_CHARS


def test_level_caches_are_bounded_in_entries_and_key_length() -> None:
    caches = [*(c for c in COMPARISONS if c.cut), names._first_name_level,
              names._last_name_level, names._soundex]  # fmt: skip
    for cached in caches:
        assert cached.cache_info().maxsize <= 16384
    # Every cached function is reached only through a wrapper that cuts its arguments
    # (the spy test above): 16384 keys of at most 2 x 64 characters each.
    names._soundex.cache_clear()
    names.soundex("x" * 100_000)
    assert names._soundex.cache_info().currsize == 1


# --- the benchmark floor --------------------------------------------------------------


def test_febrl1_names_and_address_floor() -> None:
    """FEBRL1 through the agent's code path: measured P 1.000 (485 of 485), R 0.970,
    F1 0.985; the floors are the issue's aims (P 0.995: at most two wrong pairs)."""
    result = evaluate("febrl1", records_of("febrl1"), MatcherConfig())
    assert result["precision"] >= 0.995
    assert result["recall"] >= 0.94
    assert result["f1"] >= 0.96
    assert result["blocking_recall"] >= 0.95


def test_threshold_one_switches_fuzzy_matching_off() -> None:
    a = _profile(first_name="Lachlan", last_name="Reid", street_address="5 Carrington Rd",
                 zip="2464", city="Yagoona")  # fmt: skip
    scored = score_pair(a, replace(a))
    assert scored is not None and scored[0] < 1.0


@settings(max_examples=150, deadline=None)
@given(
    st.fixed_dictionaries(
        {},
        optional={
            key: st.text(max_size=400)
            for key in (
                "first_name",
                "last_name",
                "street_address",
                "address",
                "city",
                "state",
                "zip",
            )
        },
    )
)
def test_any_text_gives_a_bounded_profile_that_scores(body: dict[str, str]) -> None:
    probe = build_probe(normalize_lead(body))
    values = [v for vs in probe.profile.to_json().values() for v in vs]
    assert all(len(v) <= 96 for v in values)
    assert all(len(key) <= 400 for key in (*probe.blocks, *probe.query_blocks))
    scored = score_pair(probe.profile, probe.profile)
    assert scored is None or 0.0 < scored[0] < 1.0


_LEAD_TEXT = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        ["Mary", "O'Neil", "12 N Main St", "96813", "Honolulu", "HI", "+1 808 555 0100"]
    ),
)

_LEAD_FIELDS = (
    "first_name",
    "last_name",
    "street_address",
    "address",
    "city",
    "state",
    "zip",
    "email",
    "second_email",
    "agent_email",
    "phone",
    "phone2",
)


@settings(max_examples=200, deadline=None)
@given(
    st.fixed_dictionaries(
        {},
        optional={key: _LEAD_TEXT for key in _LEAD_FIELDS},
    ),
    st.lists(st.sampled_from(["96813", "c:honolulu hi", "cz:honolulu hi", "-"]), max_size=3),
)
def test_rules_not_located_ignore_the_locations(body: dict[str, str], locs: list[str]) -> None:
    # blocking_keys builds such a rule's keys once for filing and lookup.
    profile = build_probe(normalize_lead(body)).profile
    for rule in BLOCKING:
        if not rule.located:
            assert rule.keys(profile, locs) == rule.keys(profile, ["12345", "c:x y"])
