"""dial_leads: the dialer's state machine (app/domain/dialing) run over its three inputs.

Inputs, all on the site's partition (app/streaming/partitioning.py), whose three actors
(one per topic) take turns under one lock per partition number to decide a site's leads,
numbers, lines and opt-outs: calls.context, sync.optouts and
sync.dialer-events (call answers, call outcomes, timer ticks). Each record goes through
``DialerCore.apply``: records and dead letters are sent, the changed state is stored
durably (acknowledged by the broker), and only then do call requests leave. A request
runs in a task of its own; its answer comes back as a sync.dialer-events record, so every
state change happens here, one record at a time.

Kafka orders each partition, not the three topics against one another. So calls leave
only on a tick that carries the end of the site's sync.optouts partition, asked of the
broker after the records it can dial were read, and only once the agent has read that
partition up to it (app/domain/dialing/gate.py): an opt-out written before a lead's context
is applied before that lead can be called. A timer sends a tick for each site with a lead
due and a free line, or a call to settle; a record that leaves a lead due is followed at
once by a tick the agent applies itself (speed to lead: one broker round trip). After an
assignment, calls also wait until every operator action (pause, never call) that was on
the partition has been read (a restart must not dial before an operator's pause).
A pause of every site comes on every partition (site "*"): each partition keeps its own
switch for every site (dialer_sites, key ``*:<partition>``), which the machine checks
before it dials any site of the partition, one it has never seen included.
Each site's rules (hours, days, caps, switch) come from the sites file (app/core/sites.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import faust
from faust.types import TP

from realgeeks_sync.agents.record_stories import StoryWriter
from realgeeks_sync.app.clients.elevenlabs import CONNECT_TIMEOUT_S, ElevenLabsClients
from realgeeks_sync.app.core import json_codec
from realgeeks_sync.app.core.errors import ApiError
from realgeeks_sync.app.core.sites import DialerConfig
from realgeeks_sync.app.domain.deadletters import deadletter_record
from realgeeks_sync.app.domain.dialing import (
    ALL_SITES,
    CallAnswer,
    CallRequest,
    ContextSeen,
    DeadLetter,
    DialerEvent,
    DialerPolicy,
    DialerRecordError,
    Emit,
    LeadStatus,
    OperatorAction,
    OptOutError,
    SiteRecord,
    Step,
    Tick,
    all_sites_key,
    answer_for_error,
    answer_for_placement,
    answer_for_window_closed,
    answer_record,
    is_all_sites,
    may_dial,
    parse_dialer_record,
    parse_optout,
    tick_record,
)
from realgeeks_sync.app.domain.dialing.store import DialerCore, DialerStore, TableWrite
from realgeeks_sync.app.domain.events import lead_key
from realgeeks_sync.app.streaming import topics as names
from realgeeks_sync.app.streaming.end_offsets import EndOffsets, EndOffsetsError
from realgeeks_sync.app.streaming.partitioning import site_partition
from realgeeks_sync.app.streaming.pipeline import Pipeline
from realgeeks_sync.app.streaming.table_writes import write_tables

__all__ = ["dialer_policy", "register"]

log = logging.getLogger(__name__)

# Forget an answered request after this long even if another worker took the partition
# and applied its answer (this worker's set of live requests stays small).
_LIVE_GRACE_S = 600.0


def dialer_policy(p: Pipeline, site_uuid: str = "*") -> DialerPolicy:
    """A site's dialer rules: its entry in the sites file, else the settings."""
    s = p.settings
    config = (
        p.sites.current.config(site_uuid).dialer
        if p.sites is not None
        else DialerConfig.from_settings(s)
    )
    # A request unanswered for longer than its timeouts allow is no longer in flight.
    orphan_after = CONNECT_TIMEOUT_S + s.elevenlabs_timeout_s + 20.0
    return DialerPolicy(
        enabled=config.enabled,
        max_concurrent_calls=config.max_concurrent_calls,
        max_attempts=config.max_attempts,
        max_attempts_per_day=config.max_attempts_per_day,
        redial_after=timedelta(seconds=config.redial_after_s),
        max_context_age=timedelta(seconds=config.max_context_age_s),
        window_start=config.start,
        window_end=config.end,
        days=config.days,
        line_hold=timedelta(seconds=s.dialer_line_hold_s),
        orphan_after=timedelta(seconds=orphan_after),
        activity_source=s.own_activity_source,
    )


class _Policies:
    """Each site's policy, rebuilt when the sites file is reloaded (SIGHUP)."""

    def __init__(self, p: Pipeline) -> None:
        self._p = p
        self._version = -1
        self._cache: dict[str, DialerPolicy] = {}

    def __call__(self, site_uuid: str) -> DialerPolicy:
        version = self._p.sites.version if self._p.sites is not None else 0
        if version != self._version:
            self._cache.clear()
            self._version = version
        policy = self._cache.get(site_uuid)
        if policy is None:
            policy = self._cache[site_uuid] = dialer_policy(self._p, site_uuid)
        return policy


