"""track_lead_calls: sync.optouts and sync.call-outcomes -> each lead's AI calls and
opt-out (the ``lead_calls`` table), and its call context again when that changed it.

The call context is normalize_leads', built from what Real Geeks sends; it must also
count the lead's AI calls and turn ineligible after an opt-out from *any* source (the
caller on a call, an operator's ``dnc add``, the dialer, Real Geeks). Both topics are
partitioned by site like the raw Real Geeks topic, so this agent runs next to
normalize_leads' partition of the same site, reads its tables locally (the lead's
snapshot, history and last context) and writes the new context with the same function
(``context_outputs``), whose eligibility and call counts come from the table this agent
keeps. Each record goes through the idempotency rule of agents/processing.py (keyed by
its event id), so a replay re-sends the same context event. Each call outcome then goes to
the lead's story (agents/record_stories.py): an inbound call has no other record there.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

import faust

from realgeeks_sync.agents.normalize_leads import LeadTables, context_outputs
from realgeeks_sync.agents.processing import Output, as_datetime, loads_object, process_batch
from realgeeks_sync.agents.record_stories import StoryWriter
from realgeeks_sync.app.core.errors import PoisonMessageError
from realgeeks_sync.app.domain import lead_calls
from realgeeks_sync.app.domain.dialing.optouts import OptOutError, parse_optout
from realgeeks_sync.app.streaming import topics as names
from realgeeks_sync.app.streaming.partition_sequence import PartitionSequence
from realgeeks_sync.app.streaming.pipeline import Pipeline
from realgeeks_sync.app.streaming.table_batch import TableBatch

__all__ = ["decode_record", "plan_lead_calls", "register"]

log = logging.getLogger(__name__)

OPTOUT = "optout"
CALL = "call"


def decode_record(value: bytes | None, kind: str) -> dict[str, Any]:
    """An optout.v1 or call_outcome.v1 record as the idempotency rule takes it.

    Raises:
        PoisonMessageError: not a JSON object with a site and an event id.
    """
    record = loads_object(value, f"{kind} record", shape="an object")
    event_id, site = record.get("event_id"), record.get("site_uuid")
    if not isinstance(event_id, str) or not event_id or not isinstance(site, str) or not site:
        raise PoisonMessageError(f"{kind} record without event_id or site_uuid")
    return {"message_id": f"{kind}:{event_id}", "kind": kind, "site": site, "record": record}


def plan_lead_calls(envelope: dict[str, Any], tables: LeadTables) -> list[Output]:
    """Fold one opt-out or call outcome into ``tables.calls``; the contexts it changes.

    Raises:
        OptOutError: an opt-out that is not a valid optout.v1 event.
        PoisonMessageError: a call outcome without a lead.
    """
    record, site = envelope["record"], envelope["site"]
    index = tables.index
    if envelope["kind"] == OPTOUT:
        optout = parse_optout(record)
        when, trigger = optout.at, "optout"
        if optout.subject == "lead":
            lead = index.canonical_id(site, optout.value) or optout.value
            key = lead_calls.key(site, "lead", lead)
            tables.calls[key] = lead_calls.set_optout(tables.calls.get(key), optout)
            affected = [lead]
        else:
            tables.calls[lead_calls.key(site, "phone", optout.value)] = lead_calls.optout_entry(
                optout
            )
            affected = index.leads_for(site, "phone", optout.value)
            if optout.lead_id:
                affected.append(index.canonical_id(site, optout.lead_id) or optout.lead_id)
    else:
        lead_id = record.get("lead_id")
        if not isinstance(lead_id, str) or not lead_id:
            raise PoisonMessageError("call outcome without lead_id")
        lead = index.canonical_id(site, lead_id) or lead_id
        key = lead_calls.key(site, "lead", lead)
        changed = lead_calls.add_call(tables.calls.get(key), record)
        if changed is None:
            return []
        tables.calls[key] = changed
        when, trigger = str(record.get("occurred_at") or ""), "call_outcome"
        affected = [lead]
    now = as_datetime(when)
    outputs: list[Output] = []
    for lead in dict.fromkeys(affected):
        snapshot = index.lead(site, lead)
        previous = tables.context(site, lead)
        if snapshot is None or previous is None:
            continue  # no context yet: the first one will include this
        outputs += context_outputs(
            site,
            lead,
            envelope["message_id"],
            dict(snapshot.fields),
            tables,
            now,
            previous,
            trigger,
            force=False,
        )
    return outputs


def register(p: Pipeline, stories: StoryWriter | None = None) -> None:
    """Register the agent (``stories``: where leads' stories go)."""
    t = p.tables
    optouts_topic = p.settings.topic(names.OPTOUTS)

    def key_of(envelope: dict[str, Any], _record_key: str) -> str:
        return f"{envelope['site']}|{envelope['message_id']}"

    topic = p.app.topic(
        optouts_topic,
        p.settings.topic(names.CALL_OUTCOMES),
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
    )

    # sync.optouts is the dialer's input too: offsets in order and holes read again, but
    # tracked apart from the dialer's (app/streaming/partition_sequence.py), and an offset
    # is committed only once both agents finished it (app/streaming/offset_guard.py).
    sequence = PartitionSequence(
        lambda: p.app.consumer,
        lambda: p.app.consumer_generation_id,
        on_hole=lambda _tp, _expected, _got: p.metrics.sync_errors.labels(
            "ConsumerSkippedOffsets"
        ).inc(),
    )

    @p.app.timer(interval=5.0)
    async def reread_skipped_lead_calls() -> None:
        sequence.recheck()

    @p.app.agent(topic, name=p.settings.topic("track_lead_calls"), isolated_partitions=True)
    async def track_lead_calls(stream: faust.StreamT) -> None:
        async for event in sequence.events(stream):
            kind = OPTOUT if event.message.topic == optouts_topic else CALL
            # normalize_leads writes the same contexts through a TableBatch, whose
            # changelog records go straight to the producer: a plain table write waits in
            # Faust's buffer and could reach the changelog after a later batch's record of
            # the same key, and a worker recovering from it would get the older context.
            # So this agent's writes go through a batch too (app/streaming/table_batch.py).
            writes = TableBatch(on_retry=p.count_write_retry)
            tables = LeadTables.through(writes, t)

            async def decide(envelope: dict[str, Any], tables: LeadTables = tables) -> list[Output]:
                try:
                    return plan_lead_calls(envelope, tables)
                except OptOutError as exc:
                    raise PoisonMessageError(str(exc)) from exc

            # normalize_leads writes the same contexts in batches (Pipeline.context_lock).
            async with p.context_lock(event.message.partition):
                await process_batch(
                    p,
                    [event],
                    source="lead_calls",
                    table=writes.view(t.processed_messages),
                    decide=decide,
                    key_of=key_of,
                    tables=writes,
                    decode=partial(decode_record, kind=kind),
                    # The contexts' story entries, with the message's other writes.
                    sent=None if stories is None else partial(stories.sent, writes=writes),
                )
            # Opt-outs reach the story through dial_leads, which reads them too.
            if stories is not None and kind == CALL:
                await stories.note_raw(event.message)
