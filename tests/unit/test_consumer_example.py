"""ops/consumer_example.py answers every record with a line, whatever its value holds."""

from __future__ import annotations

import json

import pytest
from jsonschema import Draft202012Validator, FormatChecker

from ops.consumer_example import SCHEMA, check_record
from tests.unit.test_leads import JACK, JACK_ID, SITE, _decide, _index

VALIDATOR = Draft202012Validator(json.loads(SCHEMA.read_text()), format_checker=FormatChecker())
NOBODY = "site=None lead=None op=None"


def test_a_lead_event_is_valid_and_named_by_its_ids() -> None:
    event = _decide(_index(), JACK, "m1").to_event()
    ids, errors = check_record(json.dumps(event).encode(), VALIDATOR)
    assert (ids, errors) == (f"site={SITE} lead={JACK_ID} op=created", [])


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (None, "no value (a tombstone)"),  # once a TypeError out of json.loads
        (b"{not json", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b"null", "None is not of type 'object'"),  # once an AttributeError on .get
        (b'[{"site_uuid": "s"}]', "[{'site_uuid': 's'}] is not of type 'object'"),
        (b'"lead"', "'lead' is not of type 'object'"),
    ],
)
def test_any_other_value_is_invalid_and_says_why(value: bytes | None, error: str) -> None:
    assert check_record(value, VALIDATOR) == (NOBODY, [error])
