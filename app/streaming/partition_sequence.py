"""Process every partition's offsets without holes, reading skipped records again.

Around a rebalance faust-streaming drops records it already fetched (its getmany stops
yielding when the generation changes or flow control pauses, and streams skip messages
of an older generation) and counts on seeking back to the committed offset to read them
again. When the drop comes after that seek, the consumer's position is already past the
records: the worker goes on with later offsets and never sees them (the crash test saw
offsets 1-9 of a partition skipped this way). The offset guard keeps such offsets from
being committed, so a restart would read them; this check makes the running worker read
them: an offset past the next expected one means a hole, so the partition is sought back
and later records wait until the missing ones arrive.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import faust
import faust.streams
from faust.types import TP, Message

from realgeeks_sync.app.streaming.offset_guard import mark_finished

__all__ = ["PartitionSequence"]

_BUSY_WINDOWS = 2
"""A partition comes under steady traffic when its runs start less than this many lingers
apart, and stays under it while its runs take more than one event."""

log = logging.getLogger(__name__)


@dataclass
class _Position:
    generation: int | None
    expected: int | None  # next offset to process; None: take the first one that comes
    sought_at: float = float("-inf")
    busy: bool = False  # an admitted message is being processed
    progressed_at: float = 0.0
    run_started_at: float = float("-inf")  # batches(): when the last run's first event came
    run_size: int = 0  # batches(): how many events the last run took
    stuck_warned_at: float = float("-inf")  # recheck(): when a stall was last reported
    admitted: int = -1  # the offset admitted last (of the run being processed when busy)


class PartitionSequence:
    """Per partition and consumer generation: the next offset an agent must process.

    One instance may serve several agents that consume different topics; an agent that
    reads a topic another agent reads too needs an instance of its own.
    """

    def __init__(
        self,
        consumer: Callable[[], Any],
        generation: Callable[[], int | None],
        *,
        on_hole: Callable[[TP, int, int], None] | None = None,
        reseek_after_s: float = 5.0,
        stuck_after_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._consumer = consumer
        self._generation = generation
        self._on_hole = on_hole
        self._reseek_after_s = reseek_after_s
        self._stuck_after_s = stuck_after_s
        self._clock = clock
        self._positions: dict[TP, _Position] = {}
        self._seeks: set[asyncio.Future[None]] = set()

    async def events(self, stream: faust.StreamT) -> AsyncGenerator[faust.EventT, None]:
        """The stream's events an agent should process now, in offset order per partition.

        An event is marked finished (its offset may be committed, the next one is due) when
        the agent asks for the next; an agent that raises or is cancelled leaves it unmarked.
        """
        async for event in stream.events():
            if self.admit(event.message):
                try:
                    yield event
                except BaseException:
                    self._abandoned(event.message)
                    raise
                self.finish(event.message)

    async def batches(
        self,
        stream: faust.StreamT,
        max_size: int,
        *,
        linger_s: float = 0.005,
        busy_linger_s: float = 0.0,
    ) -> AsyncIterator[Sequence[faust.EventT]]:
        """Runs of consecutive events of one partition, in offset order, as they come.

        A run is the next admitted event and those right behind it that are waiting, up
        to ``max_size``. A partition whose broker holds a full run more than was taken
        (a backlog: an outage caught up, an import) waits, up to ``linger_s`` per run in
        all, for the consumer to hand more over: Faust hands records over one at a time,
        a few event-loop turns each, so without that wait a busy worker's agents would
        rarely find more than one waiting. A partition under steady traffic (its previous
        run started less than two lingers ago, or took more than one event)
        waits up to ``busy_linger_s`` from the run's start for records not fetched yet: at
        300 webhooks/s over 8 partitions runs of one became runs of two or three, and each
        run costs its own writes, sends and acknowledgements. A partition with occasional
        records (runs of one, further apart) never waits.

        Every event of a run is marked finished and acknowledged together when the agent
        asks for the next run; an agent that raises or is cancelled leaves the whole run
        unfinished (its offsets stay uncommitted and are read again). ``max_size`` 1 is
        ``events``, one at a time.
        """
        if max_size <= 1:
            one_by_one = self.events(stream)
            try:
                async for event in one_by_one:
                    yield (event,)
            finally:
                await one_by_one.aclose()  # now: a run given up is known as such at once
            return
        queue = getattr(stream.channel, "queue", None)
        # This generator acknowledges each event itself, after finishing it: Faust's
        # acknowledgement of an event when the next is taken would come too early.
        stream.enable_acks = False
        events = stream.events().__aiter__()
        held: faust.EventT | None = None
        batch: list[faust.EventT] = []  # admitted and not finished yet
        try:
            while True:
                batch = []
                deadline = None
                busy_until = float("-inf")
                while True:
                    if held is not None:
                        event, held = held, None
                    else:
                        try:
                            event = await events.__anext__()
                        except StopAsyncIteration:  # the stream stopped: nothing was finished
                            return
                    if batch and event.message.tp != batch[-1].message.tp:
                        held = event  # another partition's: it starts the next run
                        break
                    if not self.admit(event.message, after=batch[-1].message if batch else None):
                        # Refused by the offset guard (not finished), as Faust's own ack was.
                        await stream.ack(event)
                        if batch:
                            break
                        continue
                    if not batch:
                        busy_until = self._run_started(event.message.tp, busy_linger_s)
                    batch.append(event)
                    if len(batch) >= max_size or queue is None:
                        break
                    if queue.empty():
                        if deadline is None:
                            deadline = self._clock() + linger_s
                        if not await self._more_coming(
                            event.message, queue, max_size, deadline, busy_until
                        ):
                            break
                self._run_taken(batch[0].message.tp, len(batch))
                # Table writes go to the partition of Faust's "current event": the batch's own,
                # even when the event taken last (held for the next run) is another's.
                faust.streams._current_event.set(weakref.ref(batch[-1]))
                yield batch
                for event in batch:
                    self.finish(event.message)
                    await stream.ack(event)
        finally:
            # The agent raised or was cancelled with a run admitted (or being gathered):
            # nobody holds it any more, so its offsets must be read again.
            if batch:
                self._abandoned(batch[0].message)

    def _run_started(self, tp: TP, busy_linger_s: float) -> float:
        """A run of ``tp`` starts now; until when it may wait for records not yet fetched."""
        now = self._clock()
        position = self._positions.get(tp)
        if position is None or busy_linger_s <= 0:
            return float("-inf")
        busy = (
            position.run_size > 1 or now - position.run_started_at <= _BUSY_WINDOWS * busy_linger_s
        )
        position.run_started_at = now
        return now + busy_linger_s if busy else float("-inf")

    def _run_taken(self, tp: TP, size: int) -> None:
        """How many events the run of ``tp`` that started last took."""
        position = self._positions.get(tp)
        if position is not None:
            position.run_size = size

    async def _more_coming(
        self, last: Message, queue: Any, backlog: int, deadline: float, busy_until: float
    ) -> bool:
        """Whether a record behind ``last`` reached the (empty) queue in time.

        Waits until ``busy_until`` (a partition under steady traffic), and until
        ``deadline`` while the broker holds at least ``backlog`` records past ``last`` (its
        end from the consumer's last fetch response).
        """
        while True:
            now = self._clock()
            if now < deadline and self._has_record_at(
                self._consumer(), last.tp, last.offset + backlog
            ):
                step = 0.001  # a backlog: the records are fetched, Faust hands them over
            elif now < busy_until:
                # Coarser steps: a steady partition's next record is milliseconds away.
                step = min(0.005, busy_until - now)
            else:
                return False
            await asyncio.sleep(step)
            if not queue.empty():
                return True

    def admit(self, message: Message, *, after: Message | None = None) -> bool:
        """True when the agent should process this message now.

        False for a message of an older generation (the new one reads it again), one read
        again after a seek (already processed), and one past a hole (the partition is
        sought back to the hole; this message comes again after the missing ones).
        ``after``: the message admitted just before it in the same batch (not finished yet).
        """
        current = self._generation()
        if message.generation_id is not None and message.generation_id != current:
            log.debug(
                "record of an older generation left to the new one",
                extra={"topic": message.topic, "partition": message.partition},
            )
            return False
        position = self._position(message.tp, current)
        expected = position.expected if after is None else after.offset + 1
        if expected is None or message.offset == expected:
            position.busy = True
            position.admitted = message.offset
            position.progressed_at = self._clock()
            return True
        if message.offset > expected:
            self._seek_back(message.tp, position, message.offset, to=expected)
        return False

    def finish(self, message: Message) -> None:
        """The agent is done with this message: its offset may be committed, the next is due."""
        mark_finished(message, by=id(self))
        position = self._positions.get(message.tp)
        if position is not None and position.generation == message.generation_id:
            position.expected = message.offset + 1
            position.busy = False
            position.progressed_at = self._clock()

    def _abandoned(self, message: Message) -> None:
        """The agent gave up a run it was handed (it raised or was cancelled) from this
        message on: the partition is no longer busy, and recheck reads the run again.

        Faust restarts a crashed agent, but the records of the run it dropped never come
        again by themselves: with no later record to show the hole, the partition would
        stay busy, and recheck never seeks a busy partition back.
        """
        position = self._positions.get(message.tp)
        if position is None or position.generation != message.generation_id or not position.busy:
            return
        position.busy = False
        if position.expected is None:  # the run was the first record this generation
            position.expected = message.offset
        position.progressed_at = self._clock()  # read again after a quiet reseek_after_s
        log.info(
            "agent gave up a run before finishing it; reading it again",
            extra={
                "topic": message.topic,
                "partition": message.partition,
                "expected": position.expected,
            },
        )

    def next_offset(self, tp: TP) -> int | None:
        """The next offset of ``tp`` an agent must process in this generation (None: unknown)."""
        return self._position(tp, self._generation()).expected

    def recheck(self) -> None:
        """Seek back partitions whose next record was dropped with nothing after it.

        A hole shows when a later record arrives; one at the end of a partition shows only
        as silence: the consumer has read the expected offset or past it, the agent is idle
        and nothing came for a while. This includes a partition whose every record so far
        was dropped as of an older generation, and one whose fetched records were all
        dropped before any was handed over (its read offset unknown: the crash test's writer
        waited on 6 of 40 activities until a new webhook came). Call it periodically (a
        Faust timer).

        Faust's read offset is the last offset read, except after a seek (a rebalance, a
        restart), when it is the next offset to read: a partition idle at its end then
        reads "expected N, got N" too. Only the partition's end tells the two apart: a
        record at the expected offset exists only when the end is past it.
        """
        consumer = self._consumer()
        current = self._generation()
        # Paused (tables recovering): nothing is fetched, so nothing is dropped either.
        paused: set[TP] = getattr(consumer, "_paused_partitions", set())
        for tp in self._watched_assignment(consumer):
            position = self._position(tp, current)
            if position.busy:
                self._report_stall(consumer, tp, position)
                continue
            if position.expected is None:
                continue
            if tp in paused:
                position.progressed_at = self._clock()  # quiet only from when it resumes
                continue
            read = consumer._read_offset.get(tp)
            if read is None:
                # Nothing handed over in this generation: Faust forgets the read offset on a
                # revocation, and records its getmany drops (the generation changed during a
                # fetched batch) never set it, though the consumer's position is past them.
                # Only the end tells such a drop from a partition idle at its end.
                if not self._has_record_at(consumer, tp, position.expected):
                    continue
                read = position.expected
            elif read < position.expected:
                # Nothing read past what was processed. Idle at the end, or the next records
                # were fetched and dropped before any was handed over (a rebalance during the
                # getmany), which leaves the read offset behind: the containers tier's crash
                # test waited on 80 webhooks of one partition so, none coming after them.
                if not self._has_record_at(consumer, tp, position.expected):
                    continue
                read = position.expected
            elif read == position.expected and not self._has_record_at(consumer, tp, read):
                continue  # idle at the end of the partition: nothing was skipped
            if self._clock() - position.progressed_at >= self._reseek_after_s:
                self._seek_back(tp, position, int(read))

    def _report_stall(self, consumer: Any, tp: TP, position: _Position) -> None:
        """Warn, once per stall, of a partition busy for ``stuck_after_s`` without progress
        while the broker holds records after the ones being processed.

        A busy partition is never sought back (its agent may be in a slow call); but its
        leads wait, so an operator (and a failed crash test's log) should see it.
        """
        now = self._clock()
        quiet = now - position.progressed_at
        if quiet < self._stuck_after_s or position.stuck_warned_at >= position.progressed_at:
            return
        if not self._has_record_at(consumer, tp, position.admitted + 1):
            return
        position.stuck_warned_at = now
        log.warning(
            "partition busy without progress while its records wait",
            extra={
                "topic": tp.topic,
                "partition": tp.partition,
                "expected": position.expected,
                "admitted": position.admitted,
                "read": consumer._read_offset.get(tp),
                "quiet_s": round(quiet, 1),
            },
        )

    @staticmethod
    def _has_record_at(consumer: Any, tp: TP, offset: int) -> bool:
        """Whether the partition's last known end is past ``offset`` (False when unknown).

        The end comes with every fetch response, so a record that was read and dropped
        always left a known end past it; no known end means nothing was read yet.
        """
        try:
            end = consumer.highwater(tp)
        except Exception:  # noqa: BLE001 - not assigned (any more), or no consumer yet
            return False
        return end is not None and int(end) > offset

    def _position(self, tp: TP, current: int | None) -> _Position:
        """This generation's position of a partition, started at the committed offset.

        Without a committed offset in Faust (never committed, a committed 0, or forgotten
        on a revocation) the first record that comes is the start. Asking the broker would
        mean waiting on the consumer's thread from an agent, which stalled a worker once;
        the offset guard still keeps such a hole uncommitted, so a restart reads it.
        """
        position = self._positions.get(tp)
        if position is None or position.generation != current:
            committed = self._consumer()._committed_offset.get(tp)
            expected = int(committed) if committed is not None else None
            position = _Position(current, expected, progressed_at=self._clock())
            self._positions[tp] = position
        return position

    def _watched_assignment(self, consumer: Any) -> list[TP]:
        """Assigned partitions of the topics agents have taken records from."""
        topics = {tp.topic for tp in self._positions}
        try:
            return [tp for tp in consumer.assignment() if tp.topic in topics]
        except Exception:  # noqa: BLE001 - no assignment yet (starting, rebalancing)
            return []

    def _seek_back(self, tp: TP, position: _Position, got: int, *, to: int | None = None) -> None:
        """Seek ``tp`` back to ``to`` (default: the next offset to process)."""
        offset = position.expected if to is None else to
        assert offset is not None
        now = self._clock()
        if now - position.sought_at < self._reseek_after_s:
            return
        position.sought_at = now
        log.warning(
            "consumer skipped offsets; reading them again",
            extra={
                "topic": tp.topic,
                "partition": tp.partition,
                "expected": offset,
                "got": got,
            },
        )
        if self._on_hole is not None:
            self._on_hole(tp, offset, got)
        # In the background: an agent never waits on the consumer's thread (an agent blocked
        # there while the thread waited on a rebalance stalled a whole worker); a seek that
        # fails or hangs is simply made again after reseek_after_s.
        task = asyncio.ensure_future(self._seek(tp, offset))
        self._seeks.add(task)
        task.add_done_callback(self._seek_done)

    async def _seek(self, tp: TP, offset: int) -> None:
        consumer = self._consumer()
        thread = consumer._thread
        aiokafka_consumer = thread._ensure_consumer()

        async def seek_on_thread() -> None:
            # aiokafka is not thread-safe: a seek from the agents' loop wedged its fetcher.
            aiokafka_consumer.seek(tp, offset)

        await asyncio.wait_for(thread.call_thread(seek_on_thread), timeout=self._reseek_after_s)
        # Faust drops records below its read offset: let the re-read ones through.
        consumer._read_offset[tp] = offset if offset else None

    def _seek_done(self, task: asyncio.Future[None]) -> None:
        self._seeks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("seek back failed; trying again", extra={"error": repr(task.exception())})
