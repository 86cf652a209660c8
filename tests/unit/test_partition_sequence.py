"""PartitionSequence: each partition's offsets are processed without holes."""

from __future__ import annotations

import asyncio
import logging
import weakref
from types import SimpleNamespace
from typing import Any

import faust.streams
import pytest
from faust.types import TP, Message

from realgeeks_sync.app.streaming import offset_guard
from realgeeks_sync.app.streaming.partition_sequence import PartitionSequence

TOPIC = "seq.raw"
TP0 = TP(TOPIC, 0)


class FakeAiokafka:
    def __init__(self, seeks: list[tuple[TP, int]]) -> None:
        self.seeks = seeks

    def seek(self, tp: TP, offset: int) -> None:
        self.seeks.append((tp, offset))


class FakeThread:
    """Faust's consumer thread: call_thread runs a coroutine function on its loop."""

    def __init__(self, seeks: list[tuple[TP, int]]) -> None:
        self.aiokafka = FakeAiokafka(seeks)

    def _ensure_consumer(self) -> FakeAiokafka:
        return self.aiokafka

    async def call_thread(self, fn: Any, *args: Any) -> Any:
        return await fn(*args)


class FakeConsumer:
    """What PartitionSequence uses of Faust's consumer: committed and read offsets, its thread."""

    def __init__(self, committed: int | None = None) -> None:
        self._committed_offset: dict[TP, int | None] = {TP0: committed}
        self._read_offset: dict[TP, int | None] = {}
        self.seeks: list[tuple[TP, int]] = []
        self._thread = FakeThread(self.seeks)
        self.assigned: set[TP] = {TP0}
        # The end of each partition as the last fetch response reported it (None: unknown).
        self.ends: dict[TP, int | None] = {}

    def assignment(self) -> set[TP]:
        return self.assigned

    def highwater(self, tp: TP) -> int | None:
        if tp not in self.assigned:
            raise AssertionError("Partition is not assigned")  # what aiokafka raises
        return self.ends.get(tp)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def make(consumer: FakeConsumer, generation: list[int], clock: Clock) -> PartitionSequence:
    return PartitionSequence(lambda: consumer, lambda: generation[0], clock=clock)


def msg(offset: int, generation: int = 1) -> Message:
    return Message(
        TOPIC, 0, offset, 0.0, 0, None, b"k", b"v", None, tp=TP0, generation_id=generation
    )


async def run(seq: PartitionSequence, offsets: list[int], generation: int = 1) -> list[int]:
    """Feed offsets like a stream; returns those processed (admitted, then finished)."""
    done: list[int] = []
    for offset in offsets:
        m = msg(offset, generation)
        if seq.admit(m):
            done.append(offset)
            seq.finish(m)
    await asyncio.sleep(0.01)  # seeks run in the background
    return done


async def test_contiguous_offsets_from_the_commit_all_pass() -> None:
    consumer, clock = FakeConsumer(committed=10), Clock()
    seq = make(consumer, [1], clock)
    assert await run(seq, [10, 11, 12]) == [10, 11, 12]
    assert consumer.seeks == []


async def test_a_hole_seeks_back_and_waits_for_the_missing_records() -> None:
    consumer, clock = FakeConsumer(committed=0), Clock()
    seq = make(consumer, [1], clock)
    # Offsets 1-9 never arrive (Faust dropped them): 10.. wait, the partition seeks to 1.
    assert await run(seq, [0, 10, 11]) == [0]
    assert consumer.seeks == [(TP0, 1)]  # once, not once per later record
    # The seek delivers 1..11 again: all are processed, in order.
    assert await run(seq, list(range(1, 12))) == list(range(1, 12))


async def test_the_seek_is_repeated_when_the_records_do_not_come() -> None:
    consumer, clock = FakeConsumer(committed=5), Clock()
    seq = make(consumer, [1], clock)
    await run(seq, [7])
    clock.now = 4.0
    await run(seq, [8])
    assert consumer.seeks == [(TP0, 5)]
    clock.now = 6.0
    await run(seq, [9])
    assert consumer.seeks == [(TP0, 5), (TP0, 5)]


