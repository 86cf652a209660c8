"""Raw-topic envelopes: action and message-id rules, exact body text, keys."""

from __future__ import annotations

import hashlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from multidict import CIMultiDict

from realgeeks_sync.app.core.errors import MalformedPayloadError
from realgeeks_sync.app.core.sizes import MAX_KEPT_HEADER_CHARS, MAX_KEPT_HEADERS
from realgeeks_sync.app.domain.envelopes import (
    _KEPT_PLANS,
    _MAX_KEPT_PLANS,
    _clean,
    _kept_headers,
    elevenlabs_record,
    realgeeks_record,
)
from realgeeks_sync.app.domain.events import WEBHOOK_ENVELOPE_FIELDS

AT = "2026-11-27T00:00:00Z"


def test_header_action_wins_and_body_is_kept_exactly() -> None:
    body = b'{"action": "updated", "site_uuid": "site-1",  "id": "x"}'
    rec = realgeeks_record(
        body,
        {
            "X-Lead-Router-Action": "created",
            "X-Lead-Router-Message-Id": "m-1",
            "X-Lead-Router-Timestamp": "2016-12-24T01:58:52.789337607Z",
            "Cookie": "secret",
        },
        AT,
    )
    assert rec.action == "created" and rec.message_id == "m-1" and rec.key == "site-1"
    value = json.loads(rec.value())
    assert value["body"].encode() == body
    assert value["timestamp"] == "2016-12-24T01:58:52.789337607Z"
    assert "Cookie" not in value["headers"]
    assert tuple(value) == WEBHOOK_ENVELOPE_FIELDS  # docs/schemas/webhook_envelope.v1.json


def test_body_action_and_hash_message_id_when_headers_absent() -> None:
    body = b'{"action":"activity_added"}'
    rec = realgeeks_record(body, {}, AT)
    assert rec.action == "activity_added"
    assert rec.message_id == hashlib.sha256(body).hexdigest()
    assert rec.key == rec.message_id  # no site_uuid: keyed by the message id


def test_unknown_action_is_kept() -> None:
    assert realgeeks_record(b'{"action":"lead_deleted"}', {}, AT).action == "lead_deleted"


@pytest.mark.parametrize(
    "body", [b"[1,2]", b'"s"', b"not json", b"\xff\xfe", b'{"action": ""}', b"{}", b'{"action": 5}']
)
def test_malformed_realgeeks_bodies(body: bytes) -> None:
    with pytest.raises(MalformedPayloadError):
        realgeeks_record(body, {}, AT)


def test_elevenlabs_keyed_by_conversation() -> None:
    body = b'{"type":"post_call_transcription","event_timestamp":1,"data":{"conversation_id":"c1"}}'
    rec = elevenlabs_record(body, {}, AT)
    assert rec.key == "c1" and rec.action == "post_call_transcription"
    assert rec.message_id == hashlib.sha256(body).hexdigest()


@given(st.binary(max_size=200))
def test_any_bytes_give_a_record_or_malformed(body: bytes) -> None:
    for build in (realgeeks_record, elevenlabs_record):
        try:
            rec = build(body, {}, AT)
        except MalformedPayloadError:
            continue
        assert json.loads(rec.value())["body"].encode() == body


def test_undecodable_header_bytes_do_not_break_the_envelope() -> None:
    # aiohttp hands over undecodable header bytes as lone surrogates.
    headers = {"X-Lead-Router-Timestamp": "\udcc2\udca1", "X-Lead-Router-Message-Id": "m\udcff"}
    rec = realgeeks_record(b'{"action":"created"}', headers, AT)
    value = json.loads(rec.value())
    assert value["timestamp"] == "\u00a1"  # the UTF-8 bytes of "¡", decoded
    assert rec.message_id == "m\ufffd"  # not UTF-8: replaced, never a 500


# The unsigned X-Lead-Router-Timestamp is clamped to receipt time plus a skew.


