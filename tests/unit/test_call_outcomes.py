"""ElevenLabs webhooks -> Real Geeks activities: outcomes, ids, opt-out, errors."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from realgeeks_sync.app.core.errors import PoisonMessageError
from realgeeks_sync.app.core.settings import Settings
from realgeeks_sync.app.core.sites import OUTCOME_ACTIVITY_KINDS
from realgeeks_sync.app.domain.call_outcomes import (
    DEFAULT_ACTIVITY_SOURCE,
    DEFAULT_NOTIFY_KINDS,
    KINDS,
    CallOutcome,
    MalformedCallEventError,
    OutcomeMapping,
    UnknownEventTypeError,
    activity_id_for,
    is_own_activity,
    map_call_event,
    outcome_mapping,
    with_activity_types,
)

MAPPING = OutcomeMapping()
LEAD_ID = "a27c20af4497415d9e4e7334dd1d40d2"
SITE = "5ead6dd1-2cb9-4f80-80fc-5716b05c90ba"
LINK = "https://elevenlabs.io/app/agents/history/conv_abc123?agent=agent_xyz"
REFERENCE = f"Conversation conv_abc123: {LINK}"


def text_of(activity: dict[str, Any]) -> str:
    """An activity's description without the conversation it names at its end."""
    description = str(activity["description"])
    if " Conversation " not in description:
        raise AssertionError(f"no conversation named in {description!r}")
    return description[: description.rindex(" Conversation ")]


def transcription(**data_overrides: Any) -> dict[str, Any]:
    """Return a post_call_transcription envelope shaped like the docs' section 3.1."""
    data: dict[str, Any] = {
        "agent_id": "agent_xyz",
        "conversation_id": "conv_abc123",
        "status": "done",
        "user_id": LEAD_ID,
        "transcript": [
            {"role": "agent", "message": "Hi Jack, this is Ava.", "time_in_call_secs": 0},
            {"role": "user", "message": "Hi, yes.", "time_in_call_secs": 3},
        ],
        "metadata": {
            "start_time_unix_secs": 1739537297,
            "call_duration_secs": 82,
            "cost": 296,
            "termination_reason": "end_call tool was called.",
            "phone_call": {
                "type": "twilio",
                "direction": "outbound",
                "external_number": "+18088172382",
                "agent_number": "+18085550100",
                "call_sid": "CA123",
            },
        },
        "analysis": {
            "call_successful": "success",
            "transcript_summary": "Jack is looking for a 3-bedroom home in Honolulu.",
            "evaluation_criteria_results": {},
            "data_collection_results": {},
        },
        "conversation_initiation_client_data": {
            "dynamic_variables": {
                "lead_id": LEAD_ID,
                "site_uuid": SITE,
                "lead_first_name": "Jack",
                "system__conversation_id": "conv_abc123",
            }
        },
    }
    data.update(data_overrides)
    return {"type": "post_call_transcription", "event_timestamp": 1739537400, "data": data}


def failure(reason: str = "busy") -> dict[str, Any]:
    """Return a call_initiation_failure envelope shaped like the docs' section 3.2."""
    return {
        "type": "call_initiation_failure",
        "event_timestamp": 1759931652,
        "data": {
            "agent_id": "agent_xyz",
            "conversation_id": "conv_fail1",
            "failure_reason": reason,
            "metadata": {
                "type": "sip",
                "body": {
                    "from_number": "+441111111111",
                    "to_number": "+11111111111",
                    "sip_status_code": 486,
                    "error_reason": "INVITE failed: sip status: 486: Busy here (SIP 486)",
                    "call_sid": "d8e7f6a5",
                    "sip_status": "Busy here",
                },
            },
        },
    }


def with_analysis(envelope: dict[str, Any], **analysis: Any) -> dict[str, Any]:
    """Return a copy of ``envelope`` with analysis keys replaced."""
    out = copy.deepcopy(envelope)
    out["data"]["analysis"].update(analysis)
    return out