async def test_a_hole_right_at_the_committed_offset_is_caught() -> None:
    # The first record of a generation must be the committed offset itself.
    consumer, clock = FakeConsumer(committed=33), Clock()
    seq = make(consumer, [1], clock)
    assert await run(seq, [40]) == []
    assert consumer.seeks == [(TP0, 33)]


async def test_unknown_start_takes_the_first_record() -> None:
    # Faust holds no commit (never committed, or a committed 0): the first record starts.
    consumer, clock = FakeConsumer(committed=None), Clock()
    seq = make(consumer, [1], clock)
    assert await run(seq, [3, 4]) == [3, 4]


async def test_records_read_again_after_a_seek_are_not_processed_twice() -> None:
    consumer, clock = FakeConsumer(committed=0), Clock()
    seq = make(consumer, [1], clock)
    assert await run(seq, [0, 1, 2]) == [0, 1, 2]
    assert await run(seq, [1, 2, 3]) == [3]


async def test_a_new_generation_starts_again_from_the_commit() -> None:
    consumer, clock = FakeConsumer(committed=0), Clock()
    generation = [1]
    seq = make(consumer, generation, clock)
    assert await run(seq, [0, 1, 2]) == [0, 1, 2]
    generation[0] = 2
    consumer._committed_offset[TP0] = 2
    # An old-generation message is left to the new generation; the new one starts at 2.
    assert await run(seq, [3], generation=1) == []
    assert await run(seq, [2, 3], generation=2) == [2, 3]


async def test_finish_marks_the_message_for_the_offset_guard() -> None:
    consumer, clock = FakeConsumer(committed=0), Clock()
    seq = make(consumer, [1], clock)
    m: Any = msg(0)
    assert seq.admit(m)
    assert not offset_guard.finished(m)
    seq.finish(m)
    assert offset_guard.finished(m)


@pytest.mark.parametrize(
    ("read", "end"),
    [
        # Offsets 3 and 4 were the last of the partition and never reached the agent.
        (4, None),
        # The containers tier's crash test: 3 and 4 fetched and dropped by a rebalance
        # before either was handed over; Faust's read offset stays at the last processed
        # one (2), behind the next expected, and no later record comes to show a hole.
        (2, 5),
    ],
)
async def test_a_dropped_tail_is_read_again_after_a_quiet_while(read: int, end: int | None) -> None:
    consumer, clock = FakeConsumer(committed=0), Clock()
    seq = make(consumer, [1], clock)
    assert await run(seq, [0, 1, 2]) == [0, 1, 2]
    consumer._read_offset[TP0] = read
    consumer.ends[TP0] = end
    clock.now = 3.0
    seq.recheck()
    assert consumer.seeks == []  # not quiet for long enough yet
    clock.now = 6.0
    seq.recheck()
    await asyncio.sleep(0.01)
    assert consumer.seeks == [(TP0, 3)]
    assert consumer._read_offset[TP0] == 3  # Faust drops records below its read offset


async def test_recheck_leaves_a_busy_or_caught_up_partition_alone() -> None:
    consumer, clock = FakeConsumer(committed=0), Clock()
    seq = make(consumer, [1], clock)
    assert await run(seq, [0, 1]) == [0, 1]
    consumer._read_offset[TP0] = 1  # caught up: nothing read past what was processed
    clock.now = 60.0
    seq.recheck()
    m = msg(2)
    assert seq.admit(m)  # being processed (a slow Real Geeks call, say)
    consumer._read_offset[TP0] = 5
    clock.now = 120.0
    seq.recheck()
    assert consumer.seeks == []


