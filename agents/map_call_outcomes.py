"""map_call_outcomes: ElevenLabs post-call webhooks (and reconcile requests) -> what the
call means for its lead.

The lead is found, in this order, from the dynamic variables echoed in the webhook (the
dialer's for an outbound call, the pre-call webhook's answer for an inbound one), from the
conversation id the dialer or the pre-call webhook recorded (``record_conversations``
keeps that table, keyed by conversation id like the raw topic, so both live on the same
partition), and for an inbound call from the caller's number (this worker's caller
directory, app/streaming/caller_directory.py). An inbound call from a number no lead has
is dead-lettered for review (``UnknownCallerError``, not retried: nothing will place it
by itself); any other call without a lead is dead-lettered as retriable.

One outcome per conversation id (the ``conversation_outcomes`` table): the webhook and a
reconciliation of the same call (app/domain/reconciliation.py) write once, whichever
comes first. Outputs: activities for the lead (through the outbox), the lead's new fields
and tags (realgeeks.leads.outbound, one PATCH), the call's outcome for the lead's call
history (sync.call-outcomes) and, for calls the dialer placed, for the dialer; an
optout.v1 event when the person asked not to be called.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, MutableMapping
from typing import Any

import faust

from realgeeks_sync.agents.processing import (
    Output,
    loads_object,
    process_idempotently,
    utc_now_iso,
)
from realgeeks_sync.app.clients.elevenlabs import ElevenLabsClient, ElevenLabsClients
from realgeeks_sync.app.core.errors import PoisonMessageError
from realgeeks_sync.app.core.sites import SiteDirectory
from realgeeks_sync.app.domain.call_outcomes import (
    POST_CALL_TRANSCRIPTION,
    CallOutcome,
    OutcomeMapping,
    map_call_event,
    outcome_mapping,
    with_activity_types,
)
from realgeeks_sync.app.domain.callers import choose, served_by
from realgeeks_sync.app.domain.dialing.events import CallEnded, outcome_record
from realgeeks_sync.app.domain.dialing.optouts import e164_or_none, optout_event, optout_key
from realgeeks_sync.app.domain.events import (
    activity_event,
    call_outcome_event,
    lead_key,
    lead_update_record,
    outbound_activity,
)
from realgeeks_sync.app.domain.lead_fields import lead_update_id_for
from realgeeks_sync.app.domain.reconciliation import (
    FINISHED,
    RECONCILE_SOURCE,
    webhook_from_detail,
)
from realgeeks_sync.app.streaming.pipeline import Pipeline

__all__ = [
    "ConversationNotFinishedError",
    "FindCaller",
    "UnknownCallerError",
    "UnplacedCallError",
    "plan_outputs",
    "register",
]

log = logging.getLogger(__name__)

FindCaller = Callable[[str, str | None], tuple[str, str] | None]
"""(caller's E.164 number, called agent id) -> (site_uuid, lead_id) of the caller, if known."""

_DIRECTORY_WAIT_S = 30.0


class UnplacedCallError(PoisonMessageError):
    """A call event whose lead we cannot find (yet): dead-lettered, replayable."""

    retriable = True


class UnknownCallerError(PoisonMessageError):
    """An inbound call from a number no lead of a served site has: kept for review."""


class ConversationNotFinishedError(PoisonMessageError):
    """A reconcile request for a conversation ElevenLabs has not finished analysing."""

    retriable = True


def plan_outputs(
    body: dict[str, Any],
    mapping: OutcomeMapping,
    conversations: Any,
    received_at: str,
    *,
    outcomes: MutableMapping[str, Any] | None = None,
    message_id: str | None = None,
    find_caller: FindCaller | None = None,
    reconciled: bool = False,
    mapping_for: Callable[[str], OutcomeMapping] | None = None,
    default_region: str | None = None,
) -> list[Output]:
    """The records one ElevenLabs webhook produces (pure apart from the table reads and the
    ``outcomes`` mark, which makes the first outcome of a conversation its only one).
    ``default_region``: the country of an inbound caller's number written without one
    (RGSYNC_DEFAULT_REGION), read as the pre-call webhook reads it.

    Raises:
        UnknownEventTypeError, MalformedCallEventError: from the mapping.
        UnknownCallerError: an inbound call from a number no lead has (not retried).
        UnplacedCallError: no lead can be found for the conversation (yet).
    """
    outcome = map_call_event(body, mapping)
    if not outcome.activities and not outcome.opted_out:
        return []
    conversation = outcome.conversation_id or ""
    seen = outcomes.get(conversation) if outcomes is not None else None
    if isinstance(seen, dict) and seen.get("message_id") != message_id:
        return []  # this call's outcome was mapped already (its webhook, or reconciliation)
    placed = _place(outcome, conversations, find_caller, default_region)
    if placed is None:
        inbound = outcome.direction == "inbound" and outcome.event_type == POST_CALL_TRANSCRIPTION
        if inbound:
            if outcomes is not None:
                outcomes[conversation] = {"message_id": message_id, "placed": False}
            raise UnknownCallerError(
                f"inbound call {conversation or '?'} from a number no lead of a served site "
                "has: kept for review"
            )
        raise UnplacedCallError(
            f"no lead for conversation {conversation or '?'}: "
            "no lead_id/site_uuid dynamic variables and no recorded call"
        )
    site, lead, attempt_id = placed
    # The site's own activity types, however the call was placed (variables, recorded
    # conversation or caller's number); only a site that renames a type maps it again.
    own = mapping_for(site) if mapping_for is not None else mapping
    if own != mapping:
        outcome = map_call_event(body, own)
    if outcomes is not None:
        outcomes[conversation] = {
            "message_id": message_id,
            "placed": True,
            "site_uuid": site,
            "lead_id": lead,
        }
    return _outputs(outcome, site, lead, attempt_id, received_at, reconciled)


def _place(
    outcome: CallOutcome,
    conversations: Any,
    find_caller: FindCaller | None,
    default_region: str | None,
) -> tuple[str, str, str | None] | None:
    """(site, lead, the dialer's attempt id) of a call, or None when nothing places it."""
    attempt_id = outcome.attempt_id
    if outcome.site_uuid and outcome.lead_id:
        return outcome.site_uuid, outcome.lead_id, attempt_id
    known = conversations.get(outcome.conversation_id) if outcome.conversation_id else None
    if isinstance(known, dict) and known.get("site_uuid") and known.get("lead_id"):
        recorded = known.get("attempt_id")
        attempt_id = attempt_id or (recorded if isinstance(recorded, str) else None)
        return str(known["site_uuid"]), str(known["lead_id"]), attempt_id
    if outcome.direction == "inbound" and find_caller is not None:
        number = e164_or_none(outcome.external_number, default_region)
        found = find_caller(number, outcome.agent_id) if number else None
        if found is not None:
            return found[0], found[1], None
    return None


def _outputs(
    outcome: CallOutcome,
    site: str,
    lead: str,
    attempt_id: str | None,
    received_at: str,
    reconciled: bool,
) -> list[Output]:
    key = lead_key(site, lead)
    conversation = outcome.conversation_id or ""
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
    if outcome.lead_update:
        record = lead_update_record(
            update_id=lead_update_id_for(conversation),
            site_uuid=site,
            lead_id=lead,
            conversation_id=conversation,
            fields=outcome.lead_update.fields,
            tags=outcome.lead_update.tags,
        )
        outputs.append(Output("leads_outbound", key, record))
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
    if outcome.disposition == "ignored":
        return outputs
    outputs.append(
        Output(
            "call_outcomes",
            key,
            call_outcome_event(
                site_uuid=site,
                lead_id=lead,
                conversation_id=conversation,
                direction=outcome.direction,
                outcome=outcome.disposition,
                opted_out=outcome.opted_out,
                kinds=outcome.kinds,
                occurred_at=at,
                reconciled=reconciled,
            ),
        )
    )
    if outcome.direction != "inbound":  # the dialer placed it: its line is free now
        ended = CallEnded(
            site_uuid=site,
            lead_id=lead,
            conversation_id=outcome.conversation_id,
            outcome=outcome.disposition,
            attempt_id=attempt_id,
            opted_out=outcome.opted_out,
        )
        outputs.append(Output("dialer_events", key, outcome_record(ended)))
    return outputs


def register(p: Pipeline, elevenlabs: ElevenLabsClients) -> None:
    """Register map_call_outcomes (``elevenlabs``: a client per API key, shared by the
    agents, for reconcile requests)."""
    s = p.settings
    mapping = outcome_mapping(s)
    conversations = p.tables.conversations
    outcomes = p.tables.conversation_outcomes
    directory = p.caller_directory
    sites = p.sites if p.sites is not None else SiteDirectory(s)

    own_mappings: dict[tuple[tuple[str, str], ...], OutcomeMapping] = {}

    def mapping_for(site_uuid: str) -> OutcomeMapping:
        config = sites.current.get(site_uuid)
        if config is None or not config.outcomes:
            return mapping
        # One mapping per set of types (a reload may change a site's), not one a call.
        types = tuple(sorted(config.outcomes.items()))
        if types not in own_mappings:
            own_mappings[types] = with_activity_types(mapping, config.outcomes)
        return own_mappings[types]

    def find_caller(number: str, agent_id: str | None) -> tuple[str, str] | None:
        if directory is None:
            return None
        served = served_by(sites.current, agent_id)
        chosen, _count = choose(directory.candidates(number), served)
        return (chosen.site_uuid, chosen.lead_id) if chosen else None

    def client(agent_id: Any) -> ElevenLabsClient:
        # The key of a site that calls with this agent (its own workspace), else the
        # environment's.
        api_key = sites.current.elevenlabs_agents().get(str(agent_id or ""))
        return elevenlabs.client((api_key or s.elevenlabs_api_key).reveal())

    async def plan(
        body: dict[str, Any], envelope: dict[str, Any], reconciled: bool
    ) -> list[Output]:
        def attempt() -> list[Output]:
            return plan_outputs(
                body,
                mapping,
                conversations,
                envelope.get("received_at") or utc_now_iso(),
                outcomes=outcomes,
                message_id=envelope["message_id"],
                find_caller=find_caller,
                reconciled=reconciled,
                mapping_for=mapping_for,
                default_region=s.default_region,
            )

        try:
            return attempt()
        except UnknownCallerError:
            # Just started: the number may be in the part of the directory not yet read.
            if directory is None or directory.ready:
                raise
            if not await asyncio.to_thread(directory.wait_ready, _DIRECTORY_WAIT_S):
                raise
            return attempt()

    async def reconcile(envelope: dict[str, Any], request: dict[str, Any]) -> list[Output]:
        conversation = request.get("conversation_id")
        if not isinstance(conversation, str) or not conversation:
            raise PoisonMessageError("reconcile request without a conversation id")
        seen = outcomes.get(conversation)
        if isinstance(seen, dict) and seen.get("message_id") != envelope["message_id"]:
            return []  # its webhook arrived: nothing to fetch
        detail = await client(request.get("agent_id")).get_conversation(conversation)
        if detail.get("status") not in FINISHED:
            raise ConversationNotFinishedError(
                f"conversation {conversation} is {str(detail.get('status'))[:20]!r}, not finished"
            )
        outputs = await plan(webhook_from_detail(detail), envelope, True)
        if outputs:
            p.metrics.outcomes_reconciled.inc()
            log.info("call outcome reconciled", extra={"conversation_id": conversation})
        return outputs

    async def decide(envelope: dict[str, Any]) -> list[Output]:
        body = loads_object(envelope["body"], "ElevenLabs body")
        if envelope.get("source") == RECONCILE_SOURCE:
            return await reconcile(envelope, body)
        return await plan(body, envelope, False)

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
