"""Commit a consumed offset only after an agent finished with its message.

faust-streaming acknowledges an event in a ``finally`` when the agent leaves it, so an
actor cancelled mid-message (rebalance, shutdown) acknowledges it unprocessed; messages
skipped as belonging to an older consumer generation, or arriving while flow control is
suspended, are acknowledged too. Once such an offset is committed the message is never
read again: an acknowledged webhook would be lost. This guard lets an acknowledgement
through only for messages every agent consuming the topic marked finished in the current
generation (two agents read sync.optouts: each may be cancelled mid-message on its own),
and makes the commit stop at the first offset not acknowledged (upstream treats a gap of
one message as no gap).

Worse, when its fetch loop jumps offsets (it drops fetched records around a rebalance),
Faust records the jump as a "gap" like those compaction or transaction markers leave and
commits straight over it: the crash test lost 118 webhooks that way. Agent topics are
neither compacted nor written in transactions, so they have no such gaps: for them a jump
is never recorded, the commit stops there, and app/streaming/partition_sequence.py reads the
skipped records again. Topics not listed keep Faust's own behaviour.
"""

from __future__ import annotations

import logging
import weakref
from collections import Counter
from collections.abc import Awaitable, Callable, Hashable, Iterable
from typing import Any

import faust.streams
from faust.transport.consumer import Consumer
from faust.types import Message

__all__ = ["admits_ack", "finished", "install", "mark_finished", "one_message_gap"]

log = logging.getLogger(__name__)

# message -> who marked it finished (one marker per agent's PartitionSequence)
_finished: weakref.WeakKeyDictionary[Message, set[Hashable]] = weakref.WeakKeyDictionary()
# guarded topic -> how many agents consume it (Faust acks a message once all of them left it)
_consumers: Counter[str] = Counter()
_original_ack: Callable[[Consumer, Message], bool] | None = None
_original_new_offset: Callable[[Consumer, Any], int | None] | None = None
_original_add_gap: Callable[[Consumer, Any, int, int], Awaitable[None]] | None = None


def mark_finished(message: Message, by: Hashable = None) -> None:
    """Record that an agent (``by``: one marker per agent) is done with this message
    (outputs acknowledged or dead-lettered)."""
    _finished.setdefault(message, set()).add(by)


def finished(message: Message) -> bool:
    """True once every agent consuming its topic called mark_finished for this very
    message object (one of them, for a topic no install counted)."""
    marks = _finished.get(message)
    return marks is not None and len(marks) >= _consumers.get(message.topic, 1)


def admits_ack(message: Message, current_generation: int | None) -> bool:
    """Whether an acknowledgement of this message may advance the committed offset."""
    if message.topic not in _consumers:
        return True
    if message.generation_id is not None and message.generation_id != current_generation:
        return False  # fetched before a rebalance: the new generation reads it again
    return finished(message)


def one_message_gap(acked: list[int], committed: int | None, gap_known: bool) -> bool:
    """True when exactly the next offset to commit is missing from the acknowledgements.

    Upstream refuses larger gaps itself; a single missing offset is a gap too unless the
    broker left it out (compaction, transaction markers), which Faust records as known.
    """
    if not acked or committed is None or gap_known:
        return False
    return min(acked) == committed + 1


def _guarded_ack(self: Consumer, message: Message) -> bool:
    assert _original_ack is not None
    if admits_ack(message, self.app.consumer_generation_id):
        return _original_ack(self, message)
    # Refused: the offset stays uncommitted and the message is read again after the
    # rebalance or restart; the idempotent agents make that repeat harmless.
    message.acked = True
    self._unacked_messages.discard(message)
    log.info(
        "acknowledgement refused for an unfinished message",
        extra={"topic": message.topic, "partition": message.partition, "offset": message.offset},
    )
    return False


def _guarded_new_offset(self: Consumer, tp: Any) -> int | None:
    assert _original_new_offset is not None
    committed = self._committed_offset[tp]
    if tp.topic in _consumers and one_message_gap(
        self._acked[tp], committed, committed is not None and self._gap[tp].overlaps(committed)
    ):
        return None
    return _original_new_offset(self, tp)


async def _guarded_add_gap(self: Consumer, tp: Any, offset_from: int, offset_to: int) -> None:
    assert _original_add_gap is not None
    if tp.topic in _consumers:
        return  # records the consumer skipped, not a gap the broker left: never commit over it
    await _original_add_gap(self, tp, offset_from, offset_to)


def install(topics: Iterable[str]) -> None:
    """Guard acknowledgements of these topics, one entry per agent consuming it
    (idempotent; call before the worker starts)."""
    global _original_ack, _original_new_offset, _original_add_gap
    counts = Counter(topics)
    for topic, agents in counts.items():
        _consumers[topic] = max(_consumers[topic], agents)
    # Faust's Cython stream iterator inlines Consumer.ack instead of calling it, which
    # would bypass the guard: streams take the pure-Python path (it calls Message.ack).
    faust.streams._CStreamIterator = None  # type: ignore[attr-defined]
    if _original_ack is None:
        _original_ack = Consumer.ack
        _original_new_offset = Consumer._new_offset
        _original_add_gap = Consumer._add_gap
        Consumer.ack = _guarded_ack  # type: ignore[method-assign]
        Consumer._new_offset = _guarded_new_offset  # type: ignore[method-assign]
        Consumer._add_gap = _guarded_add_gap  # type: ignore[method-assign]
