"""Map ElevenLabs post-call webhooks to Real Geeks activities (pure, no I/O).

One envelope ``{type, event_timestamp, data}`` gives one ``CallOutcome``:

* ``post_call_transcription``, call completed -> ``called`` (duration, outcome, summary).
* ... reached voicemail (voicemail_detection tool result, ``features_usage`` flag, or a
  termination reason mentioning voicemail) -> ``note`` "AI call reached voicemail".
* ... ``status: failed`` or ``metadata.error`` -> ``note`` saying the call failed.
* ... opt-out requested (data collection or evaluation criterion) -> also ``opted_out``,
  and ``CallOutcome.opted_out`` is True.
* ... viewing scheduled (data collection) -> also ``tour_requested`` with the date.
* ... callback asked for (data collection) -> also ``callback_requested`` with the time.
* ``call_initiation_failure`` (busy, no-answer, unknown) -> ``note`` with the reason.
* ``post_call_audio`` -> no activities.

Every activity names its conversation (the id, and a link to it in the ElevenLabs
dashboard when the agent id is known); activities of the kinds in ``notify_kinds`` (the
hot outcomes) set ``notify_users`` so the lead's assigned agent hears of them at once.
What the agent collected becomes a ``LeadUpdate`` (app/domain/lead_fields.py): fields and
tags to PATCH onto the lead. An inbound call (``metadata.phone_call.direction``) says so
and carries the caller's number, by which its lead can be found.

Validation: the envelope, ``data`` and every nested container we read must have the
documented type, else ``MalformedCallEventError``. Optional scalar leaves of the wrong
type (a non-numeric duration, say) are treated as absent: one odd field should not
dead-letter a call record that is otherwise usable.

``activity_id`` is sha256(conversation_id, event type, activity kind): the same webhook
delivered twice gives the same ids, so the writer posts each activity once.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from realgeeks_sync.app.core.errors import ConfigError, PoisonMessageError
from realgeeks_sync.app.core.settings import DEFAULT_HOT_OUTCOMES, Settings
from realgeeks_sync.app.core.sites import OUTCOME_ACTIVITY_KINDS
from realgeeks_sync.app.domain.lead_fields import (
    DEFAULT_LEAD_FIELD_RULES,
    LeadFieldRule,
    LeadFieldRuleError,
    LeadUpdate,
    lead_update,
    parse_rules,
)

__all__ = [
    "DEFAULT_ACTIVITY_SOURCE",
    "DEFAULT_NOTIFY_KINDS",
    "EVENT_TYPES",
    "KINDS",
    "POST_CALL_TRANSCRIPTION",
    "CallOutcome",
    "MalformedCallEventError",
    "OutcomeMapping",
    "UnknownEventTypeError",
    "activity_id_for",
    "conversation_reference",
    "is_own_activity",
    "map_call_event",
    "outcome_mapping",
    "with_activity_types",
]

DEFAULT_ACTIVITY_SOURCE = "AI Voice Agent (realgeeks-sync)"
POST_CALL_TRANSCRIPTION = "post_call_transcription"
CALL_INITIATION_FAILURE = "call_initiation_failure"
POST_CALL_AUDIO = "post_call_audio"
EVENT_TYPES = (POST_CALL_TRANSCRIPTION, CALL_INITIATION_FAILURE, POST_CALL_AUDIO)

# Activity kinds: stable names used in activity ids, independent of the configured
# Real Geeks type names (renaming a type must not make a replay post it again).
KIND_CALLED = "called"
KIND_NOTE = "note"
KIND_OPTED_OUT = "opted_out"
KIND_TOUR_REQUESTED = "tour_requested"
KIND_CALLBACK_REQUESTED = "callback_requested"
KINDS = (KIND_CALLED, KIND_NOTE, KIND_OPTED_OUT, KIND_TOUR_REQUESTED, KIND_CALLBACK_REQUESTED)


def _kind_set(text: str) -> frozenset[str]:
    """The kinds a comma-separated list names (RGSYNC_HOT_OUTCOMES)."""
    return frozenset(k.strip() for k in text.split(",") if k.strip())


# The hot outcomes: the assigned agent is notified at once (and of an opt-out, so nobody
# calls the person again by hand). RGSYNC_HOT_OUTCOMES' default, read the same way.
DEFAULT_NOTIFY_KINDS = _kind_set(DEFAULT_HOT_OUTCOMES)
DEFAULT_CONVERSATION_URL = (
    "https://elevenlabs.io/app/agents/history/{conversation_id}?agent={agent_id}"
)

_TRUE_WORDS = frozenset({"true", "yes", "y", "1", "success"})
_VOICEMAIL_TOOL = "voicemail_detection"
_VOICEMAIL_RESULT = "voicemail_detection_success"
_FAILURE_REASONS = {
    "busy": "the line was busy",
    "no-answer": "no answer",
    "unknown": "unknown reason",
}
_ELLIPSIS = "…"


class MalformedCallEventError(PoisonMessageError, ValueError):
    """An ElevenLabs webhook envelope that does not have the documented shape."""


class UnknownEventTypeError(PoisonMessageError, ValueError):
    """An ElevenLabs webhook type this service does not handle."""


@dataclass(frozen=True)
class OutcomeMapping:
    """How call outcomes become Real Geeks activities; every name is configurable."""

    source: str = DEFAULT_ACTIVITY_SOURCE
    called_type: str = "called"
    note_type: str = "note"
    opted_out_type: str = "opted_out"
    tour_requested_type: str = "tour_requested"
    # Real Geeks documents "note"; a callback type of its own is not known to exist.
    callback_requested_type: str = "note"
    # Data-collection ids (and evaluation-criteria ids, for opt-out) read from analysis.
    opt_out_ids: tuple[str, ...] = ("opt_out_requested",)
    viewing_scheduled_ids: tuple[str, ...] = ("viewing_scheduled",)
    viewing_date_ids: tuple[str, ...] = ("viewing_date",)
    callback_requested_ids: tuple[str, ...] = ("callback_requested",)
    callback_time_ids: tuple[str, ...] = ("callback_time",)
    # Kinds whose activity asks Real Geeks to notify the assigned agent (hot outcomes).
    notify_kinds: frozenset[str] = DEFAULT_NOTIFY_KINDS
    # What the agent collected -> lead fields and tags (RGSYNC_OUTCOME_LEAD_FIELDS).
    lead_field_rules: tuple[LeadFieldRule, ...] = parse_rules(DEFAULT_LEAD_FIELD_RULES)
    # The conversation in the ElevenLabs dashboard; {conversation_id} and {agent_id}.
    conversation_url: str = DEFAULT_CONVERSATION_URL
    max_description_chars: int = 1000
    max_summary_chars: int = 600


@dataclass(frozen=True)
class CallOutcome:
    """What one ElevenLabs webhook means for the lead and which activities to write."""

    event_type: str
    conversation_id: str | None
    lead_id: str | None
    site_uuid: str | None
    # completed | voicemail | failed | busy | no-answer | unknown | ignored
    disposition: str
    opted_out: bool
    activities: tuple[dict[str, Any], ...]
    occurred_at: str | None
    # The dialer's attempt id, echoed in the dynamic variables of calls it placed.
    attempt_id: str | None = None
    agent_id: str | None = None
    # "inbound" (the lead called the agent's number), "outbound", or None (not a phone call).
    direction: str | None = None
    # The lead's side of a phone call as sent (the caller of an inbound call).
    external_number: str | None = None
    # Fields and tags for the lead from what the agent collected.
    lead_update: LeadUpdate = field(default_factory=LeadUpdate)
    # Activity kinds written (stable names: called, note, opted_out, ...).
    kinds: tuple[str, ...] = ()


def outcome_mapping(settings: Settings) -> OutcomeMapping:
    """The mapping the settings configure (activity source, lead fields, hot outcomes).

    Raises:
        ConfigError: RGSYNC_OUTCOME_LEAD_FIELDS or RGSYNC_HOT_OUTCOMES cannot be read.
    """
    try:
        rules = parse_rules(settings.outcome_lead_fields)
    except LeadFieldRuleError as exc:
        raise ConfigError(f"RGSYNC_OUTCOME_LEAD_FIELDS: {exc}") from None
    hot = _kind_set(settings.hot_outcomes)
    unknown = sorted(hot - set(KINDS))
    if unknown:
        raise ConfigError(
            f"RGSYNC_HOT_OUTCOMES: unknown outcome {unknown[0]!r} (known: {', '.join(KINDS)})"
        )
    return OutcomeMapping(
        source=settings.own_activity_source, notify_kinds=hot, lead_field_rules=rules
    )


def with_activity_types(mapping: OutcomeMapping, types: Mapping[str, str]) -> OutcomeMapping:
    """``mapping`` with a site's own Real Geeks activity types (sites file ``outcomes``);
    ``mapping`` itself when they change nothing."""
    changes: dict[str, Any] = {
        f"{kind}_type": types[kind]
        for kind in OUTCOME_ACTIVITY_KINDS
        if kind in types and types[kind] != getattr(mapping, f"{kind}_type")
    }
    return replace(mapping, **changes) if changes else mapping


def activity_id_for(conversation_id: str, event_type: str, kind: str) -> str:
    """Return the deterministic activity id for one activity of one webhook."""
    raw = f"elevenlabs\x1f{conversation_id}\x1f{event_type}\x1f{kind}"
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def is_own_activity(activity: Mapping[str, Any], mapping: OutcomeMapping) -> bool:
    """Return True when a Real Geeks activity is one this service wrote (by ``source``)."""
    if not isinstance(activity, Mapping):
        return False
    source = activity.get("source")
    return isinstance(source, str) and source.strip().casefold() == mapping.source.casefold()


def map_call_event(envelope: Mapping[str, Any], mapping: OutcomeMapping) -> CallOutcome:
    """Map one ElevenLabs webhook envelope to a ``CallOutcome``.

    Raises:
        UnknownEventTypeError: ``type`` is a string this service does not handle.
        MalformedCallEventError: the envelope or its data has the wrong shape.
    """
    if not isinstance(envelope, Mapping):
        raise MalformedCallEventError("envelope is not a JSON object")
    event_type = envelope.get("type")
    if not isinstance(event_type, str) or not event_type:
        raise MalformedCallEventError("envelope has no string 'type'")
    if event_type not in EVENT_TYPES:
        raise UnknownEventTypeError(f"unhandled ElevenLabs event type {event_type[:64]!r}")
    data = envelope.get("data")
    if event_type == POST_CALL_AUDIO:
        # Audio is not kept; read only what is cheap and never fail on it.
        conversation_id = data.get("conversation_id") if isinstance(data, Mapping) else None
        return CallOutcome(
            event_type=event_type,
            conversation_id=conversation_id if isinstance(conversation_id, str) else None,
            lead_id=None,
            site_uuid=None,
            disposition="ignored",
            opted_out=False,
            activities=(),
            occurred_at=None,
        )
    if not isinstance(data, Mapping):
        raise MalformedCallEventError(f"{event_type}: 'data' is not a JSON object")
    conversation_id = data.get("conversation_id")
    if not isinstance(conversation_id, str) or not conversation_id.strip():
        raise MalformedCallEventError(f"{event_type}: data.conversation_id missing or not a string")
    created = _timestamp(envelope.get("event_timestamp"), event_type)
    agent_id = _id_text(data.get("agent_id"))
    builder = _ActivityBuilder(mapping, conversation_id, event_type, created, agent_id)
    lead_id, site_uuid, attempt_id = _correlation(data, event_type)
    direction, external = _phone_call(data)
    update = LeadUpdate()
    if event_type == CALL_INITIATION_FAILURE:
        disposition = _initiation_failure(data, builder)
        opted_out = False
    else:
        disposition, opted_out, update = _transcription(
            data, builder, inbound=direction == "inbound"
        )
    return CallOutcome(
        event_type=event_type,
        conversation_id=conversation_id,
        lead_id=lead_id,
        site_uuid=site_uuid,
        disposition=disposition,
        opted_out=opted_out,
        activities=tuple(builder.activities),
        occurred_at=created,
        attempt_id=attempt_id,
        agent_id=agent_id,
        direction=direction,
        external_number=external,
        lead_update=update,
        kinds=tuple(builder.kinds),
    )


def conversation_reference(
    mapping: OutcomeMapping, conversation_id: str, agent_id: str | None
) -> str:
    """How an activity names its conversation: its id, and a link to it in the ElevenLabs
    dashboard when the agent is known."""
    if agent_id:
        url = mapping.conversation_url.format(
            conversation_id=quote(conversation_id, safe=""), agent_id=quote(agent_id, safe="")
        )
        return f"Conversation {conversation_id}: {url}"
    return f"Conversation {conversation_id}."


class _ActivityBuilder:
    """Collects the activities of one webhook with their deterministic ids."""

    def __init__(
        self,
        mapping: OutcomeMapping,
        conversation_id: str,
        event_type: str,
        created: str,
        agent_id: str | None,
    ) -> None:
        self.mapping = mapping
        self.conversation_id = conversation_id
        self.event_type = event_type
        self.created = created
        self.reference = conversation_reference(mapping, conversation_id[:200], agent_id)
        self.activities: list[dict[str, Any]] = []
        self.kinds: list[str] = []

    def add(self, kind: str, activity_type: str, description: str) -> None:
        """Append one activity in Real Geeks shape plus ``activity_id``; the description
        ends with the conversation, which is never cut."""
        room = self.mapping.max_description_chars - len(self.reference) - 1
        text = _bounded(description, max(room, 0))
        self.kinds.append(kind)
        self.activities.append(
            {
                "activity_id": activity_id_for(self.conversation_id, self.event_type, kind),
                "type": activity_type,
                "source": self.mapping.source,
                "description": f"{text} {self.reference}" if text else self.reference,
                "created": self.created,
                "notify_users": kind in self.mapping.notify_kinds,
            }
        )


def _initiation_failure(data: Mapping[str, Any], builder: _ActivityBuilder) -> str:
    """Add the note for a call that never connected; return the disposition."""
    raw = data.get("failure_reason")
    reason = raw.strip().lower()[:64] if isinstance(raw, str) and raw.strip() else "unknown"
    _optional_mapping(data, "metadata", "call_initiation_failure: data.metadata")
    explanation = _FAILURE_REASONS.get(reason)
    text = f"AI call could not connect ({reason})"
    if explanation:
        text = f"{text}: {explanation}"
    builder.add(KIND_NOTE, builder.mapping.note_type, text)
    return reason if reason in _FAILURE_REASONS else "unknown"


def _transcription(
    data: Mapping[str, Any], builder: _ActivityBuilder, *, inbound: bool
) -> tuple[str, bool, LeadUpdate]:
    """Add the activities for a finished call; return (disposition, opted_out, lead update)."""
    where = "post_call_transcription: data"
    metadata = _optional_mapping(data, "metadata", f"{where}.metadata")
    analysis = _optional_mapping(data, "analysis", f"{where}.analysis")
    transcript = data.get("transcript")
    if transcript is not None and (
        not isinstance(transcript, Sequence) or isinstance(transcript, str | bytes)
    ):
        raise MalformedCallEventError(f"{where}.transcript is not a list")
    collected = _optional_mapping(
        analysis, "data_collection_results", f"{where}.analysis.data_collection_results"
    )
    criteria = _optional_mapping(
        analysis, "evaluation_criteria_results", f"{where}.analysis.evaluation_criteria_results"
    )
    mapping = builder.mapping
    status = data.get("status")
    status = status.strip().lower() if isinstance(status, str) else ""
    error = metadata.get("error")
    termination = metadata.get("termination_reason")
    termination = termination if isinstance(termination, str) else ""

    if status == "failed" or _present(error):
        disposition = "failed"
        builder.add(KIND_NOTE, mapping.note_type, f"AI call failed: {_error_text(error)}")
    elif _reached_voicemail(transcript or (), metadata, termination):
        disposition = "voicemail"
        builder.add(KIND_NOTE, mapping.note_type, "AI call reached voicemail")
    else:
        disposition = "completed"
        text = _called_text(status, metadata, analysis, mapping)
        builder.add(KIND_CALLED, mapping.called_type, f"Inbound {text}" if inbound else text)

    opted_out = any(
        _collected_true(collected, i) or _criterion_met(criteria, i) for i in mapping.opt_out_ids
    )
    if opted_out:
        builder.add(
            KIND_OPTED_OUT,
            mapping.opted_out_type,
            "Lead asked not to be called again during the AI call (do not call)",
        )
    viewing_date = _requested(collected, mapping.viewing_scheduled_ids, mapping.viewing_date_ids)
    if viewing_date is not None:
        when = f" for {viewing_date}" if viewing_date else " (no date given)"
        builder.add(
            KIND_TOUR_REQUESTED,
            mapping.tour_requested_type,
            f"Lead asked for a property viewing{when} during the AI call",
        )
    callback = _requested(collected, mapping.callback_requested_ids, mapping.callback_time_ids)
    if callback is not None:
        when = f" at {callback}" if callback else " (no time given)"
        builder.add(
            KIND_CALLBACK_REQUESTED,
            mapping.callback_requested_type,
            f"Lead asked to be called back{when} during the AI call",
        )
    if disposition != "completed":
        return disposition, opted_out, LeadUpdate()
    return disposition, opted_out, lead_update(collected, criteria, mapping.lead_field_rules)


def _called_text(
    status: str, metadata: Mapping[str, Any], analysis: Mapping[str, Any], mapping: OutcomeMapping
) -> str:
    """Describe a completed call as the seed words it: "AI call completed. Duration: 180s.
    Sentiment: positive. <summary>" (each part only when the webhook has it)."""
    parts = ["AI call completed"]
    duration = _number(metadata.get("call_duration_secs"))
    if duration is not None:
        parts.append(f"Duration: {round(duration)}s")
    sentiment = _sentiment(analysis)
    if sentiment:
        parts.append(f"Sentiment: {sentiment}")
    if status and status != "done":
        parts.append(f"Status: {status[:32]}")
    summary = analysis.get("transcript_summary")
    if isinstance(summary, str) and summary.strip():
        parts.append(_bounded(" ".join(summary.split()), mapping.max_summary_chars))
    text = ". ".join(parts)
    return text if text.endswith((".", "!", "?", _ELLIPSIS)) else text + "."