async def test_a_busy_partition_whose_records_wait_is_reported_once_per_stall(
    caplog: pytest.LogCaptureFixture,
) -> None:
    consumer, clock = FakeConsumer(committed=0), Clock()
    seq = make(consumer, [1], clock)
    assert await run(seq, [0, 1]) == [0, 1]
    m = msg(2)
    assert seq.admit(m)  # being processed, then nothing happens
    consumer._read_offset[TP0] = 4
    consumer.ends[TP0] = 5  # offsets 3 and 4 wait on the broker

    def stalls() -> list[logging.LogRecord]:
        return [r for r in caplog.records if "busy without progress" in r.getMessage()]

    with caplog.at_level(logging.WARNING):
        clock.now = 20.0
        seq.recheck()
        assert stalls() == []  # not quiet for long enough yet
        clock.now = 31.0
        seq.recheck()
        clock.now = 90.0
        seq.recheck()
        assert [(r.partition, r.expected, r.quiet_s) for r in stalls()] == [(0, 2, 31.0)]
        seq.finish(m)  # progress: a later stall is reported again
        assert seq.admit(msg(3))
        clock.now = 200.0
        seq.recheck()
        assert len(stalls()) == 2
    assert consumer.seeks == []  # reported, never sought back while busy


async def test_a_busy_partition_at_its_end_is_not_reported(
    caplog: pytest.LogCaptureFixture,
) -> None:
    consumer, clock = FakeConsumer(committed=0), Clock()
    seq = make(consumer, [1], clock)
    assert seq.admit(msg(0))  # a slow call on the partition's last record
    consumer.ends[TP0] = 1
    with caplog.at_level(logging.WARNING):
        clock.now = 120.0
        seq.recheck()
    assert not [r for r in caplog.records if "busy without progress" in r.getMessage()]


async def test_a_partition_caught_up_to_its_end_is_not_read_again() -> None:
    consumer, clock = FakeConsumer(committed=0), Clock()
    seq = make(consumer, [1], clock)
    assert await run(seq, [0, 1, 2]) == [0, 1, 2]
    consumer._read_offset[TP0] = 2
    consumer.ends[TP0] = 3  # the end: nothing at offset 3 yet
    clock.now = 60.0
    seq.recheck()
    await asyncio.sleep(0.01)
    assert consumer.seeks == []


async def test_a_partition_whose_records_all_were_dropped_is_read_again() -> None:
    # Partition 1 is assigned, Faust read past its commit, but every record it handed over
    # was of an older generation: the agent never admitted one, so no hole ever showed.
    tp1 = TP(TOPIC, 1)
    consumer, clock = FakeConsumer(committed=0), Clock()
    consumer.assigned = {TP0, tp1}
    consumer._committed_offset[tp1] = 7
    seq = make(consumer, [2], clock)
    assert await run(seq, [0], generation=2) == [0]
    stale = Message(TOPIC, 1, 7, 0.0, 0, None, b"k", b"v", None, tp=tp1, generation_id=1)
    assert not seq.admit(stale)
    consumer._read_offset[tp1] = 9
    seq.recheck()  # first look: the quiet period starts now
    clock.now = 6.0
    seq.recheck()
    await asyncio.sleep(0.01)
    assert consumer.seeks == [(tp1, 7)]


async def test_records_dropped_before_any_was_read_in_the_generation_are_read_again() -> None:
    # The writer crash test's stall: after a rebalance Faust forgot partition 1's read
    # offset, its getmany fetched offsets 5 and 6 and dropped them as the generation changed
    # mid-batch, so nothing was ever handed over and the read offset stayed unknown. The
    # partition waited for a later record (none came) with 6 webhooks unprocessed.
    tp1 = TP(TOPIC, 1)
    consumer, clock = FakeConsumer(committed=0), Clock()
    consumer.assigned = {TP0, tp1}
    consumer._committed_offset[tp1] = 5
    consumer.ends[tp1] = 7
    seq = make(consumer, [3], clock)
    assert await run(seq, [0], generation=3) == [0]
    seq.recheck()  # first look: the quiet period starts now
    clock.now = 6.0
    seq.recheck()
    await asyncio.sleep(0.01)
    assert consumer.seeks == [(tp1, 5)]


