"""The offset guard: only messages an agent finished may advance the committed offset.

These run Faust's real consumer bookkeeping (ack, _new_offset) without a broker.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest
from faust.types import TP, Message

from realgeeks_sync.app.core.settings import Settings
from realgeeks_sync.app.main import build
from realgeeks_sync.app.streaming import offset_guard
from realgeeks_sync.app.streaming.pipeline import Pipeline

PREFIX = "guardtest."


@pytest.fixture(autouse=True, scope="module")
def gc_untouched() -> Iterator[None]:
    # build() tunes this process's garbage collector as a worker's: give the suite its own back.
    callbacks, threshold = list(gc.callbacks), gc.get_threshold()
    yield
    gc.callbacks[:] = callbacks
    gc.set_threshold(*threshold)
    gc.unfreeze()


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    env = {
        "RGSYNC_GC_FREEZE": "false",  # no freeze hooks on an app that never runs
        "RGSYNC_REALGEEKS_SECRETS": "x",
        "RGSYNC_TOPIC_PREFIX": PREFIX,
        "RGSYNC_DATA_DIR": str(tmp_path_factory.mktemp("data")),
    }
    pipeline = build(Settings.from_env(env))
    yield pipeline
    pipeline.publisher.close(0.1)


def _consumer(pipeline: Pipeline, topic: str) -> object:
    consumer = pipeline.app.consumer
    # A running worker registers its topics with the conductor; do it by hand here.
    pipeline.app.topics._acking_topics.add(topic)
    pipeline.app.consumer_generation_id = 7
    return consumer


def _message(topic: str, offset: int, generation: int | None = 7) -> Message:
    return Message(
        topic, 0, offset, 0.0, 0, None, b"k", b"v", None, tp=TP(topic, 0), generation_id=generation
    )


def test_every_agent_topic_is_guarded(pipeline: Pipeline) -> None:
    guarded = offset_guard._consumers
    for name in (
        "realgeeks.webhooks.raw",
        "elevenlabs.webhooks.raw",
        "realgeeks.activities.outbound",
        "calls.context",
        "sync.optouts",
        # record_stories reads these into the leads' stories
        "activities.normalized",
        "sync.deadletter",
    ):
        assert PREFIX + name in guarded
    # normalize_leads writes its lead events' story entries itself: nothing reads them back.
    assert PREFIX + "leads.normalized" not in guarded


def test_streams_call_the_guarded_ack(pipeline: Pipeline) -> None:
    import faust.streams

    # The Cython iterator would ack messages without calling Consumer.ack.
    assert faust.streams._CStreamIterator is None  # type: ignore[attr-defined]


def test_unfinished_message_is_not_committable(pipeline: Pipeline) -> None:
    topic = PREFIX + "realgeeks.webhooks.raw"
    consumer = _consumer(pipeline, topic)
    tp = TP(topic, 0)
    consumer._committed_offset[tp] = 10  # type: ignore[attr-defined]
    cancelled = _message(topic, 10)  # the actor was cancelled while processing it
    assert consumer.ack(cancelled) is False  # type: ignore[attr-defined]
    done = _message(topic, 11)
    offset_guard.mark_finished(done)
    assert consumer.ack(done) is True  # type: ignore[attr-defined]
    # Offset 10 was never finished: nothing may be committed past it.
    assert consumer._new_offset(tp) is None  # type: ignore[attr-defined]
    again = _message(topic, 10)  # read again (restart or rebalance) and finished this time
    offset_guard.mark_finished(again)
    assert consumer.ack(again) is True  # type: ignore[attr-defined]
    assert consumer._new_offset(tp) == 12  # type: ignore[attr-defined]


def test_message_from_an_older_generation_is_refused(pipeline: Pipeline) -> None:
    topic = PREFIX + "elevenlabs.webhooks.raw"
    consumer = _consumer(pipeline, topic)
    stale = _message(topic, 0, generation=6)
    offset_guard.mark_finished(stale)  # finished, but fetched before the rebalance
    assert consumer.ack(stale) is False  # type: ignore[attr-defined]
    assert not consumer._acked[TP(topic, 0)]  # type: ignore[attr-defined]


def test_unguarded_topics_keep_fausts_rules(pipeline: Pipeline) -> None:
    topic = PREFIX + "not-consumed-by-an-agent"
    consumer = _consumer(pipeline, topic)
    assert consumer.ack(_message(topic, 0)) is True  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("acked", "committed", "known", "blocks"),
    [
        ([11, 12], 10, False, True),  # offset 10 missing: upstream would commit 13
        ([10, 11], 10, False, False),
        ([11, 12], 10, True, False),  # the broker left offset 10 out (compaction)
        ([11], None, False, False),  # nothing committed yet in this generation
        ([], 10, False, False),
    ],
)
def test_one_message_gap(
    acked: list[int], committed: int | None, known: bool, blocks: bool
) -> None:
    assert offset_guard.one_message_gap(acked, committed, known) is blocks


def test_install_twice_wraps_once(tmp_path: Path) -> None:
    # install() is idempotent: a second build adds its topics without wrapping twice.
    before = offset_guard._original_ack
    build(
        Settings.from_env(
            {
                "RGSYNC_GC_FREEZE": "false",
                "RGSYNC_REALGEEKS_SECRETS": "x",
                "RGSYNC_TOPIC_PREFIX": "other.",
                "RGSYNC_DATA_DIR": str(tmp_path),
            }
        )
    )
    assert offset_guard._original_ack is before
    assert "other.realgeeks.webhooks.raw" in offset_guard._consumers


async def test_a_jump_in_fetched_offsets_is_never_committed_over(pipeline: Pipeline) -> None:
    # Faust calls a jump in fetched offsets a "gap" (compaction) and commits over it; for
    # agent topics the jump is records it dropped, so the commit must stop there.
    topic = PREFIX + "realgeeks.activities.outbound"
    consumer = _consumer(pipeline, topic)
    tp = TP(topic, 0)
    consumer._committed_offset[tp] = 33  # type: ignore[attr-defined]
    await consumer._add_gap(tp, 42, 97)  # type: ignore[attr-defined]
    for offset in [*range(33, 42), *range(98, 101)]:
        message = _message(topic, offset)
        offset_guard.mark_finished(message)
        assert consumer.ack(message) is True  # type: ignore[attr-defined]
    assert consumer._new_offset(tp) == 42  # type: ignore[attr-defined]
    consumer._committed_offset[tp] = 42  # type: ignore[attr-defined]
    assert consumer._new_offset(tp) is None  # type: ignore[attr-defined]


async def test_unguarded_topics_keep_fausts_gaps(pipeline: Pipeline) -> None:
    topic = PREFIX + "compacted-elsewhere"
    consumer = _consumer(pipeline, topic)
    tp = TP(topic, 0)
    consumer._committed_offset[tp] = 3  # type: ignore[attr-defined]
    await consumer._add_gap(tp, 5, 9)  # type: ignore[attr-defined]
    assert consumer._gap[tp]  # type: ignore[attr-defined]


def test_a_topic_two_agents_read_commits_only_what_both_finished(pipeline: Pipeline) -> None:
    # sync.optouts feeds the dialer and track_lead_calls: either may be cancelled mid-message.
    topic = PREFIX + "sync.optouts"
    assert offset_guard._consumers[topic] == 2
    consumer = _consumer(pipeline, topic)
    tp = TP(topic, 0)
    consumer._committed_offset[tp] = 5  # type: ignore[attr-defined]
    half = _message(topic, 5)
    offset_guard.mark_finished(half, by="dialer")
    assert not offset_guard.finished(half)
    assert consumer.ack(half) is False  # type: ignore[attr-defined]
    assert consumer._new_offset(tp) is None  # type: ignore[attr-defined]
    both = _message(topic, 5)  # read again and finished by both this time
    offset_guard.mark_finished(both, by="dialer")
    offset_guard.mark_finished(both, by="dialer")  # a mark counts once per agent
    assert not offset_guard.finished(both)
    offset_guard.mark_finished(both, by="track_lead_calls")
    assert consumer.ack(both) is True  # type: ignore[attr-defined]
    assert consumer._new_offset(tp) == 6  # type: ignore[attr-defined]