def _sentiment(analysis: Mapping[str, Any]) -> str | None:
    """The call's sentiment when the analysis carries one (a field or a collected item)."""
    value = analysis.get("sentiment")
    if not isinstance(value, str):
        collected = analysis.get("data_collection_results")
        if isinstance(collected, Mapping):
            value = _collected_value(collected, "sentiment")
    if isinstance(value, str) and value.strip() and value.strip().lower() not in {"null", "none"}:
        return " ".join(value.split())[:40]
    return None


def _reached_voicemail(
    transcript: Sequence[Any], metadata: Mapping[str, Any], termination: str
) -> bool:
    """Return True when any documented voicemail signal is present."""
    if "voicemail" in termination.lower() or "voice mail" in termination.lower():
        return True
    features = metadata.get("features_usage")
    if isinstance(features, Mapping):
        detection = features.get("voicemail_detection")
        if isinstance(detection, Mapping) and detection.get("used") is True:
            return True
    for turn in transcript:
        if not isinstance(turn, Mapping):
            continue
        results = turn.get("tool_results")
        if not isinstance(results, Sequence) or isinstance(results, str):
            continue
        for result in results:
            if isinstance(result, Mapping) and _is_voicemail_result(result):
                return True
    return False


def _is_voicemail_result(result: Mapping[str, Any]) -> bool:
    """Return True for a voicemail_detection tool result that did not error."""
    inner = result.get("result")
    if isinstance(inner, Mapping) and inner.get("result_type") == _VOICEMAIL_RESULT:
        return True
    return result.get("tool_name") == _VOICEMAIL_TOOL and result.get("is_error") is not True