async def test_a_paused_or_idle_unread_partition_is_no_hole() -> None:
    # Unread too, but paused while tables recover (nothing fetched, nothing dropped), or
    # idle at its end: neither is sought back, and a paused one is quiet only once resumed.
    tp1, tp2 = TP(TOPIC, 1), TP(TOPIC, 2)
    consumer, clock = FakeConsumer(committed=0), Clock()
    consumer.assigned = {TP0, tp1, tp2}
    consumer._committed_offset.update({tp1: 5, tp2: 3})
    consumer.ends.update({tp1: 7, tp2: 3})
    consumer._paused_partitions = {tp1}  # type: ignore[attr-defined]
    seq = make(consumer, [1], clock)
    assert await run(seq, [0]) == [0]
    for second in range(0, 60, 5):
        clock.now = float(second)
        seq.recheck()
    await asyncio.sleep(0.01)
    assert consumer.seeks == []
    consumer._paused_partitions = set()  # type: ignore[attr-defined]
    seq.recheck()
    clock.now += 6.0
    seq.recheck()
    await asyncio.sleep(0.01)
    assert consumer.seeks == [(tp1, 5)]


async def test_an_idle_partition_at_its_end_after_a_seek_is_no_hole() -> None:
    # The false alarm, as a restarted worker saw it: Faust seeks every partition to
    # its committed offset and sets its read offset to that next offset (not a read one),
    # so an idle partition reads "expected 4, got 4"; it warned and counted every 5 s.
    tp1 = TP(TOPIC, 1)
    holes: list[tuple[TP, int, int]] = []
    consumer, clock = FakeConsumer(committed=0), Clock()
    consumer.assigned = {TP0, tp1}
    consumer._committed_offset[tp1] = 4
    consumer._read_offset[tp1] = 4  # perform_seek: the committed offset, nothing read
    consumer.ends[tp1] = 4  # and the partition ends there
    seq = PartitionSequence(
        lambda: consumer, lambda: 1, clock=clock, on_hole=lambda *hole: holes.append(hole)
    )
    assert await run(seq, [0]) == [0]  # another partition of the topic had one record
    consumer._read_offset[TP0] = 0
    consumer.ends[TP0] = 1
    for second in range(0, 240, 5):  # four idle minutes of the 5 s timer
        clock.now = float(second)
        seq.recheck()
    await asyncio.sleep(0.01)
    assert consumer.seeks == [] and holes == []


async def test_a_dropped_record_at_the_expected_offset_is_still_a_hole() -> None:
    # Same read offset, but the end is past it: offset 4 was read and dropped.
    tp1 = TP(TOPIC, 1)
    consumer, clock = FakeConsumer(committed=0), Clock()
    consumer.assigned = {TP0, tp1}
    consumer._committed_offset[tp1] = 4
    consumer._read_offset[tp1] = 4
    consumer.ends[tp1] = 5
    seq = make(consumer, [1], clock)
    assert await run(seq, [0]) == [0]
    seq.recheck()
    clock.now = 6.0
    seq.recheck()
    await asyncio.sleep(0.01)
    assert consumer.seeks == [(tp1, 4)]


async def test_an_unknown_end_or_a_revoked_partition_is_no_hole() -> None:
    tp1 = TP(TOPIC, 1)
    consumer, clock = FakeConsumer(committed=0), Clock()
    consumer.assigned = {TP0, tp1}
    consumer._committed_offset[tp1] = 4
    consumer._read_offset[tp1] = 4  # no fetch response yet: end unknown
    seq = make(consumer, [1], clock)
    assert await run(seq, [0]) == [0]
    for now in (0.0, 6.0, 12.0):
        clock.now = now
        seq.recheck()
    assert not PartitionSequence._has_record_at(consumer, TP(TOPIC, 9), 0)  # not assigned
    await asyncio.sleep(0.01)
    assert consumer.seeks == []


