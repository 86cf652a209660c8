"""Table writes whose changelog records are handed to the producer at once, in order.

A Faust table assignment (``table[key] = value``) only queues its changelog record in
Faust's producer buffer; a background task hands it to the Kafka producer later. That is
fine where the input message is read again until the producer is flushed (Faust flushes it
before committing an offset), but not before a side effect outside Kafka: the dialer must
record "this call request is leaving" where a restart will find it *before* the request
leaves, or a restart would send it again.

``write_tables`` sets the values locally and hands every changelog record straight to the
Kafka producer (no buffer: one fewer hop, and records for one key keep their order since
all the writes of a table go this way), then, with ``durable``, waits until the broker
acknowledged each one (acks=all). Call it inside stream iteration, like any table write,
and use it for every write of the tables it serves, never mixed with ``table[key] = ...``
(a buffered older value could otherwise reach the changelog after a newer one).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

from realgeeks_sync.app.streaming.broker_retry import write_until_acknowledged

__all__ = ["TableChange", "write_tables"]

TableChange = tuple[Any, str, Any]
"""(Faust table, key, value); a value of None deletes the key."""


async def write_tables(
    changes: Sequence[TableChange],
    *,
    durable: bool,
    what: str = "table writes",
    on_retry: Callable[[BaseException], None] | None = None,
) -> None:
    """Apply ``changes`` to the tables and send their changelog records now, in order.

    With ``durable``, wait for the broker's acknowledgements; refusals are retried
    (app/streaming/broker_retry.py): the records carry whole values, so sending again is harmless.
    """
    if not changes:
        return
    for table, key, value in changes:
        if value is None:
            table.data.pop(key, None)
        else:
            table.data[key] = value

    async def send_all() -> None:
        futures = []
        for table, key, value in changes:
            topic = table.changelog_topic
            future = topic.as_future_message(
                key=key,
                value=value,
                partition=table.partition_for_key(key),
                key_serializer=table.key_serializer,
                value_serializer="raw" if value is None else table.value_serializer,
                # As Faust's own writes: the offset kept in RocksDB spares recovery work.
                callback=table._on_changelog_sent,
            )
            await topic.publish_message(future, wait=False)
            futures.append(future)
        if durable:
            _send_now(changes[0][0].app)
            await asyncio.gather(*futures)

    await write_until_acknowledged(send_all, what=what, on_retry=on_retry)


def _send_now(app: Any) -> None:
    """End the producer's linger for what is queued: a durable write is waited for.

    The same as aiokafka's ``flush_for_commit`` does before a transaction commits (close the
    batches being filled, wake the sender), without waiting for everything else queued.
    Saves up to ``producer_linger`` on the call path; without aiokafka's internals (another
    version) the records simply leave after the linger.
    """
    try:
        accumulator = app.producer._ensure_producer()._message_accumulator
        for batches in accumulator._batches.values():
            for batch in batches:
                batch._builder.close()
        if not accumulator._waiter_future.done():
            accumulator._waiter_future.set_result(None)
    except AttributeError:
        return
