"""Raw-topic envelopes: action and message-id rules, exact body text, keys."""

from __future__ import annotations

import hashlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.envelopes import elevenlabs_record, realgeeks_record
from app.errors import MalformedPayloadError

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
    assert set(value) == {
        "source",
        "action",
        "message_id",
        "timestamp",
        "received_at",
        "headers",
        "body",
    }


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