class FakeEvent:
    def __init__(self, message: Message) -> None:
        self.message = message


class FakeStream:
    """What batches() uses of a Faust stream: its events, its channel's queue, ack."""

    def __init__(self, messages: list[Message]) -> None:
        self.pending = [FakeEvent(m) for m in messages]
        self.channel = SimpleNamespace(queue=self)
        self.enable_acks = True
        self.acked: list[int] = []

    def empty(self) -> bool:
        return not self.pending

    async def events(self) -> Any:
        while self.pending:
            await asyncio.sleep(0)
            event = self.pending.pop(0)
            faust.streams._current_event.set(weakref.ref(event))  # as Faust's stream does
            yield event

    async def ack(self, event: Any) -> bool:
        self.acked.append(event.message.offset)
        return True


async def test_waiting_events_are_taken_together_and_finished_together() -> None:
    consumer, clock = FakeConsumer(committed=0), Clock()
    seq = make(consumer, [1], clock)
    messages = [msg(o) for o in range(7)]
    stream: Any = FakeStream(messages)
    batches = seq.batches(stream, 3)
    first = await batches.__anext__()
    assert [e.message.offset for e in first] == [0, 1, 2]
    # Nothing of a batch is finished or acknowledged while the agent works on it.
    assert stream.acked == [] and not any(offset_guard.finished(m) for m in messages[:3])
    assert stream.enable_acks is False  # Faust's own early acknowledgement is off
    second = await batches.__anext__()
    assert [e.message.offset for e in second] == [3, 4, 5]
    assert stream.acked == [0, 1, 2] and all(offset_guard.finished(m) for m in messages[:3])
    third = await batches.__anext__()
    assert [e.message.offset for e in third] == [6]  # the queue ran dry: no waiting
    assert consumer.seeks == []


async def test_a_hole_inside_a_batch_ends_it_and_seeks_to_the_missing_offset() -> None:
    consumer, clock = FakeConsumer(committed=0), Clock()
    seq = make(consumer, [1], clock)
    stream: Any = FakeStream([msg(0), msg(1), msg(5), msg(6)])
    batches = seq.batches(stream, 10)
    first = await batches.__anext__()
    assert [e.message.offset for e in first] == [0, 1]
    await asyncio.sleep(0.01)
    assert consumer.seeks == [(TP0, 2)]
    assert stream.acked == [5]  # refused by the guard: read again after the seek


async def test_a_batch_abandoned_mid_way_leaves_every_event_unfinished() -> None:
    consumer, clock = FakeConsumer(committed=0), Clock()
    seq = make(consumer, [1], clock)
    messages = [msg(o) for o in range(4)]
    stream: Any = FakeStream(messages)
    batches = seq.batches(stream, 10)
    batch = await batches.__anext__()
    assert len(batch) == 4
    await batches.aclose()  # the agent was cancelled or raised
    assert stream.acked == []
    assert not any(offset_guard.finished(m) for m in messages)
    assert seq.next_offset(TP0) == 0


@pytest.mark.parametrize("max_size", [10, 1])
async def test_a_run_the_agent_gave_up_is_read_again_by_recheck(max_size: int) -> None:
    # The containers tier's crash test once waited on a partition whose agent held a run
    # and never finished it, with no record after it: busy for good, never sought back.
    consumer, clock = FakeConsumer(committed=0), Clock()
    seq = make(consumer, [1], clock)
    seq.recheck()
    assert await run(seq, [0, 1]) == [0, 1]
    stream: Any = FakeStream([msg(2), msg(3)])
    batches = seq.batches(stream, max_size)
    await batches.__anext__()
    consumer._read_offset[TP0] = 3 if max_size > 1 else 2
    consumer.ends[TP0] = 4
    clock.now = 60.0
    seq.recheck()
    assert consumer.seeks == []  # busy: its agent may be in a slow call
    await batches.aclose()  # the agent raised: the loop's finalizer closes its generator
    assert seq.next_offset(TP0) == 2  # nothing of the run was finished
    clock.now = 62.0
    seq.recheck()
    assert consumer.seeks == []  # quiet for reseek_after_s first
    clock.now = 70.0
    seq.recheck()
    await asyncio.sleep(0.01)
    assert consumer.seeks == [(TP0, 2)]
    assert seq.admit(msg(2))  # the run comes again and is processed


