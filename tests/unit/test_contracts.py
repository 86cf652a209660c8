"""The event contracts: every topic and every event type has its schema in docs/schemas, the
schemas agree with app/domain/events.py, every builder's output validates, and
docs/asyncapi.yaml describes the topic catalogue (no broker)."""

from __future__ import annotations

import ast
import importlib
import json
from pathlib import Path
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
from realgeeks_sync.app.core.errors import PoisonMessageError
from realgeeks_sync.app.core.settings import Settings
from realgeeks_sync.app.domain import envelopes
from realgeeks_sync.app.domain.call_outcomes import OutcomeMapping
from realgeeks_sync.app.domain.deadletters import deadletter_record
from realgeeks_sync.app.domain.dialing import events as dialer_events
from realgeeks_sync.app.domain.dialing.events import (
    CallAnswer,
    CallEnded,
    OperatorAction,
    answer_record,
    conversation_record,
    operator_record,
    outcome_record,
    tick_record,
)
from realgeeks_sync.app.domain.dialing.optouts import optout_event
from realgeeks_sync.app.domain.events import (
    DIALER_EVENT_FIELDS,
    EVENT_FIELDS,
    OPTIONAL_FIELDS,
    UNTAGGED,
    activity_event,
)
from realgeeks_sync.app.domain.leads import LeadInputError
from realgeeks_sync.app.domain.matching import MatcherConfig
from realgeeks_sync.app.domain.reconciliation import request_envelope
from realgeeks_sync.app.streaming import topics
from realgeeks_sync.tables.identity import IdentityIndex
from tests.strategies import json_values
from tests.unit.test_dialer_machine import Dialer

ALL_TYPES = set(EVENT_FIELDS) | {"dialer_event.v1"}

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


def fields_of(schema: str, value: dict[str, Any]) -> tuple[set[str], set[str]]:
    """(the fields an event of this type always has, the fields it may have)."""
    if schema == "dialer_event.v1":
        every = set(DIALER_EVENT_FIELDS[value["kind"]])
        return every, every
    every = set(EVENT_FIELDS[schema])
    return every - OPTIONAL_FIELDS.get(schema, set()), every


def assert_valid(outputs: list[Any]) -> set[str]:
    """Every output (an Output or a dialer Emit) validates and has the fields events.py lists."""
    seen = set()
    for output in outputs:
        topic = TOPIC_OF[output.topic]
        raw = json.dumps(output.value).encode()
        assert violations(topic, raw) == [], output.value
        (schema,) = (
            TOPIC_SCHEMAS[topic] if TOPIC_SCHEMAS[topic] <= UNTAGGED else {output.value["schema"]}
        )
        required, allowed = fields_of(schema, output.value)
        assert required <= set(output.value) <= allowed
        seen.add(schema)
    return seen


# --- the schema files and the code's field lists ----------------------------------------


def test_every_topic_and_every_event_type_has_its_schema() -> None:
    settings_ = Settings.from_env({"RGSYNC_REALGEEKS_SECRETS": "s"})
    # A new topic in the catalogue fails here until TOPIC_SCHEMAS names its event types.
    assert set(TOPIC_SCHEMAS) == {spec.name for spec in topics.topic_specs(settings_)}
    assert set(TOPIC_SCHEMAS) == set(topics.ATTRIBUTES)
    assert {p.name.removesuffix(".json") for p in SCHEMAS.glob("*.json")} == ALL_TYPES
    assert set().union(*TOPIC_SCHEMAS.values()) == ALL_TYPES
    # A topic carries either self-describing events or one type named by the topic.
    for carried in TOPIC_SCHEMAS.values():
        assert not carried & UNTAGGED or len(carried) == 1, carried


def _literals(key: str, paths: list[Path]) -> dict[str, list[str]]:
    """The values given to ``key`` in the dict displays of these modules, and where.

    A module-level constant (``"schema": SCHEMA``) is read from the imported module; any
    other expression is reported as ``?`` (a type the test cannot see is a failure).
    """
    found: dict[str, list[str]] = {}
    for path in paths:
        relative = path.relative_to(ROOT)
        module_name = ".".join(("realgeeks_sync", *relative.with_suffix("").parts))
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Dict):
                continue
            for k, v in zip(node.keys, node.values, strict=True):
                if not (isinstance(k, ast.Constant) and k.value == key):
                    continue
                if isinstance(v, ast.Constant):
                    value = v.value
                elif isinstance(v, ast.Name):
                    value = getattr(importlib.import_module(module_name), v.id, "?")
                else:
                    value = "?"
                found.setdefault(str(value), []).append(f"{relative}:{node.lineno}")
    return found