def types(outcome: CallOutcome) -> list[str]:
    """Return the activity types of an outcome, in order."""
    return [a["type"] for a in outcome.activities]


def test_completed_call_becomes_called_with_duration_outcome_and_summary() -> None:
    outcome = map_call_event(transcription(), MAPPING)
    assert outcome.lead_id == LEAD_ID
    assert outcome.site_uuid == SITE
    assert outcome.conversation_id == "conv_abc123"
    assert outcome.disposition == "completed"
    assert outcome.opted_out is False
    (activity,) = outcome.activities
    assert activity["type"] == "called"
    assert activity["source"] == DEFAULT_ACTIVITY_SOURCE
    assert activity["created"] == "2025-02-14T12:50:00+00:00"
    # The seed's wording: "AI call completed. Duration: 180s. Sentiment: ... <summary>".
    assert activity["description"] == (
        "AI call completed. Duration: 82s. Jack is looking for a 3-bedroom home in Honolulu."
        f" {REFERENCE}"
    )
    assert activity["activity_id"] == activity_id_for(
        "conv_abc123", "post_call_transcription", "called"
    )
    assert set(activity) == {
        "activity_id",
        "type",
        "source",
        "description",
        "created",
        "notify_users",
    }
    json.dumps(activity)  # plain JSON for the outbound topic


def test_activity_ids_are_deterministic_and_distinct() -> None:
    first = map_call_event(transcription(), MAPPING)
    again = map_call_event(transcription(), MAPPING)
    assert first.activities == again.activities
    other = map_call_event(transcription(conversation_id="conv_other"), MAPPING)
    assert other.activities[0]["activity_id"] != first.activities[0]["activity_id"]
    assert len(first.activities[0]["activity_id"]) == 32
    # Renaming the Real Geeks type must not change the id (a replay must not re-post).
    renamed = map_call_event(transcription(), OutcomeMapping(called_type="ai_called"))
    assert renamed.activities[0]["type"] == "ai_called"
    assert renamed.activities[0]["activity_id"] == first.activities[0]["activity_id"]


def test_summary_and_description_are_bounded() -> None:
    envelope = with_analysis(transcription(), transcript_summary="word " * 5000)
    outcome = map_call_event(envelope, OutcomeMapping(max_summary_chars=100))
    description = outcome.activities[0]["description"]
    assert len(description) < 200 + len(LINK)
    assert text_of(outcome.activities[0]).endswith("…")
    capped = map_call_event(envelope, OutcomeMapping(max_description_chars=150))
    assert len(capped.activities[0]["description"]) <= 150
    assert text_of(capped.activities[0]).endswith("…")
    # The conversation is never cut away.
    assert capped.activities[0]["description"].endswith(REFERENCE)


def test_completed_call_names_the_sentiment_when_the_analysis_has_one() -> None:
    envelope = with_analysis(transcription(), sentiment="positive")
    description = map_call_event(envelope, MAPPING).activities[0]["description"]
    assert description.startswith("AI call completed. Duration: 82s. Sentiment: positive. ")
    collected = with_analysis(
        transcription(), data_collection_results={"sentiment": {"value": "hesitant"}}
    )
    description = map_call_event(collected, MAPPING).activities[0]["description"]
    assert "Sentiment: hesitant." in description
    plain = map_call_event(transcription(), MAPPING).activities[0]["description"]
    assert "Sentiment" not in plain


def test_voicemail_tool_result_gives_a_voicemail_note() -> None:
    transcript = [
        {
            "role": "user",
            "message": "Please leave a message after the tone.",
            "time_in_call_secs": 2,
        },
        {
            "role": "agent",
            "message": None,
            "time_in_call_secs": 5,
            "tool_results": [
                {
                    "request_id": "r1",
                    "tool_name": "voicemail_detection",
                    "result_value": '{"status": "success"}',
                    "is_error": False,
                    "type": "system",
                    "result": {"result_type": "voicemail_detection_success", "status": "success"},
                }
            ],
        },
    ]
    outcome = map_call_event(transcription(transcript=transcript), MAPPING)
    assert outcome.disposition == "voicemail"
    assert types(outcome) == ["note"]
    assert text_of(outcome.activities[0]) == "AI call reached voicemail"
    assert outcome.activities[0]["activity_id"] == activity_id_for(
        "conv_abc123", "post_call_transcription", "note"
    )