def test_a_far_future_timestamp_becomes_the_receipt_time_and_is_flagged() -> None:
    headers = {"X-Lead-Router-Action": "updated", "X-Lead-Router-Timestamp": "2999-01-01T00:00:00Z"}
    rec = realgeeks_record(b'{"site_uuid":"s"}', headers, AT, max_timestamp_skew_s=300)
    value = json.loads(rec.value())
    assert value["timestamp"] == AT and rec.timestamp_clamped
    # The header itself is kept as sent, for whoever investigates.
    assert value["headers"]["X-Lead-Router-Timestamp"] == "2999-01-01T00:00:00Z"


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("2026-11-27T00:04:59Z", True),  # within the skew
        ("2026-11-27T00:05:00Z", True),  # exactly at it
        ("2026-11-27T00:05:00.000000001Z", False),
        ("2026-11-26T23:00:00-02:00", False),  # 01:00 UTC: an hour ahead
        ("2016-12-24T01:58:52.789337607Z", True),  # the past is never touched
        ("not a timestamp", True),  # orders nothing downstream
    ],
)
def test_clamp_boundary(sent: str, kept: bool) -> None:
    from realgeeks_sync.app.domain.envelopes import clamp_timestamp

    value, clamped = clamp_timestamp(sent, AT, 300)
    assert (value == sent and not clamped) if kept else (value == AT and clamped)


def test_a_clamped_future_update_no_longer_makes_later_updates_stale() -> None:
    """The finding end to end in the pure logic: attacker's update, then a genuine one."""
    from realgeeks_sync.app.domain.leads import decide_lead
    from realgeeks_sync.app.domain.matching import MatcherConfig
    from realgeeks_sync.tables.identity import IdentityIndex

    index = IdentityIndex({}, {})
    site, lead = "site-1", "lead-1"

    def decide(body: dict[str, object], action: str, sent: str, received: str, mid: str) -> bool:
        headers = {"X-Lead-Router-Action": action, "X-Lead-Router-Timestamp": sent}
        raw = json.dumps({"site_uuid": site, "id": lead, **body}).encode()
        envelope = json.loads(
            realgeeks_record(raw, headers, received, max_timestamp_skew_s=300).value()
        )
        decision = decide_lead(
            index,
            site_uuid=site,
            action=action,
            body=json.loads(envelope["body"]),
            source_timestamp=envelope["timestamp"],
            message_id=mid,
            now=received,
            config=MatcherConfig(),
        )
        return decision.stale

    assert not decide({"first_name": "Ann"}, "created", AT, AT, "m1")
    # A replayed body with a forged far-future header (headers are not signed).
    assert not decide({"first_name": "Mallory"}, "updated", "2999-01-01T00:00:00Z", AT, "m2")
    # The next genuine update, a minute later, still applies.
    assert not decide(
        {"first_name": "Anne"}, "updated", "2026-11-27T00:01:00Z", "2026-11-27T00:01:00Z", "m3"
    )


# Sizes: an envelope's growth is bounded, so app/core/sizes.py's limits hold for any body.


@given(
    body=st.text(alphabet='"\\\n\t ab\u00e9\u2028', max_size=400),
    headers=st.dictionaries(
        st.sampled_from([f"X-Lead-Router-{i}" for i in range(40)] + ["User-Agent"]),
        st.text(max_size=5000),
        max_size=40,
    ),
)
def test_the_raw_record_stays_within_the_size_the_topics_take(
    body: str, headers: dict[str, str]
) -> None:
    from realgeeks_sync.app.core.sizes import ENVELOPE_HEADERS_BYTES, max_message_bytes

    raw = json.dumps({"site_uuid": "s", "notes": body}).encode()
    rec = realgeeks_record(raw, {**headers, "X-Lead-Router-Action": "created"}, AT)
    value = rec.value()
    assert len(value) <= 2 * len(raw) + ENVELOPE_HEADERS_BYTES + 1024
    assert len(value) + len(rec.key.encode()) <= max_message_bytes(len(raw))
    assert len(json.loads(value)["headers"]) <= 16