def _requested(
    collected: Mapping[str, Any], flag_ids: tuple[str, ...], when_ids: tuple[str, ...]
) -> str | None:
    """The time asked for ("" when asked without one), or None if nothing was asked.

    A viewing or a callback: a true flag, or a time without any flag; an explicit "no" wins.
    """
    date_text = ""
    for item_id in when_ids:
        value = _collected_value(collected, item_id)
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            text = " ".join(str(value).split())
            if text and text.lower() not in {"null", "none", "n/a"}:
                date_text = text[:100]
                break
    flags = [_collected_value(collected, i) for i in flag_ids]
    flags = [f for f in flags if f is not None]
    if any(_truthy(f) for f in flags):
        return date_text
    if date_text and not flags:
        return date_text
    return None


def _collected_value(collected: Mapping[str, Any], item_id: str) -> Any:
    """Return a data-collection item's ``value`` (None when missing)."""
    item = collected.get(item_id)
    return item.get("value") if isinstance(item, Mapping) else None


def _collected_true(collected: Mapping[str, Any], item_id: str) -> bool:
    """Return True when a data-collection item's value is true-ish."""
    return _truthy(_collected_value(collected, item_id))


def _criterion_met(criteria: Mapping[str, Any], criterion_id: str) -> bool:
    """Return True when an evaluation criterion's result is success/true."""
    item = criteria.get(criterion_id)
    return isinstance(item, Mapping) and _truthy(item.get("result"))