def test_every_event_type_the_code_writes_has_a_schema() -> None:
    # Every `"schema": "<type>"` the service writes (an event type added without its schema
    # and field list fails here), and every kind of dialer event.
    code = [p for d in ("app", "agents", "tables") for p in (ROOT / d).rglob("*.py")]
    written = _literals("schema", code)
    assert set(written) == set(EVENT_FIELDS) - UNTAGGED, written
    kinds = _literals("kind", [Path(dialer_events.__file__)])
    assert set(kinds) == set(DIALER_EVENT_FIELDS), kinds


@pytest.mark.parametrize("name", sorted(EVENT_FIELDS))
def test_each_schema_lists_exactly_the_fields_of_the_code(name: str) -> None:
    document = json.loads((SCHEMAS / f"{name}.json").read_text())
    Draft202012Validator.check_schema(document)
    assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    if name in UNTAGGED:
        assert "schema" not in document["properties"]  # named by its topic
    else:
        assert document["properties"]["schema"]["const"] == name
    assert tuple(document["properties"]) == EVENT_FIELDS[name]
    assert set(document["required"]) == set(EVENT_FIELDS[name]) - OPTIONAL_FIELDS.get(name, set())
    assert document["additionalProperties"] is False


def test_the_dialer_event_schema_has_one_shape_per_kind() -> None:
    document = json.loads((SCHEMAS / "dialer_event.v1.json").read_text())
    Draft202012Validator.check_schema(document)
    shapes = document["$defs"]
    assert set(shapes) == set(DIALER_EVENT_FIELDS)
    assert document["properties"]["kind"]["enum"] == list(DIALER_EVENT_FIELDS)
    assert [ref["$ref"] for ref in document["oneOf"]] == [f"#/$defs/{k}" for k in shapes]
    for kind, fields in DIALER_EVENT_FIELDS.items():
        assert shapes[kind]["properties"]["kind"]["const"] == kind
        assert tuple(shapes[kind]["properties"]) == fields
        assert set(shapes[kind]["required"]) == set(fields)
        assert shapes[kind]["additionalProperties"] is False


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
    assert seen == {"lead.v1", "activity.v1", "call_context.v1", "optout.v1", "caller.v1"}


def test_call_outcomes_emit_events_that_validate() -> None:
    payload = build_post_call_payload(
        conversation_id="conv1",
        outcome="success",
        opt_out_requested=True,
        viewing_scheduled=True,
        dynamic_variables={"lead_id": "l1", "site_uuid": SITE},
        collected={"timeframe": "3-6 months", "budget": "650000"},
    )
    seen = assert_valid(plan_outputs(payload, MAPPING, {}, "2026-11-27T10:00:00Z"))
    failure = build_post_call_payload(conversation_id="conv2", outcome="busy")
    recorded = {"conv2": {"site_uuid": SITE, "lead_id": "l2"}}
    seen |= assert_valid(plan_outputs(failure, MAPPING, recorded, "2026-11-27T10:00:00Z"))
    assert seen == {
        "activity.v1", "outbound_activity.v1", "optout.v1", "dialer_event.v1", "call_outcome.v1",
        "lead_update.v1",
    }  # fmt: skip


def test_operator_optouts_and_dead_letters_validate() -> None:
    for subject, value in (("phone", "+18088172382"), ("lead", "a1")):
        event = optout_event(site_uuid=SITE, subject=subject, value=value, source="operator",
                             at="2026-11-27T10:00:00Z", action="opt_in", reason="typed", by="ops")  # fmt: skip
        assert violations(topics.OPTOUTS, json.dumps(event).encode()) == []
    for value in (b"\xff\x00raw", b'{"a":1}', None):
        record = deadletter_record(topic="t", key=None, value=value, error=ValueError("x" * 3000))
        assert violations(topics.DEADLETTER, json.dumps(record).encode()) == []


