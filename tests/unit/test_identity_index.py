"""IdentityIndex: namespaced keys, bounded candidate lists, aliases, write-back values."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, rule

from realgeeks_sync.app.domain.leads import decide_lead
from realgeeks_sync.app.domain.matching import MatcherConfig
from realgeeks_sync.tables import identity
from realgeeks_sync.tables.identity import IdentityIndex, LeadSnapshot

SITE = "5ead6dd1-2cb9-4f80-80fc-5716b05c90ba"
CONFIG = MatcherConfig()


class JsonStore:
    """Keeps values as JSON text, like RocksDB: changing a value read back changes nothing."""

    def __init__(self) -> None:
        self.data: dict[str, str] = {}
        self.writes = 0

    def get(self, key: str, default: Any = None) -> Any:
        raw = self.data.get(key)
        return default if raw is None else json.loads(raw)

    def __setitem__(self, key: str, value: Any) -> None:
        self.data[key] = json.dumps(value, allow_nan=False)  # JSON-safe or it raises
        self.writes += 1

    def __delitem__(self, key: str) -> None:
        del self.data[key]

    def __contains__(self, key: object) -> bool:
        return key in self.data


class SharedObjectStore(dict[str, Any]):
    """Hands out the stored object itself and remembers what was assigned.

    `mutated()` lists keys whose object changed after assignment: a write that skipped
    `store[key] = value` (lost in Faust, where only assignments persist).
    """

    def __init__(self) -> None:
        super().__init__()
        self.assigned: dict[str, Any] = {}

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, value)
        self.assigned[key] = copy.deepcopy(value)

    def mutated(self) -> list[str]:
        return [key for key, value in self.items() if value != self.assigned[key]]


def _decide(index: IdentityIndex, body: dict[str, Any], message_id: str, **kw: Any) -> Any:
    return decide_lead(
        index,
        site_uuid=kw.pop("site", SITE),
        action=kw.pop("action", "created"),
        body=body,
        source_timestamp=kw.pop("ts", None),
        message_id=message_id,
        now="2024-06-01T00:00:00Z",
        config=CONFIG,
    )


def test_candidate_list_is_bounded_and_evicts_the_oldest() -> None:
    index = IdentityIndex(JsonStore(), JsonStore())
    for n in range(5):
        assert index.add_candidate(SITE, "n|S530|j|96813", f"lead{n}", cap=3)
    assert index.candidates(SITE, "n|S530|j|96813") == ["lead2", "lead3", "lead4"]


def test_candidate_already_listed_is_not_rewritten() -> None:
    store = JsonStore()
    index = IdentityIndex(store, JsonStore())
    index.add_candidate(SITE, "p|8172382", "a", cap=3)
    index.add_candidate(SITE, "p|8172382", "b", cap=3)
    writes = store.writes
    assert index.add_candidate(SITE, "p|8172382", "a", cap=3) is False
    assert store.writes == writes
    assert index.candidates(SITE, "p|8172382") == ["a", "b"]


def test_cap_must_be_positive() -> None:
    index = IdentityIndex({}, {})
    with pytest.raises(ValueError, match="cap"):
        index.add_candidate(SITE, "x", "a", cap=0)


def test_keys_are_namespaced_per_site() -> None:
    store: dict[str, Any] = {}
    index = IdentityIndex(store, {})
    index.add_lead_for("site-a", "email", "jack@mail.com", "lead1", cap=8)
    assert index.leads_for("site-a", "email", "jack@mail.com") == ["lead1"]
    assert index.leads_for("site-b", "email", "jack@mail.com") == []
    assert "site-a|email|jack@mail.com" in store


def test_a_bar_in_the_site_cannot_forge_another_sites_key() -> None:
    store: dict[str, Any] = {}
    index = IdentityIndex(store, {})
    index.add_alias("a|alias|x", "y", "evil")
    assert index.canonical_id("a", "x|alias|y") is None
    assert index.canonical_id("a|alias|x", "y") == "evil"


def test_alias_never_moves_once_set() -> None:
    index = IdentityIndex({}, {})
    assert index.add_alias(SITE, "b27c", "a27c") is True
    assert index.add_alias(SITE, "b27c", "zzzz") is False
    assert index.canonical_id(SITE, "b27c") == "a27c"


def test_alias_resolves_with_and_without_dashes() -> None:
    index = IdentityIndex(JsonStore(), JsonStore())
    dashed = "A27C20AF-4497-415D-9E4E-7334DD1D40D2"
    _decide(index, {"id": dashed, "email": "jack@mail.com"}, "m1")
    assert index.canonical_id(SITE, "a27c20af4497415d9e4e7334dd1d40d2") == (
        "a27c20af4497415d9e4e7334dd1d40d2"
    )
    update = _decide(
        index, {"id": "a27c20af4497415d9e4e7334dd1d40d2", "role": "Seller"}, "m2",
        action="updated",
    )  # fmt: skip
    assert update.op == "updated"
    assert update.lead_id == "a27c20af4497415d9e4e7334dd1d40d2"


def test_snapshot_keeps_every_email_and_phone_after_a_merge() -> None:
    index = IdentityIndex(JsonStore(), JsonStore())
    _decide(index, {"id": "a1", "first_name": "Jack", "email": "jack@mail.com",
                    "phone": "808-817-2382"}, "m1")  # fmt: skip
    # Same phone, new email; then that new email with a new phone.
    merged = _decide(index, {"id": "b2", "first_name": "Jack", "email": "jj@work.com",
                             "phone": "(808) 817-2382"}, "m2")  # fmt: skip
    third = _decide(index, {"id": "c3", "first_name": "Jack", "email": "jj@work.com",
                            "phone": "+1 808 222 3333"}, "m3")  # fmt: skip
    assert (merged.op, merged.match.rule if merged.match else None) == ("merged", "phone")
    assert (third.op, third.match.rule if third.match else None) == ("merged", "email")
    snapshot = index.lead(SITE, "a1")
    assert snapshot is not None
    assert snapshot.emails == ("jack@mail.com", "jj@work.com")
    assert snapshot.phones == ("+18088172382", "+18082223333")
    assert snapshot.fields["email"] == "jj@work.com"  # the newest value is the field
    assert snapshot.source_lead_ids == ("a1", "b2", "c3")
    # Every identifier still resolves to the canonical lead.
    for email in snapshot.emails:
        assert index.leads_for(SITE, "email", email) == ["a1"]
    for phone in snapshot.phones:
        assert index.leads_for(SITE, "phone", phone) == ["a1"]
    for source in ("a1", "b2", "c3"):
        assert index.canonical_id(SITE, source) == "a1"


def test_values_are_written_back_never_mutated_in_place() -> None:
    index_store, lead_store = SharedObjectStore(), SharedObjectStore()
    index = IdentityIndex(index_store, lead_store)
    _decide(index, {"id": "a1", "first_name": "Jack", "last_name": "Johnson",
                    "email": "jack@mail.com", "phone": "808-817-2382",
                    "street_address": "1 Main St", "zip": "96813"}, "m1")  # fmt: skip
    _decide(index, {"id": "b2", "first_name": "Jack", "last_name": "Johnson",
                    "email": "jj@work.com", "phone": "808-817-2382"}, "m2")  # fmt: skip
    _decide(index, {"id": "a1", "phone2": "808-555-0199", "email": ""}, "m3",
            action="updated", ts="2024-01-01T00:00:00Z")  # fmt: skip
    _decide(index, {"id": "c3", "first_name": "Mary", "last_name": "Johnson",
                    "phone": "808-817-2382", "street_address": "1 Main St",
                    "zip": "96813"}, "m4")  # fmt: skip
    assert index_store.mutated() == []
    assert lead_store.mutated() == []
    # The same sequence over JSON-text stores (reads are copies) ends in the same state.
    json_index, json_leads = JsonStore(), JsonStore()
    again = IdentityIndex(json_index, json_leads)
    for body, message, extra in [
        ({"id": "a1", "first_name": "Jack", "last_name": "Johnson", "email": "jack@mail.com",
          "phone": "808-817-2382", "street_address": "1 Main St", "zip": "96813"}, "m1", {}),
        ({"id": "b2", "first_name": "Jack", "last_name": "Johnson", "email": "jj@work.com",
          "phone": "808-817-2382"}, "m2", {}),
        ({"id": "a1", "phone2": "808-555-0199", "email": ""}, "m3",
         {"action": "updated", "ts": "2024-01-01T00:00:00Z"}),
        ({"id": "c3", "first_name": "Mary", "last_name": "Johnson", "phone": "808-817-2382",
          "street_address": "1 Main St", "zip": "96813"}, "m4", {}),
    ]:  # fmt: skip
        _decide(again, body, message, **extra)
    assert {k: json.loads(v) for k, v in json_index.data.items()} == dict(index_store)
    assert {k: json.loads(v) for k, v in json_leads.data.items()} == dict(lead_store)


def test_snapshot_json_round_trip_and_damaged_values() -> None:
    snapshot = LeadSnapshot(
        lead_id="a1",
        source_lead_ids=("a1", "b2"),
        emails=("jack@mail.com",),
        phones=("+18088172382",),
        fields={"first_name": "Jack", "tags": ["x"]},
        source_timestamps={"a1": "2024-01-01T00:00:00Z"},
        last_source_timestamp="2024-01-01T00:00:00Z",
        created_at="2024-06-01T00:00:00Z",
        updated_at="2024-06-01T00:00:00Z",
        recent=({"message_id": "m1"},),
    )
    assert LeadSnapshot.from_json(json.loads(json.dumps(snapshot.to_json()))) == snapshot
    assert LeadSnapshot.from_json(None) is None
    assert LeadSnapshot.from_json({"lead_id": 5}) is None
    damaged = LeadSnapshot.from_json({"lead_id": "a1", "emails": "x", "fields": [1],
                                      "recent": {"a": 1}, "source_timestamps": {"a": 1}})  # fmt: skip
    assert damaged == LeadSnapshot(lead_id="a1")


def test_to_json_gives_new_containers() -> None:
    snapshot = LeadSnapshot(lead_id="a1", fields={"first_name": "Jack"})
    first, second = snapshot.to_json(), snapshot.to_json()
    first["fields"]["first_name"] = "changed"
    assert second["fields"]["first_name"] == "Jack"
    assert snapshot.fields["first_name"] == "Jack"


def test_update_that_touches_no_identifier_writes_no_index_key() -> None:
    index_store = JsonStore()
    index = IdentityIndex(index_store, JsonStore())
    _decide(index, {"id": "a1", "first_name": "Jack", "last_name": "Johnson",
                    "email": "jack@mail.com", "phone": "808-817-2382"}, "m1")  # fmt: skip
    writes = index_store.writes
    _decide(index, {"id": "a1", "role": "Seller"}, "m2", action="updated")
    assert index_store.writes == writes
    _decide(index, {"id": "a1", "phone2": "808-555-0199"}, "m3", action="updated")
    assert index.leads_for(SITE, "phone", "+18085550199") == ["a1"]
    assert index.candidates(SITE, "p|5550199") == ["a1"]
    assert index_store.writes > writes


def test_long_key_parts_are_escaped_but_not_cached() -> None:
    # A site id of a megabyte would otherwise sit in a 4,096-entry cache (issue 10's sizes).
    identity._escape_cached.cache_clear()
    identity._key_prefix.cache_clear()
    long_site = "a|b" * 40_000
    assert IdentityIndex.key(long_site, "email", "x") == "a%7Cb" * 40_000 + "|email|x"
    assert IdentityIndex.key("site-1", "email", "x") == "site-1|email|x"
    assert IdentityIndex.lead_key(long_site, "x") == "a%7Cb" * 40_000 + "|x"
    assert IdentityIndex.lead_key("site-1", "x") == "site-1|x"
    assert identity._key_prefix.cache_info().currsize == 1
    assert identity._escape_cached.cache_info().currsize == 1


@given(st.text(max_size=70), st.sampled_from(["alias", "email", "block"]), st.text(max_size=5))
def test_index_keys_are_the_escaped_parts_joined(site: str, kind: str, value: str) -> None:
    # The site's and kind's part of a key is remembered; the key is what it always was.
    expected = f"{identity._escape_text(site)}|{kind}|{value}"
    assert IdentityIndex.key(site, kind, value) == expected
    assert IdentityIndex.key(site, kind, value) == expected


# --- ReadMemo: one decision's reads, each key from the store once -----------------------

_KEYS = st.sampled_from(["a", "b", "c", "d"])
_VALUES = st.one_of(st.none(), st.text(max_size=3), st.lists(st.text(max_size=3), max_size=3))


class ReadMemoMachine(RuleBasedStateMachine):
    """Reads through a ReadMemo give what the store itself would give, after any writes."""

    def __init__(self) -> None:
        super().__init__()
        self.store = JsonStore()
        self.memo = identity.ReadMemo(self.store, max_entries=3)

    @rule(key=_KEYS, value=_VALUES)
    def write(self, key: str, value: Any) -> None:
        self.memo[key] = value

    @rule(key=_KEYS)
    def delete(self, key: str) -> None:
        if key in self.store:
            del self.memo[key]

    @rule(key=_KEYS, default=st.sampled_from([None, "dflt"]))
    def read(self, key: str, default: Any) -> None:
        assert self.memo.get(key, default) == self.store.get(key, default)
        assert (key in self.memo) == (key in self.store)


TestReadMemo = ReadMemoMachine.TestCase


def test_a_decision_reads_each_index_key_once() -> None:
    class CountingStore(JsonStore):
        def __init__(self) -> None:
            super().__init__()
            self.reads: dict[str, int] = {}

        def get(self, key: str, default: Any = None) -> Any:
            self.reads[key] = self.reads.get(key, 0) + 1
            return super().get(key, default)

    store = CountingStore()
    index = IdentityIndex(store, JsonStore())
    body = {
        "id": "a1",
        "first_name": "Mary",
        "last_name": "Stone",
        "email": "m@x.org",
        "phone": "808-817-2382",
        "street_address": "12 Main St",
        "zip": "96813",
    }
    _decide(index, body, "m1")
    store.reads.clear()
    _decide(index, dict(body, id="a2", email="mary@y.org"), "m2")
    assert store.reads and max(store.reads.values()) == 1