def test_voicemail_from_features_usage_or_termination_reason() -> None:
    meta = dict(transcription()["data"]["metadata"])
    meta["features_usage"] = {"voicemail_detection": {"enabled": True, "used": True}}
    assert map_call_event(transcription(metadata=meta), MAPPING).disposition == "voicemail"
    meta = dict(transcription()["data"]["metadata"])
    meta["termination_reason"] = "Voicemail detected, call ended"
    assert map_call_event(transcription(metadata=meta), MAPPING).disposition == "voicemail"
    # Enabled but not used is not a voicemail.
    meta = dict(transcription()["data"]["metadata"])
    meta["features_usage"] = {"voicemail_detection": {"enabled": True, "used": False}}
    assert map_call_event(transcription(metadata=meta), MAPPING).disposition == "completed"


def test_failed_status_or_metadata_error_gives_a_failure_note() -> None:
    outcome = map_call_event(transcription(status="failed"), MAPPING)
    assert outcome.disposition == "failed"
    assert types(outcome) == ["note"]
    assert outcome.activities[0]["description"].startswith("AI call failed")
    meta = dict(transcription()["data"]["metadata"])
    meta["error"] = {"code": 1011, "reason": "LLM provider unavailable"}
    errored = map_call_event(transcription(metadata=meta), MAPPING)
    assert errored.disposition == "failed"
    assert text_of(errored.activities[0]) == "AI call failed: 1011 - LLM provider unavailable"


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("busy", "AI call could not connect (busy): the line was busy"),
        ("no-answer", "AI call could not connect (no-answer): no answer"),
        ("unknown", "AI call could not connect (unknown): unknown reason"),
    ],
)
def test_call_initiation_failure_note_names_the_reason(reason: str, expected: str) -> None:
    outcome = map_call_event(failure(reason), MAPPING)
    assert outcome.disposition == reason
    assert outcome.lead_id is None and outcome.site_uuid is None  # no dynamic variables here
    assert outcome.conversation_id == "conv_fail1"
    (activity,) = outcome.activities
    assert activity["type"] == "note"
    assert text_of(activity) == expected
    assert activity["created"] == "2025-10-08T13:54:12+00:00"
    assert "+1111" not in activity["description"]  # no phone numbers copied from the body


def test_failure_without_reason_is_unknown() -> None:
    envelope = failure()
    del envelope["data"]["failure_reason"]
    assert map_call_event(envelope, MAPPING).disposition == "unknown"


@pytest.mark.parametrize("value", [True, "true", "True", "yes", "YES", 1])
def test_opt_out_from_data_collection_is_tolerant(value: Any) -> None:
    collected = {"opt_out_requested": {"value": value, "rationale": "Asked to stop calling"}}
    outcome = map_call_event(
        with_analysis(transcription(), data_collection_results=collected), MAPPING
    )
    assert outcome.opted_out is True
    assert types(outcome) == ["called", "opted_out"]
    opted = outcome.activities[1]
    assert opted["notify_users"] is True
    assert opted["activity_id"] == activity_id_for(
        "conv_abc123", "post_call_transcription", "opted_out"
    )


@pytest.mark.parametrize("value", [False, "false", "no", None, 0, "maybe"])
def test_no_opt_out_for_false_like_values(value: Any) -> None:
    collected = {"opt_out_requested": {"value": value}}
    outcome = map_call_event(
        with_analysis(transcription(), data_collection_results=collected), MAPPING
    )
    assert outcome.opted_out is False
    assert types(outcome) == ["called"]


