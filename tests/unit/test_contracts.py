"""The event contracts: docs/schemas agree with app/domain/events.py, every builder's output
validates, and docs/asyncapi.yaml describes the topic catalogue (no broker)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from ops.testkit.contracts import SCHEMAS, TOPIC_SCHEMAS, validator, violations
from ops.testkit.fakes.elevenlabs import build_post_call_payload
from ops.testkit.support import ROOT
from realgeeks_sync.agents.map_call_outcomes import plan_outputs
from realgeeks_sync.agents.normalize_leads import LeadTables, plan_realgeeks
from realgeeks_sync.agents.processing import Output
from realgeeks_sync.app.core.errors import PoisonMessageError
from realgeeks_sync.app.core.settings import Settings
from realgeeks_sync.app.domain.call_outcomes import OutcomeMapping
from realgeeks_sync.app.domain.deadletters import deadletter_record
from realgeeks_sync.app.domain.dialing.optouts import optout_event
from realgeeks_sync.app.domain.events import EVENT_FIELDS, OPTIONAL_FIELDS, activity_event
from realgeeks_sync.app.domain.leads import LeadInputError
from realgeeks_sync.app.domain.matching import MatcherConfig
from realgeeks_sync.app.streaming import topics
from realgeeks_sync.tables.identity import IdentityIndex

SITE = "5ead6dd1-2cb9-4f80-80fc-5716b05c90ba"
CONFIG = MatcherConfig()
MAPPING = OutcomeMapping()
TOPIC_OF = {attribute: name for name, attribute in topics.ATTRIBUTES.items()}
ASYNCAPI = yaml.safe_load((ROOT / "docs" / "asyncapi.yaml").read_text())


def envelope(body: Any, action: str, message_id: str) -> dict[str, Any]:
    return {
        "source": "realgeeks",
        "action": action,
        "message_id": message_id,
        "timestamp": "2026-11-27T09:59:00Z",
        "received_at": "2026-11-27T10:00:00Z",
        "headers": {},
        "body": json.dumps(body),
    }


def assert_valid(outputs: list[Output]) -> set[str]:
    """Every output on an output topic validates and has the fields events.py lists."""
    seen = set()
    for output in outputs:
        topic = TOPIC_OF[output.topic]
        if topic not in TOPIC_SCHEMAS:
            continue  # internal topics (sync.dialer-events, sync.conversations)
        raw = json.dumps(output.value).encode()
        assert violations(topic, raw) == [], output.value
        schema = output.value["schema"]
        fields = set(EVENT_FIELDS[schema])
        assert fields - OPTIONAL_FIELDS.get(schema, set()) <= set(output.value) <= fields
        seen.add(schema)
    return seen


# --- the schema files and the code's field lists ----------------------------------------


def test_one_schema_file_per_event_type() -> None:
    assert {p.name.removesuffix(".json") for p in SCHEMAS.glob("*.json")} == set(EVENT_FIELDS)
    assert set().union(*TOPIC_SCHEMAS.values()) == set(EVENT_FIELDS)


@pytest.mark.parametrize("name", sorted(EVENT_FIELDS))
def test_each_schema_lists_exactly_the_fields_of_the_code(name: str) -> None:
    document = json.loads((SCHEMAS / f"{name}.json").read_text())
    Draft202012Validator.check_schema(document)
    assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert document["properties"]["schema"]["const"] == name
    assert tuple(document["properties"]) == EVENT_FIELDS[name]
    assert set(document["required"]) == set(EVENT_FIELDS[name]) - OPTIONAL_FIELDS.get(name, set())
    assert document["additionalProperties"] is False


def test_a_record_that_breaks_its_contract_is_named() -> None:
    good = deadletter_record(topic="t", key="k", value="v", error="boom")
    assert violations(topics.DEADLETTER, json.dumps(good).encode()) == []
    assert violations(topics.LEADS, json.dumps(good).encode()) == [
        "schema 'deadletter.v1' is not one of ['lead.v1']"
    ]
    broken = {**good, "attempts": 0}
    del broken["error"]
    problems = violations(topics.DEADLETTER, json.dumps(broken).encode())
    assert any("'error' is a required property" in p for p in problems)
    assert any(p.startswith("deadletter.v1: at /attempts:") for p in problems)
    late = {**good, "first_failed_at": "yesterday"}
    assert violations(topics.DEADLETTER, json.dumps(late).encode()) == [
        "deadletter.v1: at /first_failed_at: 'yesterday' is not a 'date-time'"
    ]
    assert violations(topics.DEADLETTER, b"\xff") == ["not JSON"]


# --- what the builders emit ----------------------------------------------------------------


def test_a_lead_life_emits_events_that_validate() -> None:
    t = LeadTables(index=IdentityIndex({}, {}), users={})
    jack = {
        "site_uuid": SITE,
        "id": "A-1",
        "email": "Jack@Mail.com",
        "phone": "808-817-2382 ext. 12",
        "phone2": "not a phone",
        "first_name": "Jack",
        "last_name": "Johnson",
        "source": "Web",
        "role": "Buyer",
        "created": "2026-11-27T09:00:00Z",
        "partner_id": 77,
        "activities": [
            {"type": "property_viewed", "source": "Web", "description": "1 Main",
             "created": "2026-11-27T09:00:00.123456789Z",
             "property": {"address": "1 Main St", "city": "Honolulu", "price": "$450,000"}},
            {"type": "was_assigned", "source": "LeadManager", "description": "",
             "user": {"id": "14187", "name": "Ben Harper"}},
        ],
    }  # fmt: skip
    seen = assert_valid(plan_realgeeks(envelope(jack, "created", "m1"), t, config=CONFIG,
                                       mapping=MAPPING))  # fmt: skip
    # A second registration (another id, the same email) is a merge, with its conflicts.
    again = {**jack, "id": "B-2", "phone": "", "activities": []}
    seen |= assert_valid(
        plan_realgeeks(envelope(again, "created", "m2"), t, config=CONFIG, mapping=MAPPING)
    )
    stop = {"site_uuid": SITE, "id": "A-1", "activities": [{"type": "opted_out", "source": "x"}]}
    seen |= assert_valid(
        plan_realgeeks(envelope(stop, "activity_added", "m3"), t, config=CONFIG, mapping=MAPPING)
    )
    update = {"site_uuid": SITE, "id": "A-1", "last_name": "", "tcpa_consent": "no"}
    seen |= assert_valid(
        plan_realgeeks(envelope(update, "updated", "m4"), t, config=CONFIG, mapping=MAPPING)
    )
    assert seen == {"lead.v1", "activity.v1", "call_context.v1", "optout.v1"}


def test_call_outcomes_emit_events_that_validate() -> None:
    payload = build_post_call_payload(
        conversation_id="conv1",
        outcome="success",
        opt_out_requested=True,
        viewing_scheduled=True,
        dynamic_variables={"lead_id": "l1", "site_uuid": SITE},
    )
    seen = assert_valid(plan_outputs(payload, MAPPING, {}, "2026-11-27T10:00:00Z"))
    failure = build_post_call_payload(conversation_id="conv2", outcome="busy")
    recorded = {"conv2": {"site_uuid": SITE, "lead_id": "l2"}}
    seen |= assert_valid(plan_outputs(failure, MAPPING, recorded, "2026-11-27T10:00:00Z"))
    assert seen == {"activity.v1", "outbound_activity.v1", "optout.v1"}


def test_operator_optouts_and_dead_letters_validate() -> None:
    for subject, value in (("phone", "+18088172382"), ("lead", "a1")):
        event = optout_event(site_uuid=SITE, subject=subject, value=value, source="operator",
                             at="2026-11-27T10:00:00Z", action="opt_in", reason="typed", by="ops")  # fmt: skip
        assert violations(topics.OPTOUTS, json.dumps(event).encode()) == []
    for value in (b"\xff\x00raw", b'{"a":1}', None):
        record = deadletter_record(topic="t", key=None, value=value, error=ValueError("x" * 3000))
        assert violations(topics.DEADLETTER, json.dumps(record).encode()) == []


# Whatever a webhook sends: JSON of any shape in the fields Real Geeks names.
_scalars = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
)
_json = st.recursive(
    _scalars,
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=4),
    max_leaves=10,
)
_field = st.sampled_from(
    ["id", "email", "phone", "phone2", "first_name", "last_name", "created", "role", "zip",
     "source", "street_address", "city", "state", "second_email", "phone_extension", "x"]
)  # fmt: skip
_activity = st.dictionaries(
    st.sampled_from(["type", "source", "description", "created", "property", "user"]),
    _json | st.sampled_from(["opted_out", "property_viewed", "visited", "2026-01-02T03:04:05Z"]),
)


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    bodies=st.lists(
        st.tuples(
            st.sampled_from(["created", "updated", "activity_added"]),
            st.dictionaries(_field, _json, max_size=8),
            st.lists(_activity | _json, max_size=3),
        ),
        min_size=1,
        max_size=3,
    )
)
def test_any_webhook_body_gives_events_that_validate(
    bodies: list[tuple[str, dict[str, Any], list[Any]]],
) -> None:
    t = LeadTables(index=IdentityIndex({}, {}), users={})
    for n, (action, body, activities) in enumerate(bodies):
        body = {**body, "site_uuid": SITE, "id": "lead-1", "activities": activities}
        try:
            outputs = plan_realgeeks(envelope(body, action, f"m{n}"), t, config=CONFIG,
                                     mapping=MAPPING)  # fmt: skip
        except (PoisonMessageError, LeadInputError):
            continue
        assert_valid(outputs)


def test_text_fields_of_an_activity_are_text_whatever_was_sent() -> None:
    event = activity_event(event_id="0" * 32, site_uuid=SITE, lead_id="l", direction="inbound",
                           activity={"type": 5, "source": ["x"], "description": 1.5,
                                     "property": [1], "user": "someone", "created": None})  # fmt: skip
    assert (event["type"], event["source"], event["description"]) == ("5", None, "1.5")
    assert (event["property"], event["user"]) == (None, None)
    assert validator("activity.v1").is_valid(event)


# --- the AsyncAPI document ----------------------------------------------------------------


def test_asyncapi_describes_every_topic_of_the_catalogue() -> None:
    assert ASYNCAPI["asyncapi"].startswith("3.")
    settings_ = Settings.from_env({"RGSYNC_REALGEEKS_SECRETS": "s"})
    specs = {spec.name: spec for spec in topics.topic_specs(settings_)}
    channels = ASYNCAPI["channels"]
    assert {c["address"] for c in channels.values()} == set(specs)
    for channel in channels.values():
        spec = specs[channel["address"]]
        kafka = channel["bindings"]["kafka"]
        assert kafka["partitions"] == spec.partitions
        configured = kafka["topicConfiguration"]
        for name, value in spec.config:
            wanted = configured[name] if name != "cleanup.policy" else ",".join(configured[name])
            assert str(wanted) == value, (spec.name, name)
        assert channel["x-partitioned-by"] == ("site" if spec.by_site else "key")


def test_asyncapi_messages_point_at_the_schema_of_their_topic() -> None:
    messages = ASYNCAPI["components"]["messages"]
    by_address = {c["address"]: c for c in ASYNCAPI["channels"].values()}
    for topic, schemas in TOPIC_SCHEMAS.items():
        refs = [m["$ref"].rsplit("/", 1)[-1] for m in by_address[topic]["messages"].values()]
        payloads = [messages[r]["payload"]["schema"]["$ref"] for r in refs]
        assert payloads == [f"./schemas/{name}.json" for name in sorted(schemas)], topic
    for message in messages.values():
        ref = message["payload"].get("schema", {}).get("$ref")
        if ref is not None:
            assert message["payload"]["schemaFormat"].endswith("version=draft-2020-12")
            assert (ROOT / "docs" / ref).resolve().is_file(), ref
