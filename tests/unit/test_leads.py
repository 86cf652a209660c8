"""decide_lead: ops, field semantics, stale updates, replays and the lead.v1 event."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from realgeeks_sync.app.domain.leads import (
    LeadDecision,
    LeadInputError,
    decide_lead,
    index_lead,
    lead_event_id,
)
from realgeeks_sync.app.domain.matching import MatcherConfig
from realgeeks_sync.tables.identity import IdentityIndex
from tests.strategies import json_values as any_json

SITE = "5ead6dd1-2cb9-4f80-80fc-5716b05c90ba"
CONFIG = MatcherConfig()
NOW = "2024-06-01T00:00:00Z"
JACK = {
    "action": "created",
    "id": "a27c20af-4497-415d-9e4e-7334dd1d40d2",
    "first_name": "Jack",
    "last_name": "Johnson",
    "email": "Jack@Mail.com",
    "phone": "808-817-2382",
    "phone2": "(808) 555-0199",
    "source": "Website Property Search",
    "role": "Buyer",
    "partner_id": "ffffffffuuuuuuuuuu",
    "activities": [{"type": "visited", "source": "Website Property Search"}],
}
JACK_ID = "a27c20af4497415d9e4e7334dd1d40d2"


def _index() -> IdentityIndex:
    return IdentityIndex({}, {})


def _decide(
    index: IdentityIndex,
    body: dict[str, Any],
    message_id: str,
    *,
    action: str = "created",
    ts: object = None,
    now: object = NOW,
) -> LeadDecision:
    return decide_lead(
        index,
        site_uuid=SITE,
        action=action,
        body=body,
        source_timestamp=ts,
        message_id=message_id,
        now=now,  # type: ignore[arg-type]
        config=CONFIG,
    )


def _state(index: IdentityIndex) -> tuple[Any, Any]:
    return copy.deepcopy(dict(index.index_store)), copy.deepcopy(dict(index.lead_store))  # type: ignore[call-overload]


def test_created_event_has_the_spec_shape() -> None:
    decision = _decide(_index(), JACK, "m1", ts="2015-10-01T06:14:01.597026123Z")
    event = decision.to_event()
    assert set(event) == {
        "schema", "event_id", "site_uuid", "lead_id", "source_lead_id", "op", "match", "lead",
        "changed", "cleared", "conflicts", "source_timestamp", "processed_at",
    }  # fmt: skip
    assert event["schema"] == "lead.v1"
    assert event["op"] == "created"
    assert event["lead_id"] == JACK_ID == event["source_lead_id"]
    assert event["match"] == {"rule": None, "score": None, "lead_id": None}
    assert event["lead"]["email"] == "jack@mail.com"
    assert event["lead"]["phone"] == "+18088172382"
    assert event["lead"]["phone_raw"] == "808-817-2382"
    assert event["lead"]["partner_id"] == "ffffffffuuuuuuuuuu"
    assert event["lead"]["emails"] == ["jack@mail.com"]
    assert event["lead"]["phones"] == ["+18088172382", "+18085550199"]
    assert "activities" not in event["lead"] and "action" not in event["lead"]
    assert event["source_timestamp"] == "2015-10-01T06:14:01.597026123Z"
    assert event["processed_at"] == NOW
    assert "first_name" in event["changed"] and event["cleared"] == []
    json.dumps(event)  # plain JSON


def test_event_id_is_deterministic_from_the_message_id() -> None:
    first = _decide(_index(), JACK, "msg-1").to_event()
    again = _decide(_index(), JACK, "msg-1").to_event()
    other = _decide(_index(), JACK, "msg-2").to_event()
    assert first["event_id"] == again["event_id"] == lead_event_id("msg-1")
    assert other["event_id"] != first["event_id"]
    assert first == again  # same store state, same inputs: the same event


def test_decisions_are_deterministic_over_a_sequence() -> None:
    messages = [
        (JACK, "created", "2024-01-01T00:00:00Z"),
        ({"id": "b2", "first_name": "Jack", "email": "jj@work.com", "phone": "8088172382"},
         "created", "2024-01-01T00:00:01Z"),
        ({"id": JACK_ID, "phone2": ""}, "updated", "2024-01-02T00:00:00Z"),
        ({"id": "c3", "first_name": "Mary", "last_name": "Johnson", "phone": "8088172382"},
         "created", None),
    ]  # fmt: skip
    runs = []
    for _ in range(2):
        index = _index()
        runs.append([
            _decide(index, body, f"m{n}", action=action, ts=ts).to_event()
            for n, (body, action, ts) in enumerate(messages)
        ])  # fmt: skip
    assert runs[0] == runs[1]
    assert [e["op"] for e in runs[0]] == ["created", "merged", "updated", "created"]


def test_update_changes_only_present_fields() -> None:
    index = _index()
    _decide(index, JACK, "m1", ts="2024-01-01T00:00:00Z")
    update = _decide(index, {"id": JACK_ID, "role": "Seller"}, "m2", action="updated",
                     ts="2024-01-02T00:00:00Z")  # fmt: skip
    assert update.op == "updated"
    assert update.match is not None and update.match.rule == "lead_id"
    assert update.changed == ("role",)
    assert update.lead["role"] == "Seller"
    assert update.lead["email"] == "jack@mail.com"
    assert update.lead["first_name"] == "Jack"


def test_empty_string_clears_a_field() -> None:
    index = _index()
    _decide(index, JACK, "m1", ts="2024-01-01T00:00:00Z")
    update = _decide(index, {"id": JACK_ID, "phone2": "", "source": "test"}, "m2",
                     action="updated", ts="2024-01-02T00:00:00Z")  # fmt: skip
    assert update.cleared == ("phone2",)
    assert update.lead["phone2"] is None and update.lead["phone2_raw"] is None
    assert {"phone2", "phone2_raw", "source"} <= set(update.changed)
    # Every phone the lead ever had is kept.
    assert update.lead["phones"] == ["+18088172382", "+18085550199"]


def test_stale_update_is_ignored_and_writes_nothing() -> None:
    index = _index()
    _decide(index, JACK, "m1", ts="2024-01-01T00:00:00.000000002Z")
    before = _state(index)
    stale = _decide(index, {"id": JACK_ID, "first_name": "Old"}, "m2", action="updated",
                    ts="2024-01-01T00:00:00.000000001Z")  # fmt: skip
    assert stale.stale is True
    assert stale.lead["first_name"] == "Jack"
    assert stale.changed == () and stale.cleared == ()
    assert _state(index) == before


def test_update_without_timestamp_applies_but_does_not_move_the_watermark() -> None:
    index = _index()
    _decide(index, JACK, "m1", ts="2024-01-05T00:00:00Z")
    applied = _decide(index, {"id": JACK_ID, "role": "Renter"}, "m2", action="updated")
    assert applied.stale is False and applied.lead["role"] == "Renter"
    garbage = _decide(index, {"id": JACK_ID, "role": "Seller"}, "m3", action="updated",
                      ts="not a time")  # fmt: skip
    assert garbage.stale is False and garbage.source_timestamp is None
    stale = _decide(index, {"id": JACK_ID, "role": "Buyer"}, "m4", action="updated",
                    ts="2024-01-04T00:00:00Z")  # fmt: skip
    assert stale.stale is True


def test_update_for_an_unknown_lead_creates_it() -> None:
    decision = _decide(_index(), {"id": "NEW-ID-1", "email": "x@y.com", "phone2": ""}, "m1",
                       action="updated", ts="2024-01-01T00:00:00Z")  # fmt: skip
    assert decision.op == "created"
    assert decision.lead_id == "newid1"
    assert decision.cleared == ("phone2",)


def test_merge_keeps_every_identifier_and_aliases_the_new_id() -> None:
    index = _index()
    _decide(index, JACK, "m1")
    merged = _decide(index, {"id": "B2", "first_name": "Jack", "last_name": "Johnson",
                             "email": "jj@work.com", "phone": "+1 808 817 2382"}, "m2")  # fmt: skip
    assert merged.op == "merged"
    assert merged.lead_id == JACK_ID and merged.source_lead_id == "b2"
    assert merged.match is not None and merged.match.rule == "phone"
    assert merged.lead["emails"] == ["jack@mail.com", "jj@work.com"]
    assert merged.lead["source_lead_ids"] == [JACK_ID, "b2"]
    later = _decide(index, {"id": "b2", "role": "Seller"}, "m3", action="updated")
    assert later.op == "updated" and later.lead_id == JACK_ID
    by_old_email = _decide(index, {"id": "c3", "email": "JACK@mail.com"}, "m4")
    assert by_old_email.op == "merged" and by_old_email.lead_id == JACK_ID


def test_created_never_clears_what_the_lead_has() -> None:
    index = _index()
    _decide(index, JACK, "m1")
    merged = _decide(index, {"id": "b2", "first_name": "Jack", "email": "jack@mail.com",
                             "phone": "", "role": "Seller"}, "m2")  # fmt: skip
    assert merged.op == "merged"
    assert merged.lead["phone"] == "+18088172382"
    assert merged.lead["role"] == "Seller"
    assert merged.cleared == ()


def test_late_created_only_fills_gaps() -> None:
    index = _index()
    _decide(index, {"id": JACK_ID, "role": "Seller"}, "m1", action="updated",
            ts="2024-01-02T00:00:00Z")  # fmt: skip
    late = _decide(index, JACK, "m0", ts="2024-01-01T00:00:00Z")
    assert late.op == "updated" and late.stale is False
    assert late.lead["role"] == "Seller"  # the newer update wins
    assert late.lead["email"] == "jack@mail.com"  # the gap is filled
    assert "role" not in late.changed and "email" in late.changed


def test_replayed_message_repeats_its_decision_and_writes_nothing() -> None:
    index = _index()
    first = _decide(index, JACK, "m1", ts="2024-01-01T00:00:00Z")
    before = _state(index)
    again = _decide(index, JACK, "m1", ts="2024-01-01T00:00:00Z", now="2024-06-02T00:00:00Z")
    assert again.replayed is True
    assert again.to_event() == first.to_event()
    assert _state(index) == before


def test_body_without_an_id_gets_a_stable_one() -> None:
    body = {"email": "nobody@mail.com"}
    first = _decide(_index(), body, "m1")
    again = _decide(_index(), body, "m1")
    assert first.lead_id == again.lead_id and len(first.lead_id) == 32
    assert first.source_lead_id is None


def test_now_may_be_an_aware_datetime() -> None:
    decision = _decide(_index(), JACK, "m1", now=datetime(2024, 6, 1, tzinfo=UTC))
    assert decision.processed_at == NOW


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"action": "activity_added"}, "not a lead action"),
        ({"now": datetime(2024, 6, 1)}, "timezone-aware"),
        ({"now": "soon"}, "not a timestamp"),
    ],
)
def test_bad_inputs_raise_lead_input_error(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(LeadInputError, match=message):
        _decide(_index(), JACK, "m1", **kwargs)


def test_missing_site_or_non_object_body_raise() -> None:
    with pytest.raises(LeadInputError):
        decide_lead(_index(), site_uuid=None, action="created", body=JACK, source_timestamp=None,
                    message_id="m", now=NOW, config=CONFIG)  # fmt: skip
    with pytest.raises(LeadInputError):
        decide_lead(_index(), site_uuid=SITE, action="created", body=[1],  # type: ignore[arg-type]
                    source_timestamp=None, message_id="m", now=NOW, config=CONFIG)  # fmt: skip


json_values = any_json(text=12, keys=5, items=2, entries=2, leaves=4, floats="finite")
KEYS = ["id", "email", "second_email", "phone", "phone2", "first_name", "last_name",
        "street_address", "address", "city", "state", "zip", "agent_email", "created", "x"]  # fmt: skip


@settings(max_examples=40, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["created", "updated"]),
                          st.dictionaries(st.sampled_from(KEYS), json_values, max_size=6)),
                max_size=4))  # fmt: skip
def test_any_json_body_is_decided_without_crashing(
    messages: list[tuple[str, dict[str, Any]]],
) -> None:
    index = _index()
    for n, (action, body) in enumerate(messages):
        decision = _decide(index, body, f"m{n}", action=action)
        json.dumps(decision.to_event())
    for value in [*dict(index.index_store).values(), *dict(index.lead_store).values()]:  # type: ignore[call-overload]
        json.dumps(value, allow_nan=False)


_PERSON_TEXT = st.one_of(
    st.text(max_size=30),
    st.sampled_from(
        ["Jack", "jack@mail.com", "mailto:J@x.io", "808-817-2382", "+18088172382", "96813",
         "12 N Main St", "Honolulu"]
    ),
)  # fmt: skip

_PERSON_FIELDS = (
    "id",
    "first_name",
    "last_name",
    "email",
    "second_email",
    "agent_email",
    "phone",
    "phone2",
    "street_address",
    "address",
    "city",
    "state",
    "zip",
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.fixed_dictionaries(
        {},
        optional={key: _PERSON_TEXT for key in _PERSON_FIELDS},
    )
)
def test_a_new_lead_is_indexed_as_its_snapshot_would_be(body: dict[str, str]) -> None:
    # decide_lead hands its probe to index_lead for a new lead instead of building it again;
    # the keys must be exactly those an index rebuilt from the stored snapshot gets.
    index = _index()
    decision = _decide(index, body, "m-1")
    snapshot = index.lead(SITE, decision.lead_id)
    assert snapshot is not None
    rebuilt = _index()
    prefix = IdentityIndex.key(SITE, "alias", "")
    aliases = [k[len(prefix) :] for k in index.index_store if k.startswith(prefix)]
    index_lead(rebuilt, SITE, snapshot, CONFIG, aliases=aliases)
    assert _state(rebuilt) == _state(index)


def _fields_applied_key_by_key(
    old: dict[str, Any],
    fields: dict[str, Any],
    *,
    blank: set[str],
    clears: bool,
    fill_only: bool,
    is_new: bool,
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """leads._apply_fields as it was before a lead without fields took a shortcut."""
    from realgeeks_sync.app.domain.leads import _owner

    out = dict(old)
    changed: set[str] = set()
    skipped = set()
    if not clears and not is_new:
        skipped = {k for k in blank if old.get(k) is not None}
    for key, value in fields.items():
        owner = _owner(key, fields)
        if owner in skipped:
            continue
        if fill_only and old.get(owner) is not None:
            continue
        if out.get(key) != value:
            changed.add(key)
        out[key] = value
        raw = f"{key}_raw"
        if raw in out and raw not in fields and key in fields and owner == key:
            del out[raw]
            changed.add(raw)
    return out, tuple(sorted(changed))


_FIELD_NAMES = st.sampled_from(["phone", "phone_raw", "phone_valid", "email", "email_raw", "city"])
_FIELD_MAPS = st.dictionaries(_FIELD_NAMES, st.one_of(st.none(), st.just(""), st.just("x")))


@given(
    st.one_of(st.just({}), _FIELD_MAPS),
    _FIELD_MAPS,
    st.sets(_FIELD_NAMES),
    st.booleans(),
    st.booleans(),
    st.booleans(),
)
def test_fields_applied_as_key_by_key(
    old: dict[str, Any],
    fields: dict[str, Any],
    blank: set[str],
    clears: bool,
    fill_only: bool,
    is_new: bool,
) -> None:
    # A new lead (no fields yet) takes a shortcut: the same fields, order and changes.
    from realgeeks_sync.app.domain.leads import _apply_fields

    options: dict[str, Any] = {
        "blank": blank,
        "clears": clears,
        "fill_only": fill_only,
        "is_new": is_new,
    }
    got = _apply_fields(old, fields, **options)
    expected = _fields_applied_key_by_key(old, fields, **options)
    assert got == expected
    assert list(got[0]) == list(expected[0])  # key order too: the event's `lead` keeps it