def test_opt_out_from_evaluation_criteria_and_on_voicemail() -> None:
    criteria = {"opt_out_requested": {"result": "success", "rationale": "Said 'stop calling'"}}
    outcome = map_call_event(
        with_analysis(transcription(), evaluation_criteria_results=criteria), MAPPING
    )
    assert outcome.opted_out is True
    # Opt-out is honoured whatever the call outcome.
    failed = with_analysis(transcription(status="failed"), evaluation_criteria_results=criteria)
    assert map_call_event(failed, MAPPING).opted_out is True


def test_opt_out_ids_are_configurable() -> None:
    collected = {"do_not_call": {"value": "yes"}}
    envelope = with_analysis(transcription(), data_collection_results=collected)
    assert map_call_event(envelope, MAPPING).opted_out is False
    custom = OutcomeMapping(opt_out_ids=("do_not_call",), opted_out_type="dnc")
    outcome = map_call_event(envelope, custom)
    assert outcome.opted_out is True
    assert types(outcome) == ["called", "dnc"]


def test_viewing_scheduled_adds_tour_requested_with_the_date() -> None:
    collected = {
        "viewing_scheduled": {"value": True},
        "viewing_date": {"value": "2025-02-20 15:00"},
    }
    outcome = map_call_event(
        with_analysis(transcription(), data_collection_results=collected), MAPPING
    )
    assert types(outcome) == ["called", "tour_requested"]
    tour = outcome.activities[1]
    assert "2025-02-20 15:00" in tour["description"]
    assert tour["notify_users"] is True
    assert tour["activity_id"] == activity_id_for(
        "conv_abc123", "post_call_transcription", "tour_requested"
    )


def test_viewing_date_alone_counts_but_an_explicit_no_wins() -> None:
    only_date = {"viewing_date": {"value": "Saturday 10am"}}
    outcome = map_call_event(
        with_analysis(transcription(), data_collection_results=only_date), MAPPING
    )
    assert types(outcome) == ["called", "tour_requested"]
    refused = {"viewing_scheduled": {"value": "false"}, "viewing_date": {"value": "Saturday"}}
    outcome = map_call_event(
        with_analysis(transcription(), data_collection_results=refused), MAPPING
    )
    assert types(outcome) == ["called"]
    no_date = {"viewing_scheduled": {"value": "yes"}, "viewing_date": {"value": None}}
    outcome = map_call_event(
        with_analysis(transcription(), data_collection_results=no_date), MAPPING
    )
    assert "(no date given)" in outcome.activities[1]["description"]


@pytest.mark.parametrize(
    ("timestamp", "expected"),
    [
        (1739537400, "2025-02-14T12:50:00+00:00"),
        ("1739537400", "2025-02-14T12:50:00+00:00"),
        (1739537400.5, "2025-02-14T12:50:00.500000+00:00"),
        ("2025-02-14T12:50:00Z", "2025-02-14T12:50:00+00:00"),
    ],
)
def test_event_timestamp_number_or_string(timestamp: Any, expected: str) -> None:
    envelope = transcription()
    envelope["event_timestamp"] = timestamp
    outcome = map_call_event(envelope, MAPPING)
    assert outcome.activities[0]["created"] == expected
    assert outcome.occurred_at == expected


def test_post_call_audio_is_ignored() -> None:
    envelope = {
        "type": "post_call_audio",
        "event_timestamp": 1739537400,
        "data": {"agent_id": "a", "conversation_id": "conv_abc123", "full_audio": "SUQz..."},
    }
    outcome = map_call_event(envelope, MAPPING)
    assert outcome.activities == ()
    assert outcome.disposition == "ignored"
    assert outcome.opted_out is False


def test_unknown_type_raises_the_specific_error() -> None:
    with pytest.raises(UnknownEventTypeError, match="conversation_started"):
        map_call_event({"type": "conversation_started", "event_timestamp": 1, "data": {}}, MAPPING)


def _break(path: list[str], value: Any) -> dict[str, Any]:
    envelope = transcription()
    target: dict[str, Any] = envelope
    for key in path[:-1]:
        target = target[key]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return envelope


_DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (["type"], _DELETE, "type"),
        (["type"], 42, "type"),
        (["data"], _DELETE, "data"),
        (["data"], ["not", "an", "object"], "data"),
        (["data", "conversation_id"], _DELETE, "conversation_id"),
        (["data", "conversation_id"], 123, "conversation_id"),
        (["event_timestamp"], _DELETE, "event_timestamp"),
        (["event_timestamp"], "yesterday", "event_timestamp"),
        (["event_timestamp"], True, "event_timestamp"),
        (["event_timestamp"], float("nan"), "event_timestamp"),
        (["event_timestamp"], 10**20, "event_timestamp"),
        (["data", "metadata"], "oops", "metadata"),
        (["data", "analysis"], 7, "analysis"),
        (["data", "analysis", "data_collection_results"], [], "data_collection_results"),
        (["data", "transcript"], "text", "transcript"),
        (["data", "conversation_initiation_client_data"], "x", "conversation_initiation"),
        (["data", "conversation_initiation_client_data", "dynamic_variables"], [1], "dynamic"),
    ],
)
def test_malformed_payloads_raise_the_specific_error(
    path: list[str], value: Any, message: str
) -> None:
    with pytest.raises(MalformedCallEventError, match=message):
        map_call_event(_break(path, value), MAPPING)


def test_non_mapping_envelope_and_error_tree() -> None:
    with pytest.raises(MalformedCallEventError):
        map_call_event([], MAPPING)  # type: ignore[arg-type]
    # Both errors are dead-lettered (poison, not retriable) and still ValueErrors.
    for error in (MalformedCallEventError("x"), UnknownEventTypeError("y")):
        assert isinstance(error, PoisonMessageError)
        assert isinstance(error, ValueError)
        assert error.retriable is False


def test_odd_optional_leaves_are_tolerated() -> None:
    meta = dict(transcription()["data"]["metadata"])
    meta["call_duration_secs"] = "n/a"
    envelope = transcription(metadata=meta, status=None, analysis=None)
    envelope["data"]["conversation_initiation_client_data"]["dynamic_variables"]["lead_id"] = 42
    outcome = map_call_event(envelope, MAPPING)
    assert outcome.lead_id is None
    assert outcome.site_uuid == SITE
    assert text_of(outcome.activities[0]) == "AI call completed."


def test_is_own_activity_recognizes_our_source() -> None:
    ours = map_call_event(transcription(), MAPPING).activities[0]
    assert is_own_activity(ours, MAPPING)
    echoed = {"type": "called", "source": " ai voice agent (realgeeks-sync) ", "description": ""}
    assert is_own_activity(echoed, MAPPING)
    assert not is_own_activity({"type": "called", "source": "LeadManager"}, MAPPING)
    assert not is_own_activity({"type": "called"}, MAPPING)
    custom = OutcomeMapping(source="Ava AI")
    assert not is_own_activity(ours, custom)
    assert is_own_activity({"source": "Ava AI"}, custom)


def collected(**values: Any) -> dict[str, Any]:
    """Data-collection results shaped like the docs' (id -> {value, rationale, json_schema})."""
    return {k: {"value": v, "rationale": "", "json_schema": {}} for k, v in values.items()}


def test_every_activity_names_its_conversation() -> None:
    with_agent = map_call_event(transcription(), MAPPING).activities[0]
    assert with_agent["description"].endswith(f" {REFERENCE}")
    envelope = transcription()
    del envelope["data"]["agent_id"]
    without = map_call_event(envelope, MAPPING).activities[0]
    assert without["description"].endswith(" Conversation conv_abc123.")
    odd = map_call_event(transcription(conversation_id="conv/../x?y"), MAPPING).activities[0]
    assert "conv%2F..%2Fx%3Fy?agent=agent_xyz" in odd["description"]  # quoted, not a path


def test_a_callback_request_is_a_hot_activity_with_its_time() -> None:
    envelope = with_analysis(
        transcription(),
        data_collection_results=collected(callback_requested=True, callback_time="tomorrow 5pm"),
    )
    outcome = map_call_event(envelope, MAPPING)
    assert outcome.kinds == ("called", "callback_requested")
    called, callback = outcome.activities
    assert text_of(callback) == "Lead asked to be called back at tomorrow 5pm during the AI call"
    assert callback["type"] == "note"
    assert (called["notify_users"], callback["notify_users"]) == (False, True)
    no = with_analysis(transcription(), data_collection_results=collected(callback_requested=False))
    assert map_call_event(no, MAPPING).kinds == ("called",)


