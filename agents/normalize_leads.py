"""normalize_leads: raw Real Geeks webhooks -> leads.normalized, activities.normalized and
calls.context.

The raw topic is keyed by site, so a site's messages and its identity tables share a
partition. One actor per partition (isolated_partitions) keeps each partition's order
while partitions wait for their acks side by side (one actor for all of them capped a
worker at ~90 webhooks/s, ops/bench_e2e_latency.py). The decision logic is
``plan_realgeeks`` (tables in, records out); the agent only runs it under the idempotency
rule of agents/processing.py.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from functools import partial
from typing import Any, Literal

import faust

from realgeeks_sync.agents.processing import Output, as_datetime, loads_object, process_batch
from realgeeks_sync.agents.record_stories import StoryWriter
from realgeeks_sync.app.core.errors import PoisonMessageError
from realgeeks_sync.app.core.metrics import Metrics
from realgeeks_sync.app.core.settings import Settings
from realgeeks_sync.app.domain import lead_calls
from realgeeks_sync.app.domain.call_context import (
    OPTED_OUT,
    build_call_context,
    consent_refused,
    materially_changed,
)
from realgeeks_sync.app.domain.call_outcomes import OutcomeMapping, is_own_activity
from realgeeks_sync.app.domain.callers import caller_record
from realgeeks_sync.app.domain.dialing.optouts import e164_or_none, optout_event, optout_key
from realgeeks_sync.app.domain.envelopes import KNOWN_REALGEEKS_ACTIONS
from realgeeks_sync.app.domain.events import activity_event, derive_event_id, lead_key
from realgeeks_sync.app.domain.leads import LeadDecision, decide_lead
from realgeeks_sync.app.domain.matching import DEFAULT_MODEL_PATH, MatcherConfig, default_model
from realgeeks_sync.app.domain.normalize import (
    normalize_lead_id,
    normalize_site_uuid,
    normalize_timestamp,
)
from realgeeks_sync.app.streaming.pipeline import Pipeline, Tables
from realgeeks_sync.app.streaming.table_batch import TableBatch
from realgeeks_sync.tables.identity import IdentityIndex

__all__ = ["LeadTables", "context_outputs", "matcher_config", "plan_realgeeks", "register"]

log = logging.getLogger(__name__)

_HISTORY_LIMIT = 50  # activities kept per lead for the call context


@dataclass
class LeadTables:
    """The tables normalize_leads reads and writes (Faust tables, or dicts in tests);
    ``calls`` (track_lead_calls') holds what the context needs of calls and opt-outs."""

    index: IdentityIndex
    users: Any
    calls: Any = None

    @classmethod
    def through(cls, batch: TableBatch, tables: Tables) -> LeadTables:
        """The pipeline's lead tables, every read and write through ``batch``
        (app/streaming/table_batch.py)."""
        return cls(
            index=IdentityIndex(
                batch.view(tables.identity_index), batch.view(tables.lead_snapshots)
            ),
            users=batch.view(tables.users),
            calls=batch.view(tables.lead_calls),
        )

    def history(self, site: str, lead: str) -> list[dict[str, Any]]:
        value = self.index.lead_store.get(IdentityIndex.lead_key(site, lead) + "#activities")
        return [a for a in value if isinstance(a, dict)] if isinstance(value, list) else []

    def add_history(self, site: str, lead: str, activities: list[dict[str, Any]]) -> None:
        merged = (self.history(site, lead) + activities)[-_HISTORY_LIMIT:]
        self.index.lead_store[IdentityIndex.lead_key(site, lead) + "#activities"] = merged

    def context(self, site: str, lead: str) -> dict[str, Any] | None:
        value = self.index.lead_store.get(IdentityIndex.lead_key(site, lead) + "#context")
        return value if isinstance(value, dict) else None

    def put_context(self, site: str, lead: str, context: dict[str, Any]) -> None:
        self.index.lead_store[IdentityIndex.lead_key(site, lead) + "#context"] = context

    def call_state(self, site: str, subject: str, value: str) -> dict[str, Any] | None:
        if self.calls is None:
            return None
        found = self.calls.get(lead_calls.key(site, subject, value))
        return found if isinstance(found, dict) else None


def _activities(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    raw = body.get("activities")
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise PoisonMessageError("activities is not a list")
    return [a for a in raw if isinstance(a, dict)]


def _clean_activity(activity: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(activity)
    try:
        out["created"] = normalize_timestamp(activity.get("created"))
    except ValueError:
        out["created"] = None
    return out


def plan_realgeeks(
    envelope: Mapping[str, Any],
    tables: LeadTables,
    *,
    config: MatcherConfig,
    mapping: OutcomeMapping,
    metrics: Metrics | None = None,
) -> list[Output]:
    """The records one raw Real Geeks webhook produces, with its table writes.

    Raises:
        PoisonMessageError, LeadInputError: what cannot be processed (dead-lettered).
    """
    action = str(envelope.get("action"))
    message_id = str(envelope["message_id"])
    received_at = str(envelope.get("received_at") or "")
    now = as_datetime(received_at)
    if action not in KNOWN_REALGEEKS_ACTIONS:
        if metrics:
            metrics.webhooks_ignored.labels("realgeeks", "unknown").inc()
        return []
    body = loads_object(envelope["body"], "webhook body")
    site = normalize_site_uuid(body.get("site_uuid"))
    if site is None:
        raise PoisonMessageError(f"{action} webhook without site_uuid")
    trigger = "backfill" if envelope.get("source") == "backfill" else action

    if action in ("user_updated", "user_deleted"):
        user_id = body.get("id")
        if not isinstance(user_id, (str, int)):
            raise PoisonMessageError(f"{action} webhook without a user id")
        key = f"{site}|{user_id}"
        tables.users[key] = (
            {"deleted": True}
            if action == "user_deleted"
            else {k: v for k, v in body.items() if k not in ("action",)}
        )
        return []

    outputs: list[Output] = []
    if action == "activity_added":
        source_id = normalize_lead_id(body.get("id") or body.get("lead_id"))
        if source_id is None:
            raise PoisonMessageError("activity_added webhook without a lead id")
        lead = tables.index.canonical_id(site, source_id) or source_id
        snapshot = tables.index.lead(site, lead)
        lead_fields = dict(snapshot.fields) if snapshot else {}
        activities = _activities(body)
        outputs += _activity_outputs(site, lead, message_id, activities, tables, mapping)
        known = {**lead_fields, "phones": list(snapshot.phones)} if snapshot else lead_fields
        outputs += _optout_outputs(site, lead, known, activities, body, received_at)
        previous = tables.context(site, lead)
        if snapshot is not None and previous is not None:
            outputs += context_outputs(
                site, lead, message_id, lead_fields, tables, now, previous, trigger, force=False
            )
        return outputs

    decision: LeadDecision = decide_lead(
        tables.index,
        site_uuid=site,
        action=action,
        body=body,
        source_timestamp=envelope.get("timestamp"),
        message_id=message_id,
        now=now,
        config=config,
    )
    if decision.stale:
        if metrics:
            metrics.stale_updates.inc()
        return []
    if metrics and not decision.replayed:
        _count(metrics, decision)
    lead = decision.lead_id
    outputs.append(Output("leads", lead_key(site, lead), decision.to_event()))
    activities = _activities(body)
    outputs += _activity_outputs(site, lead, message_id, activities, tables, mapping)
    outputs += _optout_outputs(site, lead, dict(decision.lead), activities, body, received_at)
    previous = tables.context(site, lead)
    outputs += context_outputs(
        site,
        lead,
        message_id,
        dict(decision.lead),
        tables,
        now,
        previous,
        trigger,
        force=decision.op == "created",
    )
    return outputs


def _count(metrics: Metrics, decision: LeadDecision) -> None:
    if decision.op == "created":
        metrics.leads_created.inc()
    elif decision.op == "merged":
        metrics.leads_merged.labels(decision.match.rule if decision.match else "none").inc()
    else:
        metrics.leads_updated.inc()


def _activity_outputs(
    site: str,
    lead: str,
    message_id: str,
    activities: list[dict[str, Any]],
    tables: LeadTables,
    mapping: OutcomeMapping,
) -> list[Output]:
    outputs: list[Output] = []
    fresh: list[dict[str, Any]] = []
    for i, raw in enumerate(activities):
        activity = _clean_activity(raw)
        own = is_own_activity(activity, mapping)
        event = activity_event(
            event_id=derive_event_id(message_id, "activity", str(i)),
            site_uuid=site,
            lead_id=lead,
            direction="inbound",
            activity=activity,
            own=own,
        )
        outputs.append(Output("activities", lead_key(site, lead), event))
        if not own:  # our own write-backs never feed the AI path
            fresh.append(activity)
    if fresh:
        tables.add_history(site, lead, fresh)
    return outputs


def _optout_outputs(
    site: str,
    lead: str,
    fields: Mapping[str, Any],
    activities: list[dict[str, Any]],
    body: Mapping[str, Any],
    received_at: str,
) -> list[Output]:
    """optout.v1 events for an ``opted_out`` activity or a refused consent, for the lead
    and each of its numbers (the dialer honours both; other services can too)."""
    reasons: list[tuple[str, str]] = []
    for activity in activities:
        if str(activity.get("type", "")).strip().casefold() == OPTED_OUT:
            created = _clean_activity(activity).get("created")
            reasons.append(("opted_out_activity", str(created or received_at)))
    if consent_refused(body):
        reasons.append(("consent_refused", received_at))
    if not reasons:
        return []
    reason, at = reasons[0]
    phones = [fields.get("phone"), fields.get("phone2"), *(fields.get("phones") or ())]
    numbers = dict.fromkeys(n for n in (e164_or_none(p) for p in phones) if n)
    subjects: list[tuple[Literal["lead", "phone"], str]] = [("lead", lead)]
    subjects += [("phone", number) for number in numbers]
    return [
        Output(
            "optouts",
            optout_key(site, value),
            optout_event(
                site_uuid=site,
                subject=subject,
                value=value,
                lead_id=lead,
                source="realgeeks",
                at=at,
                reason=reason,
            ),
        )
        for subject, value in subjects
    ]


def context_outputs(
    site: str,
    lead: str,
    message_id: str,
    fields: Mapping[str, Any],
    tables: LeadTables,
    now: datetime,
    previous: dict[str, Any] | None,
    trigger: str,
    *,
    force: bool,
) -> list[Output]:
    """The lead's new call context when it changed materially (or ``force``), and its
    caller record for the directory of inbound calls (app/domain/callers.py)."""
    snapshot = tables.index.lead(site, lead)
    phones = [*(snapshot.phones if snapshot else ()), fields.get("phone"), fields.get("phone2")]
    numbers = dict.fromkeys(n for n in (e164_or_none(p) for p in phones) if n)
    calls = tables.call_state(site, "lead", lead)
    optout = lead_calls.opt_out_of(calls, (tables.call_state(site, "phone", n) for n in numbers))
    context = build_call_context(
        site_uuid=site,
        lead_id=lead,
        lead=fields,
        activities=tables.history(site, lead),
        do_not_call=False,
        now=now,
        event_id=derive_event_id(message_id, "context"),
        previous_context=previous,
        ai_calls=lead_calls.summary(calls),
        opt_out=optout,
    )
    context["trigger"] = trigger
    if not force and previous is not None and not materially_changed(previous, context):
        return []
    tables.put_context(site, lead, context)
    key = lead_key(site, lead)
    return [
        Output("calls_context", key, context),
        Output("callers", key, caller_record(context, numbers)),
    ]


def matcher_config(settings: Settings) -> MatcherConfig:
    """The matcher the agent decides with: the model file RGSYNC_IDENTITY_MODEL names (the
    shipped one otherwise), the default region and RGSYNC_FUZZY_THRESHOLD."""
    model = default_model(settings.identity_model or DEFAULT_MODEL_PATH)
    config = MatcherConfig(default_region=settings.default_region, model=model)
    if settings.fuzzy_threshold is not None:
        config = replace(config, fuzzy_threshold=settings.fuzzy_threshold)
    return config


def register(p: Pipeline, stories: StoryWriter) -> None:
    """Register the agent on the pipeline; ``stories``: where its outputs' story entries go."""
    config = matcher_config(p.settings)
    mapping = OutcomeMapping(source=p.settings.own_activity_source)
    t = p.tables

    def key_of(envelope: dict[str, Any], record_key: str) -> str:
        # <site>|<message id>: the inspection page looks it up by site and message id.
        return f"{record_key}|{envelope['message_id']}"

    @p.app.agent(
        p.topics.raw_realgeeks, name=p.settings.topic("normalize_leads"), isolated_partitions=True
    )
    async def normalize_leads(stream: faust.StreamT) -> None:
        async for batch in p.sequence.batches(
            stream,
            p.settings.batch_max_messages,
            busy_linger_s=p.settings.batch_linger_ms / 1000,
        ):
            # Every table this agent writes, through one batch: one changelog record per
            # key per batch, one RocksDB read per key read (app/streaming/table_batch.py).
            # lead_calls is only read here: track_lead_calls writes it (app/domain/lead_calls.py).
            writes = TableBatch(on_retry=p.count_write_retry)
            tables = LeadTables.through(writes, t)

            async def decide(envelope: dict[str, Any], tables: LeadTables = tables) -> list[Output]:
                return plan_realgeeks(
                    envelope, tables, config=config, mapping=mapping, metrics=p.metrics
                )

            # track_lead_calls writes these leads' contexts too (Pipeline.context_lock).
            async with p.context_lock(batch[0].message.partition):
                await process_batch(
                    p,
                    batch,
                    source="realgeeks",
                    table=writes.view(t.processed_messages),
                    decide=decide,
                    key_of=key_of,
                    tables=writes,
                    # Its lead events' and contexts' story entries, with the batch's writes.
                    sent=partial(stories.sent, writes=writes),
                )