class _CaughtUp:
    """Whether the agent has read every record that was on a site's partitions of ``topics``
    when it got them: opt-outs, and operators' pause and never-call decisions, come before
    any call (a restart re-reads records from before them, later in time)."""

    def __init__(self, p: Pipeline, topics: Sequence[str]) -> None:
        self._p = p
        self._topics = tuple(topics)
        self._ready: set[tuple[TP, int | None]] = set()
        # The message being applied: read, though not yet marked finished (a tick at the
        # end of sync.dialer-events must not keep its own partition looking unread).
        self._current: tuple[TP, int] | None = None

    def reading(self, message: Any) -> None:
        """The agent is applying ``message`` now."""
        self._current = (message.tp, message.offset)

    def __call__(self, site_uuid: str) -> bool:
        partition = site_partition(site_uuid, self._p.settings.partitions)
        return all(self._read(TP(topic, partition)) for topic in self._topics)

    def next_offset(self, tp: TP) -> int | None:
        """The next offset of ``tp`` the agent reads (None: none read, none committed)."""
        position = self._p.sequence.next_offset(tp)
        if self._current is not None and self._current[0] == tp:
            position = max(position or 0, self._current[1] + 1)
        return position

    def _read(self, tp: TP) -> bool:
        generation = self._p.app.consumer_generation_id
        if (tp, generation) in self._ready:
            return True
        try:
            end = self._p.app.consumer.highwater(tp)
        except Exception:  # noqa: BLE001 - not assigned or not fetched yet: not ready
            return False
        if end is None:
            return False
        position = self.next_offset(tp)
        if (position is not None and position >= end) or (position is None and end == 0):
            self._ready.add((tp, generation))
            return True
        return False