def test_which_outcomes_are_hot_is_configurable() -> None:
    envelope = with_analysis(
        transcription(),
        data_collection_results=collected(viewing_scheduled=True, callback_requested=True),
    )
    mapping = OutcomeMapping(notify_kinds=frozenset({"called"}))
    notified = {a["type"]: a["notify_users"] for a in map_call_event(envelope, mapping).activities}
    assert notified == {"called": True, "tour_requested": False, "note": False}


def test_what_the_agent_collected_becomes_a_lead_update() -> None:
    envelope = with_analysis(
        transcription(),
        data_collection_results=collected(
            timeframe="3-6 months", budget="$450k", pre_approved=True, viewing_date=None
        ),
    )
    update = map_call_event(envelope, MAPPING).lead_update
    assert dict(update.fields) == {"timeframe": "3-6 months"}
    assert update.tags == ("Budget $450k", "Pre-approved")
    # Nothing collected, or a call that never held a conversation: nothing to write.
    assert not map_call_event(transcription(), MAPPING).lead_update
    failed = with_analysis(
        transcription(status="failed"), data_collection_results=collected(timeframe="soon")
    )
    assert not map_call_event(failed, MAPPING).lead_update


def test_an_inbound_call_says_so_and_carries_the_caller() -> None:
    meta = copy.deepcopy(transcription()["data"]["metadata"])
    meta["phone_call"]["direction"] = "inbound"
    outcome = map_call_event(transcription(metadata=meta), MAPPING)
    assert (outcome.direction, outcome.external_number) == ("inbound", "+18088172382")
    assert text_of(outcome.activities[0]).startswith("Inbound AI call completed.")
    assert outcome.agent_id == "agent_xyz"
    web = copy.deepcopy(transcription())
    del web["data"]["metadata"]["phone_call"]
    assert map_call_event(web, MAPPING).direction is None


def test_a_site_names_its_own_activity_types_and_the_ids_stay() -> None:
    collected = {"viewing_scheduled": {"value": True}}
    body = with_analysis(transcription(), data_collection_results=collected)
    own = with_activity_types(MAPPING, {"tour_requested": "showing_request", "called": "ai_call"})
    outcome = map_call_event(body, own)
    assert types(outcome) == ["ai_call", "showing_request"]
    # Renaming a type must not make a replay post the activity again.
    default = map_call_event(body, MAPPING)
    assert [a["activity_id"] for a in outcome.activities] == [
        a["activity_id"] for a in default.activities
    ]
    assert with_activity_types(MAPPING, {}) is MAPPING


def test_every_outcome_a_site_may_rename_has_its_activity_type() -> None:
    # The sites file's [outcomes] names and the mapping's fields are one list.
    own = {kind: f"own_{kind}" for kind in OUTCOME_ACTIVITY_KINDS}
    renamed = with_activity_types(MAPPING, own)
    assert set(OUTCOME_ACTIVITY_KINDS) <= set(KINDS)
    assert [getattr(renamed, f"{k}_type") for k in OUTCOME_ACTIVITY_KINDS] == list(own.values())
    # Types that rename nothing leave the mapping as it is (no second mapping of a call).
    assert with_activity_types(MAPPING, {"called": MAPPING.called_type}) is MAPPING
    # The default hot outcomes are RGSYNC_HOT_OUTCOMES' default.
    settings = Settings.from_env({"RGSYNC_REALGEEKS_SECRETS": "s"})
    assert outcome_mapping(settings).notify_kinds == DEFAULT_NOTIFY_KINDS == MAPPING.notify_kinds
    assert {"tour_requested", "callback_requested", "opted_out"} == DEFAULT_NOTIFY_KINDS