# Whatever a webhook sends: JSON of any shape in the fields Real Geeks names.
_json = json_values(text=20, keys=8, items=3, entries=4, leaves=10)
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


def test_the_dialer_records_and_envelopes_validate() -> None:
    site, at = SITE, "2026-11-27T10:00:00+00:00"
    records = [
        answer_record(CallAnswer(site, "l1", "a1", "placed", "placed", "conv1")),
        answer_record(
            CallAnswer(
                site,
                "l1",
                "a1",
                "refused",
                "rate_limited",
                retriable=True,
                retry_after=30.0,
                reason="429",
            )
        ),
        outcome_record(CallEnded(site, "l1", "conv1", "completed", "a1", opted_out=True)),
        outcome_record(CallEnded(site, "l1", None, "unknown")),
        tick_record(site),
        operator_record(OperatorAction(site, "pause", "ops", at)),
        operator_record(OperatorAction(site, "never_call", "ops", at, "l1", "e1")),
    ]
    assert {r["kind"] for r in records} == set(DIALER_EVENT_FIELDS)
    for record in records:
        assert tuple(record) == DIALER_EVENT_FIELDS[record["kind"]]
        assert violations(topics.DIALER_EVENTS, json.dumps(record).encode()) == [], record
    # The state machine's outputs too (a call placed: its activity, outbox record, conversation).
    d = Dialer()
    (call,) = d.new_lead("l1").calls
    assert assert_valid(list(d.answer(call, "placed").emits)) == {
        "activity.v1", "outbound_activity.v1", "conversation.v1"
    }  # fmt: skip
    lead_optout = d.opt_out("lead", "l1")
    assert assert_valid(list(lead_optout.emits)) == {"optout.v1"}
    # Broken records are named: an operator's call_now needs a lead, a kind must be known.
    call_now = operator_record(OperatorAction(site, "call_now", "ops", at))
    assert violations(topics.DIALER_EVENTS, json.dumps(call_now).encode())
    assert violations(topics.DIALER_EVENTS, b'{"kind": "lunch", "site_uuid": "s"}')
    conversation = conversation_record(conversation_id="c", site_uuid=site, lead_id="l",
                                       attempt_id="a", started_at=at)  # fmt: skip
    assert violations(topics.CONVERSATIONS, json.dumps(conversation).encode()) == []
    inbound = conversation_record(conversation_id="c", site_uuid=site, lead_id="l",
                                  direction="inbound", started_at=at)  # the pre-call webhook's
    assert (inbound["attempt_id"], inbound["direction"]) == (None, "inbound")
    assert "direction" not in conversation
    assert violations(topics.CONVERSATIONS, json.dumps(inbound).encode()) == []
    # Webhooks as the ingress keeps them.
    headers = {"X-Lead-Router-Action": "created", "X-Lead-Router-Message-Id": "m1",
               "X-Lead-Router-Timestamp": "2026-11-27T09:59:00Z", "Cookie": "x"}  # fmt: skip
    raw = envelopes.realgeeks_record(b'{"site_uuid": "s", "id": 1}', headers, at)
    eleven = envelopes.elevenlabs_record(
        b'{"type": "post_call_transcription", "event_timestamp": 1, "data": {}}', {}, at
    )
    assert violations(topics.RAW_REALGEEKS, raw.value()) == []
    assert violations(topics.RAW_ELEVENLABS, eleven.value()) == []
    # A reconcile request (a conversation whose webhook never arrived) rides the same topic.
    request = request_envelope("conv_1", "agent_1", "2026-11-27T10:00:00Z")
    assert violations(topics.RAW_ELEVENLABS, json.dumps(request).encode()) == []
    assert violations(topics.RAW_REALGEEKS, b'{"source": "realgeeks"}')


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
        ref = message["payload"]["schema"]["$ref"]
        assert message["payload"]["schemaFormat"].endswith("version=draft-2020-12")
        assert (ROOT / "docs" / ref).resolve().is_file(), ref
        assert message["name"] == ref.removeprefix("./schemas/").removesuffix(".json")