def _truthy(value: Any) -> bool:
    """Return True for True, 1, and "true"/"yes"/"y"/"1"/"success" in any case."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value == 1
    return isinstance(value, str) and value.strip().lower() in _TRUE_WORDS


def _correlation(
    data: Mapping[str, Any], event_type: str
) -> tuple[str | None, str | None, str | None]:
    """Return (lead_id, site_uuid, call_attempt_id) from the echoed dynamic variables."""
    client_data = _optional_mapping(
        data,
        "conversation_initiation_client_data",
        f"{event_type}: data.conversation_initiation_client_data",
    )
    variables = _optional_mapping(
        client_data,
        "dynamic_variables",
        f"{event_type}: data.conversation_initiation_client_data.dynamic_variables",
    )
    return (
        _id_text(variables.get("lead_id")),
        _id_text(variables.get("site_uuid")),
        _id_text(variables.get("call_attempt_id")),
    )


def _phone_call(data: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(direction, the lead's number as sent) from ``metadata.phone_call``, when a phone call."""
    metadata = data.get("metadata")
    phone_call = metadata.get("phone_call") if isinstance(metadata, Mapping) else None
    if not isinstance(phone_call, Mapping):
        return None, None
    direction = phone_call.get("direction")
    direction = direction.strip().lower() if isinstance(direction, str) else None
    external = _id_text(phone_call.get("external_number"))
    return (direction if direction in ("inbound", "outbound") else None), external