def register(
    p: Pipeline, elevenlabs: ElevenLabsClients, stories: StoryWriter | None = None
) -> None:
    """Register the dialer agent and its timer (``elevenlabs``: a client per API key, shared
    by the agents; ``stories``: where leads' stories go)."""
    s = p.settings
    t = p.tables
    policies = _Policies(p)
    store = DialerStore(
        t.dialer_leads,
        t.dialer_sites,
        t.do_not_call,
        partition_of=lambda site: site_partition(site, s.partitions),
    )
    context_topic = s.topic(names.CALLS_CONTEXT)
    optouts_topic = s.topic(names.OPTOUTS)
    events_topic = s.topic(names.DIALER_EVENTS)
    live: set[str] = set()
    tasks: set[asyncio.Future[None]] = set()
    m = p.metrics

    def now() -> datetime:
        return datetime.fromtimestamp(p.clock(), UTC)

    async def send(emits: Sequence[Emit], deadletters: Sequence[DeadLetter]) -> None:
        records: list[tuple[faust.TopicT, str, dict[str, Any]]] = [
            (getattr(p.topics, e.topic), e.key, dict(e.value)) for e in emits
        ]
        for letter in deadletters:
            record = deadletter_record(
                topic=events_topic,
                key=letter.key,
                value=json.dumps(letter.original, separators=(",", ":"), sort_keys=True),
                error=letter.error,
                error_type=letter.error_type,
                retriable=letter.retriable,
            )
            m.deadletters.labels(events_topic, letter.error_type).inc()
            log.warning(
                "dialer dead letter",
                extra={"error_type": letter.error_type, "reason": letter.error[:300]},
            )
            records.append((p.topics.deadletter, letter.key, record))
        if records:
            await p.write(records, what="dialer records")

    async def persist(writes: list[TableWrite], durable: bool) -> None:
        await write_tables(
            writes,
            durable=durable,
            what="dialer state",
            on_retry=p.count_write_retry,
        )

    def place(call: CallRequest) -> None:
        live.add(call.attempt_id)
        task = asyncio.ensure_future(request_call(call))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def request_call(call: CallRequest) -> None:
        """Send the request once; its answer goes back to the agent as a record."""
        if not call.may_leave(now()):
            # DialerCore checked it as it placed it; this task may have started later.
            log.info(
                "call request not sent: its calling window closed",
                extra={
                    "site": call.site_uuid,
                    "lead_id": call.lead_id,
                    "attempt_id": call.attempt_id,
                },
            )
            await answer(answer_for_window_closed(call.site_uuid, call.lead_id, call.attempt_id))
            return
        site = p.sites.current.config(call.site_uuid) if p.sites is not None else None
        try:
            result = await elevenlabs.client(
                site.elevenlabs_api_key.reveal() if site else s.elevenlabs_api_key.reveal()
            ).start_outbound_call(
                site.elevenlabs_agent_id if site else s.elevenlabs_agent_id,
                site.elevenlabs_phone_number_id if site else s.elevenlabs_phone_number_id,
                call.phone,
                dict(call.variables),
                user_id=call.lead_id,
            )
            got = answer_for_placement(
                call.site_uuid, call.lead_id, call.attempt_id, result.conversation_id
            )
        except ApiError as exc:
            got = answer_for_error(call.site_uuid, call.lead_id, call.attempt_id, exc)
        except Exception as exc:
            log.exception("outbound call request failed unexpectedly")
            got = CallAnswer(
                call.site_uuid,
                call.lead_id,
                call.attempt_id,
                "unknown",
                cause="other",
                reason=f"unexpected {type(exc).__name__}",
            )
        await answer(got)

    async def answer(got: CallAnswer) -> None:
        """The request's answer, back to the agent as a sync.dialer-events record."""
        await p.write(
            [
                (
                    p.topics.dialer_events,
                    lead_key(got.site_uuid, got.lead_id),
                    answer_record(got),
                )
            ],
            what="call answer",
        )
        asyncio.get_running_loop().call_later(_LIVE_GRACE_S, live.discard, got.attempt_id)

    caught_up = _CaughtUp(p, (optouts_topic, events_topic))
    # Faust runs one actor per topic-partition: three per partition number here.
    turns: dict[int, asyncio.Lock] = {}

    def dialing(event: DialerEvent) -> bool:
        # Calls leave only on a tick whose opt-outs end was read (app/domain/dialing/gate.py),
        # and, after an assignment, once the operators' actions of the partition were read.
        optouts = TP(optouts_topic, site_partition(event.site_uuid, s.partitions))
        return may_dial(event, caught_up.next_offset(optouts)) and caught_up(event.site_uuid)

    core = DialerCore(
        store,
        policies,
        now,
        send=send,
        persist=persist,
        place=place,
        live=lambda: frozenset(live),
        dispatching=dialing,
    )

    def count(result: Step) -> None:
        for name, label in result.counts:
            if name == "requested":
                m.calls_requested.inc()
            elif name == "started":
                m.calls_started.inc()
            elif name == "uncertain":
                m.calls_uncertain.labels(label).inc()
            elif name == "refused":
                m.calls_refused.labels(label).inc()
            elif name == "skipped":
                m.calls_skipped.labels(label).inc()
            elif name == "deferred":
                m.calls_deferred.labels(label).inc()
            elif name == "optout":
                m.optouts.labels(label).inc()
            elif name == "operator":
                m.operator_actions.labels(label).inc()
        for call in result.calls:
            record = result.leads.get(call.lead_id)
            attempt = record.attempt(call.attempt_id) if record is not None else None
            first = attempt is not None and attempt.number == 1  # the lead's first call
            if first and attempt is not None and record is not None and record.first_seen:
                m.speed_to_lead.observe(max(0.0, attempt.sent_at - record.first_seen))
            log.info(
                "outbound call requested",
                extra={
                    "site": call.site_uuid,
                    "lead_id": call.lead_id,
                    "attempt_id": call.attempt_id,
                },
            )

    async def handle(event: faust.EventT) -> None:
        msg = event.message
        caught_up.reading(msg)
        try:
            record = json_codec.loads(msg.value or b"")
        except (ValueError, UnicodeDecodeError) as exc:
            raise DialerRecordError("dialer input is not JSON") from exc
        if msg.topic == context_topic:
            if not isinstance(record, dict) or record.get("schema") != "call_context.v1":
                return
            site, lead = record.get("site_uuid"), record.get("lead_id")
            if not isinstance(site, str) or not isinstance(lead, str) or not site or not lead:
                raise DialerRecordError("call context without site_uuid or lead_id")
            dialer_event: DialerEvent = ContextSeen(site, lead, record)
            result = await core.apply(dialer_event)
        elif msg.topic == optouts_topic:
            dialer_event = parse_optout(record)
            result = await core.apply(dialer_event)
        else:
            dialer_event = parse_dialer_record(record)
            if isinstance(dialer_event, OperatorAction) and dialer_event.site_uuid == ALL_SITES:
                # Every site: this partition's own switch for all of them (its copy of the
                # record, applied in order with the partition's other inputs).
                dialer_event = replace(dialer_event, site_uuid=all_sites_key(msg.partition))
            if isinstance(dialer_event, Tick):
                # The end the timer asked may predate contexts read since (the tick and the
                # contexts are not ordered either): ask again, now, after all of them.
                site_uuid = dialer_event.site_uuid
                dialer_event = Tick(site_uuid, optouts_end=await end_of_optouts(site_uuid))
            result = await core.apply(dialer_event)
            if isinstance(dialer_event, CallAnswer):
                live.discard(dialer_event.attempt_id)
            elif (
                isinstance(dialer_event, OperatorAction)
                and result.site is not None
                and not is_all_sites(dialer_event.site_uuid)
            ):
                paused = 1 if result.site.paused else 0
                m.dialer_paused.labels(dialer_event.site_uuid).set(paused)
        count(result)
        if not isinstance(dialer_event, Tick) and lead_due(result):
            # Speed to lead: the site's tick now, not at the timer's next run. Its opt-outs end
            # is asked after this record was read, as the timer's would be (the gate holds).
            site_uuid = dialer_event.site_uuid
            tick = Tick(site_uuid, optouts_end=await end_of_optouts(site_uuid))
            count(await core.apply(tick))
        if stories is not None and msg.topic != context_topic:
            # A context's entry was written with its writer's own writes (record_stories).
            await stories.note(msg, record)

    topic = p.app.topic(
        context_topic,
        optouts_topic,
        events_topic,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
    )

    # One actor per partition (sites spread over them): a site's events stay in order while
    # partitions wait for the broker side by side.
    @p.app.agent(topic, name=s.topic("dial_leads"), isolated_partitions=True)
    async def dial_leads(stream: faust.StreamT) -> None:
        async for event in p.sequence.events(stream):
            try:
                # The three topics' actors of a partition take turns: an opt-out is applied
                # whole before a context of the same sites is decided, and no two dispatch
                # at once.
                async with turns.setdefault(event.message.partition, asyncio.Lock()):
                    await handle(event)
            except (DialerRecordError, OptOutError) as exc:
                await p.deadletter(event, exc)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.exception("dialer failed on a record")
                await p.deadletter(event, exc, error_type=f"Unexpected{type(exc).__name__}")

    end_offsets = EndOffsets(s)

    @p.app.on_before_shutdown.connect
    async def close_end_offsets(_app: object, **_kwargs: object) -> None:
        await end_offsets.close()

    async def send_ticks(sites: Sequence[str]) -> None:
        """A tick for each site (the agent asks the opt-outs end when it applies it)."""
        for site_uuid in sites:
            await p.send(p.topics.dialer_events, site_uuid, tick_record(site_uuid))

    async def end_of_optouts(site_uuid: str) -> int | None:
        """The end of the site's sync.optouts partition now (None: the broker did not say)."""
        partition = site_partition(site_uuid, s.partitions)
        try:
            return (await end_offsets.ask(optouts_topic, [partition]))[partition]
        except EndOffsetsError as exc:
            log.warning("opt-outs end unknown: the timer will try", extra={"reason": str(exc)})
            return None

    def lead_due(result: Step) -> bool:
        """Whether the step left a lead waiting whose time has come (and started no call)."""
        current = p.clock()
        return not result.calls and any(
            r.status is LeadStatus.WAITING and r.due is not None and r.due <= current
            for r in result.leads.values()
        )

    @p.app.timer(interval=1.0)
    async def tick_sites() -> None:
        current = p.clock()
        due: list[str] = []
        for site_uuid, raw in list(t.dialer_sites.items()):
            if is_all_sites(site_uuid):
                continue  # a partition's switch for every site, read with each site below
            try:
                site = SiteRecord.from_json(raw)
            except (KeyError, ValueError, TypeError):
                continue
            everywhere = store.all_sites(site_uuid)
            paused = site.paused is not None or (
                everywhere is not None and everywhere.paused is not None
            )
            # The pause switch as a gauge, also after a restart (not only when flipped).
            m.dialer_paused.labels(site_uuid).set(1 if paused else 0)
            if _needs_tick(site, current, policies(site_uuid), paused=paused):
                due.append(site_uuid)
        if due:
            await send_ticks(due)


def _needs_tick(site: SiteRecord, now: float, policy: DialerPolicy, *, paused: bool) -> bool:
    """Whether a tick can change anything for the site now (``paused``: the site, or every
    site on its partition)."""
    if not policy.enabled:
        return bool(site.waiting)
    if paused:
        # Nothing is dialed; only lines held too long or orphaned requests can change.
        return any(
            now - line.since >= policy.line_hold.total_seconds()
            or (not line.answered and now - line.since >= policy.orphan_after.total_seconds())
            for line in site.in_flight.values()
        )
    hold = policy.line_hold.total_seconds()
    orphan = policy.orphan_after.total_seconds()
    for line in site.in_flight.values():
        if now - line.since >= hold or (not line.answered and now - line.since >= orphan):
            return True
    free = len(site.in_flight) < policy.max_concurrent_calls
    return free and any(due <= now for due, _ in site.waiting.values())