async def test_a_run_gathered_when_the_stream_stops_is_read_again() -> None:
    consumer, clock = FakeConsumer(committed=None), Clock()
    seq = make(consumer, [1], clock)
    stream: Any = FakeStream([msg(5), msg(6)])
    # More always seems to come, so the run is still gathering when the stream stops
    # (Faust stops a revoked partition's actor's stream so).
    stream.empty = lambda: False
    batches = seq.batches(stream, 10)
    with pytest.raises(StopAsyncIteration):
        await batches.__anext__()
    assert seq.next_offset(TP0) == 5  # the first record of the run given up
    consumer._read_offset[TP0] = 6
    consumer.ends[TP0] = 7
    clock.now = 60.0
    seq.recheck()
    await asyncio.sleep(0.01)
    assert consumer.seeks == [(TP0, 5)]


async def test_batches_of_one_are_events_one_at_a_time() -> None:
    consumer, clock = FakeConsumer(committed=0), Clock()
    seq = make(consumer, [1], clock)
    stream: Any = FakeStream([msg(o) for o in range(3)])
    seen = []
    async for batch in seq.batches(stream, 1):
        seen.append([e.message.offset for e in batch])
    assert seen == [[0], [1], [2]]
    assert stream.enable_acks is True  # one at a time: Faust acknowledges, as before


def msg1(offset: int) -> Message:
    return Message(
        TOPIC, 1, offset, 0.0, 0, None, b"k", b"v", None, tp=TP(TOPIC, 1), generation_id=1
    )


async def test_an_event_of_another_partition_ends_the_batch_and_starts_the_next() -> None:
    consumer, clock = FakeConsumer(committed=0), Clock()
    consumer._committed_offset[TP(TOPIC, 1)] = 0
    seq = make(consumer, [1], clock)
    stream: Any = FakeStream([msg(0), msg(1), msg1(0), msg1(1), msg(2)])
    batches = seq.batches(stream, 10)

    def offsets(batch: Any) -> list[tuple[int, int]]:
        return [(e.message.partition, e.message.offset) for e in batch]

    first = await batches.__anext__()
    assert offsets(first) == [(0, 0), (0, 1)]
    # Partition 1's first event was taken last (and held): table writes must still go to
    # the batch's partition, so the current event is the batch's own again.
    assert faust.streams.current_event() is first[-1]
    second = await batches.__anext__()
    assert offsets(second) == [(1, 0), (1, 1)]  # the held event starts it
    assert faust.streams.current_event() is second[-1]
    assert stream.acked == [0, 1]  # the first batch, once the agent asked for the next
    third = await batches.__anext__()
    assert offsets(third) == [(0, 2)]
    assert consumer.seeks == []


async def test_a_backlogged_partition_waits_for_more_until_the_deadline() -> None:
    # The broker holds far more than a batch past what was taken (a backlog): the batch
    # waits for Faust to hand more over, up to linger_s in all (here a clock moved by hand).
    consumer, clock = FakeConsumer(committed=0), Clock()
    consumer.ends[TP0] = 1000
    seq = make(consumer, [1], clock)
    stream: Any = FakeStream([msg(0)])

    async def broker() -> None:
        await asyncio.sleep(0.003)
        stream.pending.append(FakeEvent(msg(1)))  # handed over while the batch waits
        await asyncio.sleep(0.003)
        clock.now = 0.006  # past the 5 ms deadline

    handing = asyncio.ensure_future(broker())
    batch = await seq.batches(stream, 10, linger_s=0.005).__anext__()
    assert [e.message.offset for e in batch] == [0, 1]
    assert clock.now == 0.006  # it returned only at the deadline, not when the queue ran dry
    await handing


