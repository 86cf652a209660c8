"""Pipeline.context_lock: an opt-out arriving mid-batch is not overwritten by the batch.

normalize_leads and track_lead_calls write the same call contexts; the registered agents
run here on fake tables (test_table_batch's) and a pipeline that records what it sends.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field, fields
from types import SimpleNamespace
from typing import Any, cast

import faust
from faust.types import TP, Message

from realgeeks_sync.agents import normalize_leads, record_stories, track_lead_calls
from realgeeks_sync.app.core.metrics import Metrics
from realgeeks_sync.app.core.settings import Settings
from realgeeks_sync.app.domain.dialing.optouts import optout_event
from realgeeks_sync.app.streaming import topics as names
from realgeeks_sync.app.streaming.pipeline import Pipeline, Tables, Topics
from realgeeks_sync.tables.identity import IdentityIndex
from tests.unit.test_table_batch import FakeTable

SITE = "5ead6dd1-2cb9-4f80-80fc-5716b05c90ba"
LEAD = "lead1"


class FakeApp:
    """Faust's app as the two agents' register() use it: decorators keep the functions."""

    def __init__(self) -> None:
        self.agents: dict[str, Any] = {}
        self.consumer = SimpleNamespace(_committed_offset={})
        self.consumer_generation_id = 1

    def agent(self, _topic: Any, **_kw: Any) -> Any:
        def keep(fn: Any) -> Any:
            self.agents[fn.__name__] = fn
            return fn

        return keep

    def timer(self, **_kw: Any) -> Any:
        return lambda fn: fn

    def topic(self, *_names: str, **_kw: Any) -> Any:
        return SimpleNamespace()


@dataclass
class RecordingPipeline(Pipeline):
    """A pipeline whose writes are acknowledged after a turn of the loop, and logged."""

    log: list[Any] = field(default_factory=list)

    async def write(
        self, records: Sequence[tuple[faust.TopicT, str, dict[str, Any]]], *, what: str
    ) -> None:
        await asyncio.sleep(0)  # waiting for the acknowledgements: other agents run
        self.log += [("sent", topic, key, value) for topic, key, value in records]


class FakeStream:
    """A stream of one partition's events; logs when the agent takes each."""

    def __init__(self, log: list[Any], messages: list[Message]) -> None:
        self.log = log
        self.messages = messages

    async def events(self) -> AsyncIterator[Any]:
        for message in self.messages:
            self.log.append(("taken", message.topic))
            yield SimpleNamespace(message=message)


def message(topic: str, offset: int, key: bytes, value: dict[str, Any]) -> Message:
    raw = json.dumps(value).encode()
    return Message(topic, 0, offset, 0.0, 0, None, key, raw, None, tp=TP(topic, 0), generation_id=1)


def webhook(offset: int, action: str, body: dict[str, Any], at: str) -> Message:
    envelope = {
        "source": "realgeeks",
        "action": action,
        "message_id": f"m{offset}",
        "timestamp": None,
        "received_at": at,
        "body": json.dumps({"site_uuid": SITE, **body}),
    }
    return message("realgeeks.webhooks.raw", offset, SITE.encode(), envelope)


def pipeline() -> RecordingPipeline:
    settings = Settings.from_env({"RGSYNC_REALGEEKS_SECRETS": "x"})
    p = RecordingPipeline(
        settings=settings,
        app=cast(Any, FakeApp()),
        metrics=Metrics(),
        topics=Topics(**{f.name: cast(Any, f.name) for f in fields(Topics)}),
        tables=Tables(**{f.name: FakeTable() for f in fields(Tables)}),
        publisher=cast(Any, None),
        sequence=cast(Any, None),
    )

    async def batches(
        stream: list[list[Any]], _max: int, **_linger: float
    ) -> AsyncIterator[list[Any]]:
        for batch in stream:
            yield [SimpleNamespace(message=m) for m in batch]

    p.sequence = cast(Any, SimpleNamespace(batches=batches))
    normalize_leads.register(p, record_stories.StoryWriter(p))
    track_lead_calls.register(p)
    return p


def stored_context(p: Pipeline) -> dict[str, Any]:
    store = p.tables.lead_snapshots.data
    key = IdentityIndex.lead_key(SITE, LEAD) + "#context"
    return cast(dict[str, Any], store._decode_value(store.raw[store._encode_key(key)]))


async def test_an_opt_out_taken_between_two_decisions_of_a_batch_is_not_overwritten() -> None:
    p = pipeline()
    agents = cast(FakeApp, p.app).agents
    lead = {"id": LEAD, "first_name": "Ana", "phone": "+18088172382", "source": "Web"}
    await agents["normalize_leads"]([[webhook(0, "created", lead, "2026-11-27T10:00:00Z")]])
    assert stored_context(p)["eligible"] is True
    p.log.clear()

    # One batch: the lead's name changes (a new context, held in the batch until it is
    # sent), then a user update. The opt-out is taken while the batch is between the two.
    batch = [
        webhook(1, "updated", {**lead, "first_name": "Anna"}, "2026-11-27T10:05:00Z"),
        webhook(2, "user_updated", {"id": "u1", "name": "Ben"}, "2026-11-27T10:05:01Z"),
    ]
    optout = optout_event(
        site_uuid=SITE,
        subject="lead",
        value=LEAD,
        source="elevenlabs",
        at="2026-11-27T11:00:00+00:00",
        reason="asked_during_call",
        by="conv1",
    )
    optouts = FakeStream(p.log, [message(p.settings.topic(names.OPTOUTS), 0, b"k", optout)])
    await asyncio.gather(agents["normalize_leads"]([batch]), agents["track_lead_calls"](optouts))

    sent = [entry for entry in p.log if entry[0] == "sent"]
    # Taken before the batch sent anything (after its first decision: process_batch lets
    # other agents run between decisions).
    assert p.log.index(("taken", "sync.optouts")) < p.log.index(sent[0])
    contexts = [value for _s, topic, _k, value in sent if topic == "calls_context"]
    assert [(c["lead"]["first_name"], c["eligible"]) for c in contexts] == [
        ("Anna", True),  # the batch's
        ("Anna", False),  # the opt-out's, decided on the batch's context and sent last
    ]
    assert contexts[-1]["opt_out"]["source"] == "elevenlabs"
    assert stored_context(p) == contexts[-1]  # what a restarted worker builds on
    changelog = p.tables.lead_snapshots.sent
    key = IdentityIndex.lead_key(SITE, LEAD) + "#context"
    assert [v["eligible"] for k, v in changelog if k == key][-1] is False