def _id_text(value: Any) -> str | None:
    """Return a non-empty id string, else None."""
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def _optional_mapping(parent: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any]:
    """Return ``parent[key]`` when it is an object, {} when absent or null.

    Raises:
        MalformedCallEventError: the value is present but not an object.
    """
    value = parent.get(key)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise MalformedCallEventError(f"{where} is not a JSON object")
    return value


def _timestamp(value: Any, event_type: str) -> str:
    """Return ``event_timestamp`` (unix seconds as number or string, or ISO 8601) as UTC ISO.

    Raises:
        MalformedCallEventError: missing, not a number/string, or not a valid time.
    """
    seconds: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str) and value.strip():
        text = value.strip()
        try:
            seconds = float(text)
        except ValueError:
            try:
                parsed = datetime.fromisoformat(text)
            except ValueError:
                raise MalformedCallEventError(
                    f"{event_type}: event_timestamp is not a time"
                ) from None
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=UTC)
            return parsed.astimezone(UTC).isoformat()
    else:
        raise MalformedCallEventError(f"{event_type}: event_timestamp missing or not a number")
    if not math.isfinite(seconds):
        raise MalformedCallEventError(f"{event_type}: event_timestamp is not finite")
    try:
        return datetime.fromtimestamp(seconds, tz=UTC).isoformat()
    except (OverflowError, OSError, ValueError):
        raise MalformedCallEventError(f"{event_type}: event_timestamp out of range") from None


def _number(value: Any) -> float | None:
    """Return a finite non-negative number, else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    if isinstance(value, int | float) and math.isfinite(value) and value >= 0:
        return float(value)
    return None


def _error_text(error: Any) -> str:
    """Describe ``metadata.error`` (code and reason) without raw payload dumps."""
    if isinstance(error, Mapping):
        parts = [str(error[k]) for k in ("code", "reason") if _present(error.get(k))]
        if parts:
            return _bounded(" ".join(" - ".join(parts).split()), 300)
    if isinstance(error, str) and error.strip():
        return _bounded(" ".join(error.split()), 300)
    return "error reported by the voice platform"


def _present(value: Any) -> bool:
    """Return True for a value that carries information (not None/empty)."""
    if value is None or value is False:
        return False
    return not (isinstance(value, str | Mapping | list) and not value)


def _bounded(text: str, limit: int) -> str:
    """Cut ``text`` to ``limit`` characters, marking the cut."""
    if len(text) <= limit:
        return text
    return text[: max(limit - 1, 0)].rstrip() + _ELLIPSIS
