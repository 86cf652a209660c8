"""map_call_outcomes: ElevenLabs post-call webhooks -> activities for the lead.

The lead is found from the dynamic variables the dialer sent (lead_id, site_uuid), else
from the conversation id the dialer recorded (``record_conversations`` keeps that table,
keyed by conversation id like the raw topic, so both live on the same partition).
"""

from __future__ import annotations

import json
import logging
from typing import Any

import faust

from realgeeks_sync.agents.processing import Output, process_idempotently, utc_now_iso
from realgeeks_sync.app.core.errors import PoisonMessageError
from realgeeks_sync.app.domain.call_outcomes import OutcomeMapping, map_call_event
from realgeeks_sync.app.domain.dialing.events import CallEnded, outcome_record
from realgeeks_sync.app.domain.dialing.optouts import optout_event, optout_key
from realgeeks_sync.app.domain.events import activity_event, lead_key, outbound_activity
from realgeeks_sync.app.streaming.pipeline import Pipeline

__all__ = ["UnplacedCallError", "plan_outputs", "register"]

log = logging.getLogger(__name__)


class UnplacedCallError(PoisonMessageError):
    """A call event whose lead we cannot find (yet): dead-lettered, replayable."""

    retriable = True


def plan_outputs(
    body: dict[str, Any], mapping: OutcomeMapping, conversations: Any, received_at: str
) -> list[Output]:
    """The records one ElevenLabs webhook produces (pure apart from the table read).

    Activities for the lead (through the outbox), the call's outcome for the dialer (its
    line is free, it may plan a redial), and an optout.v1 event when the person asked not
    to be called.

    Raises:
        UnknownEventTypeError, MalformedCallEventError: from the mapping.
        UnplacedCallError: no lead can be found for the conversation.
    """
    outcome = map_call_event(body, mapping)
    if not outcome.activities and not outcome.opted_out:
        return []
    site, lead = outcome.site_uuid, outcome.lead_id
    attempt_id = outcome.attempt_id
    if not (site and lead) and outcome.conversation_id:
        known = conversations.get(outcome.conversation_id)
        if isinstance(known, dict):
            site, lead = known.get("site_uuid"), known.get("lead_id")
            attempt_id = attempt_id or known.get("attempt_id")
    if not (site and lead):
        raise UnplacedCallError(
            f"no lead for conversation {outcome.conversation_id or '?'}: "
            "no lead_id/site_uuid dynamic variables and no recorded call"
        )
    key = lead_key(site, lead)
    outputs: list[Output] = []
    for activity in outcome.activities:
        activity_id = activity["activity_id"]
        outputs.append(
            Output(
                "activities",
                key,
                activity_event(
                    event_id=activity_id,
                    site_uuid=site,
                    lead_id=lead,
                    direction="outbound",
                    activity=activity,
                ),
            )
        )
        outputs.append(
            Output(
                "activities_outbound",
                key,
                outbound_activity(
                    activity_id=activity_id, site_uuid=site, lead_id=lead, activity=activity
                ),
            )
        )
    at = outcome.occurred_at or received_at
    if outcome.opted_out:
        event = optout_event(
            site_uuid=site,
            subject="lead",
            value=lead,
            source="elevenlabs",
            at=at,
            reason="asked_during_call",
            by=outcome.conversation_id,
        )
        outputs.append(Output("optouts", optout_key(site, lead), event))
    if outcome.disposition != "ignored":
        ended = CallEnded(
            site_uuid=site,
            lead_id=lead,
            conversation_id=outcome.conversation_id,
            outcome=outcome.disposition,
            attempt_id=attempt_id if isinstance(attempt_id, str) else None,
            opted_out=outcome.opted_out,
        )
        outputs.append(Output("dialer_events", key, outcome_record(ended)))
    return outputs


def register(p: Pipeline) -> None:
    """Register map_call_outcomes."""
    mapping = OutcomeMapping(source=p.settings.own_activity_source)
    conversations = p.tables.conversations

    async def decide(envelope: dict[str, Any]) -> list[Output]:
        try:
            body = json.loads(envelope["body"])
        except ValueError as exc:
            raise PoisonMessageError("ElevenLabs body is not JSON") from exc
        return plan_outputs(
            body, mapping, conversations, envelope.get("received_at") or utc_now_iso()
        )

    @p.app.agent(
        p.topics.raw_elevenlabs,
        name=p.settings.topic("map_call_outcomes"),
        isolated_partitions=True,
    )
    async def map_call_outcomes(stream: faust.StreamT) -> None:
        async for event in p.sequence.events(stream):
            await process_idempotently(
                p,
                event,
                source="elevenlabs",
                table=p.tables.processed_messages,
                decide=decide,
                key_of=_elevenlabs_key,
            )


def _elevenlabs_key(envelope: dict[str, Any], _record_key: str) -> str:
    return f"elevenlabs|{envelope['message_id']}"
