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
from functools import partial
from typing import Any

from faust.types import TP

from realgeeks_sync.app.streaming.broker_retry import write_until_acknowledged
from realgeeks_sync.app.streaming.bulk_send import Record, send_records
from realgeeks_sync.app.streaming.partition_db import partition_db
from realgeeks_sync.app.streaming.table_codec import store_codec

__all__ = ["TableChange", "TableRecords", "apply_changes", "send_changes", "write_tables"]

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
    records = apply_changes(changes)

    async def send_all() -> None:
        futures = await send_changes(records)
        if durable:
            _send_now(changes[0][0].app)
            await asyncio.gather(*futures)

    await write_until_acknowledged(send_all, what=what, on_retry=on_retry)


TableRecords = dict[int, tuple[Any, list[Record]]]
"""Per table (by id): the table and its changelog records, in the order written."""


def apply_changes(changes: Sequence[TableChange]) -> TableRecords:
    """Write ``changes`` to the tables' RocksDB stores; returns their changelog records.

    Each value is encoded once, for RocksDB and the changelog alike
    (app/streaming/table_codec.py). Call it inside stream iteration: Faust picks the store
    of the current event's partition.
    """
    targets: dict[int, _Target] = {}
    for table, key, value in changes:
        target = targets.get(id(table))
        if target is None:
            target = targets[id(table)] = _Target(table)
        target.write(key, value)
    return {table_id: (target.table, target.records) for table_id, target in targets.items()}


class _Target:
    """One table's store, codec, database and changelog partition, looked up once a call.

    Within one call the current event, and so the database and the changelog partition
    (Faust's ``partition_for_key`` is the event's partition unless the table partitions by
    its own keys), are the same for every key.
    """

    def __init__(self, table: Any) -> None:
        self.table = table
        self.store = table.data
        self.codec = store_codec(self.store)
        self.db = partition_db(self.store)  # Faust's _set/_del there, without its index
        self.topic: str = table.changelog_topic.get_topic_name()
        self.per_key: bool = table.use_partitioner  # the producer picks each record's
        self.partition: int | None = None  # the event's, once asked
        self.records: list[Record] = []

    def write(self, key: str, value: Any) -> None:
        raw_key = self.codec.encode_key(key)
        raw_value = None if value is None else self.codec.encode_value(value)
        db = self.db
        if db is None:
            if raw_value is None:
                self.store._del(raw_key)
            else:
                self.store._set(raw_key, raw_value)
        elif raw_value is None:
            db.delete(raw_key)
        else:
            db.put(raw_key, raw_value)
        if self.per_key:
            partition = self.table.partition_for_key(key)
        else:
            if self.partition is None:
                self.partition = self.table.partition_for_key(key)
            partition = self.partition
        self.records.append((self.topic, partition, raw_key, raw_value))


async def send_changes(by_table: TableRecords) -> list[asyncio.Future[Any]]:
    """Hand every table's changelog records to the producer's partition queues, in order.

    Faust would send each through its own buffer and ``send`` (app/streaming/bulk_send.py).
    When a table's last record is acknowledged its offset is kept in RocksDB, as Faust
    does for every record (recovery starts from it).
    """
    futures: list[asyncio.Future[Any]] = []
    for table, records in by_table.values():
        producer = table.app.producer._ensure_producer()
        sent = await send_records(producer, records)
        sent[-1].add_done_callback(partial(_persisted, table))
        futures += sent
    return futures


def _persisted(table: Any, future: Any) -> None:
    """Keep the changelog offset of a table's last acknowledged record in RocksDB."""
    if future.cancelled() or future.exception() is not None:
        return  # not written: the offset stays where it was (recovery reads more)
    meta = future.result()
    table.data.set_persisted_offset(TP(meta.topic, meta.partition), meta.offset)


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