async def test_a_partition_without_a_full_batch_more_never_waits() -> None:
    consumer, clock = FakeConsumer(committed=0), Clock()
    consumer.ends[TP0] = 10  # nine records past offset 0: less than a batch of 10 more
    seq = make(consumer, [1], clock)
    stream: Any = FakeStream([msg(0)])
    batch = await asyncio.wait_for(seq.batches(stream, 10).__anext__(), timeout=5)
    assert [e.message.offset for e in batch] == [0]  # the clock never moved: no wait


async def test_a_partition_under_steady_traffic_waits_for_records_not_fetched_yet() -> None:
    # Runs a few milliseconds apart: the next run waits up to busy_linger_s for a record
    # the broker does not even hold yet (no end past it), and takes it with the first.
    consumer, clock = FakeConsumer(committed=0), Clock()
    seq = make(consumer, [1], clock)
    stream: Any = FakeStream([msg(0)])
    batches = seq.batches(stream, 10, busy_linger_s=0.025)
    first = await asyncio.wait_for(batches.__anext__(), timeout=5)
    assert [e.message.offset for e in first] == [0]  # lone: no wait (the clock never moved)
    clock.now = 0.010
    stream.pending.append(FakeEvent(msg(1)))

    async def broker() -> None:
        await asyncio.sleep(0.003)
        stream.pending.append(FakeEvent(msg(2)))  # came while the run waited
        await asyncio.sleep(0.003)
        clock.now = 0.036  # past the run's 25 ms

    handing = asyncio.ensure_future(broker())
    second = await asyncio.wait_for(batches.__anext__(), timeout=5)
    assert [e.message.offset for e in second] == [1, 2]
    assert clock.now == 0.036  # it waited until the linger ran out, not when the queue ran dry
    await handing


async def test_a_quiet_partition_and_a_linger_of_zero_never_wait_for_unfetched_records() -> None:
    for busy_linger_s, gap_s in ((0.025, 1.0), (0.0, 0.001)):
        consumer, clock = FakeConsumer(committed=0), Clock()
        seq = make(consumer, [1], clock)
        stream: Any = FakeStream([msg(0)])
        batches = seq.batches(stream, 10, busy_linger_s=busy_linger_s)
        await asyncio.wait_for(batches.__anext__(), timeout=5)
        clock.now = gap_s  # a second apart: not steady traffic (or lingering is off)
        stream.pending.append(FakeEvent(msg(1)))
        batch = await asyncio.wait_for(batches.__anext__(), timeout=5)
        assert [e.message.offset for e in batch] == [1]
        assert clock.now == gap_s  # returned at once: the clock never had to move


async def test_a_partition_stays_steady_while_its_runs_take_several() -> None:
    consumer, clock = FakeConsumer(committed=0), Clock()
    seq = make(consumer, [1], clock)
    stream: Any = FakeStream([msg(0), msg(1)])
    batches = seq.batches(stream, 10, busy_linger_s=0.025)
    first = await asyncio.wait_for(batches.__anext__(), timeout=5)
    assert [e.message.offset for e in first] == [0, 1]  # both waiting: no linger needed
    # A second later, but the last run took two: still steady, so this run waits for a
    # record the broker does not hold yet (no known end: no backlog).
    clock.now = 1.0
    stream.pending.append(FakeEvent(msg(2)))

    async def broker() -> None:
        await asyncio.sleep(0.003)
        stream.pending.append(FakeEvent(msg(3)))
        await asyncio.sleep(0.003)
        clock.now = 1.030

    handing = asyncio.ensure_future(broker())
    second = await asyncio.wait_for(batches.__anext__(), timeout=5)
    assert [e.message.offset for e in second] == [2, 3]
    assert clock.now == 1.030  # it waited out the linger
    await handing