def test_a_webhook_is_keyed_by_its_site_as_every_other_topic_keys_it() -> None:
    # Mixed case and spaces: the raw record must land on the site's partition, where the
    # site's tables and its leads' stories are written (site_partition of the normalized id).
    site = "5EAD6DD1-2cb9-4f80-80fc-5716b05c90ba"
    body = json.dumps({"site_uuid": f"  {site} ", "action": "created"}).encode()
    rec = realgeeks_record(body, {"X-Lead-Router-Message-Id": "m-9"}, AT)
    assert rec.key == site.lower()


# Kept headers: decided once per set of header names (_KEPT_PLANS), the same as deciding
# every name of every request.


def _kept_headers_by_name(headers: CIMultiDict[str]) -> dict[str, str]:
    """_kept_headers before it remembered its plans: every name of every request decided."""
    kept: dict[str, str] = {}
    for name, value in headers.items():
        lower = name.lower()
        if lower in ("user-agent", "content-type") or lower.startswith(
            ("x-lead-router-", "elevenlabs-")
        ):
            if len(kept) == MAX_KEPT_HEADERS:
                break
            kept[_clean(name[:128])] = _clean(value[:MAX_KEPT_HEADER_CHARS])
    return kept


_HEADER_NAMES = st.sampled_from(
    [f"X-Lead-Router-{i}" for i in range(20)]
    + ["x-lead-router-1", "X-LEAD-ROUTER-1", "User-Agent", "content-type", "Host", "Cookie"]
    + ["ElevenLabs-Signature", "X-Lead-Router-\udcff"]
    # Two names the same in their first 128 characters: one kept name.
    + ["X-Lead-Router-" + "n" * 200, "X-Lead-Router-" + "n" * 200 + "2"]
)


@given(
    requests=st.lists(
        st.lists(
            st.tuples(
                _HEADER_NAMES,
                st.text(alphabet="ab\u00e9\udcff", max_size=3) | st.just("\u00e9" * 2100),
            ),
            max_size=30,
        ),
        max_size=6,
    ),
    values=st.lists(st.text(alphabet="xy\u00e9", max_size=3), min_size=30, max_size=30),
)
def test_kept_headers_are_those_every_name_decided_on_its_own_would_keep(
    requests: list[list[tuple[str, str]]], values: list[str]
) -> None:
    # Repeated names (last one wins), names differing in case, more than the limit of kept
    # names, undecodable bytes; each set of names again with other values (a plan reused).
    for items in requests:
        for pairs in (items, [(name, values[i]) for i, (name, _) in enumerate(items)]):
            headers = CIMultiDict(pairs)
            assert _kept_headers(headers) == _kept_headers_by_name(headers)
            assert list(_kept_headers(headers)) == list(_kept_headers_by_name(headers))


def test_a_plan_is_found_by_every_name_in_order() -> None:
    first = CIMultiDict([("X-Lead-Router-Action", "created"), ("Cookie", "c")])
    swapped = CIMultiDict([("Cookie", "c"), ("X-Lead-Router-Action", "updated")])
    other_case = CIMultiDict([("x-lead-router-action", "created"), ("Cookie", "c")])
    assert _kept_headers(first) == {"X-Lead-Router-Action": "created"}
    assert _kept_headers(swapped) == {"X-Lead-Router-Action": "updated"}
    assert _kept_headers(other_case) == {"x-lead-router-action": "created"}
    assert _kept_headers(CIMultiDict()) == {} and _kept_headers({}) == {}


def test_plans_are_bounded_in_number_and_size() -> None:
    for i in range(3 * _MAX_KEPT_PLANS):
        headers = {f"X-Lead-Router-{i}": "v", "Host": "h"}
        assert _kept_headers(headers) == {f"X-Lead-Router-{i}": "v"}
        assert len(_KEPT_PLANS) <= _MAX_KEPT_PLANS
    _KEPT_PLANS.clear()
    long_names = {f"X-{i}-" + "n" * 1000: "v" for i in range(5)}
    assert _kept_headers({**long_names, "User-Agent": "ua"}) == {"User-Agent": "ua"}
    assert not _KEPT_PLANS  # names this long are decided every time, not remembered
