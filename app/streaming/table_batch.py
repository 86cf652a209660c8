"""The table reads and writes of one batch of messages, with one changelog record per key.

A Faust table read (``table.get``) asks RocksDB twice (``key in data``, then
``data[key]``) and decodes the value; a write encodes the value for RocksDB, encodes it
again for the changelog and queues the record in Faust's producer buffer. A lead webhook
reads about 28 keys and writes about 14, several of them twice within a batch (a site's
blocking keys, a lead's snapshot). ``TableBatch`` keeps a batch's writes in a dict: reads
see them (the value as written, no decoding), and ``flush`` applies the last value of each
key to RocksDB and hands the changelog records to the producer's partition queues at once,
in order (app/streaming/bulk_send.py). A read of a key not written asks
RocksDB once.

Use it inside stream iteration (RocksDB picks the partition of the current event), for
every write of the tables it serves: a batch's records must not be overtaken by a buffered
``table[key] = ...`` of the same key. Values read are never changed in place (as with any
table: Faust persists assignments only).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from faust.types import TP

from realgeeks_sync.app.streaming.broker_retry import write_until_acknowledged
from realgeeks_sync.app.streaming.bulk_send import Record, send_records
from realgeeks_sync.app.streaming.table_codec import store_codec
from realgeeks_sync.app.streaming.table_writes import TableChange

__all__ = ["TableBatch", "TableView"]

_MISSING = object()


class TableBatch:
    """Pending writes of several tables, flushed together."""

    def __init__(self, on_retry: Callable[[BaseException], None] | None = None) -> None:
        self._pending: dict[tuple[int, str], TableChange] = {}
        self._on_retry = on_retry

    def view(self, table: Any) -> TableView:
        """A mapping over ``table`` whose writes wait in this batch."""
        return TableView(self, table)

    def pending(self) -> int:
        """Keys written since the last flush."""
        return len(self._pending)

    async def flush(self, what: str = "table writes") -> None:
        """Apply every pending write (the last per key) and send its changelog record.

        Each value is encoded once, for RocksDB and the changelog alike; the records go
        straight to the producer's partition queues (app/streaming/bulk_send.py). Not
        awaited: like Faust's own table writes, they are flushed before an offset is
        committed. The offset of a table's last record is kept in RocksDB when
        acknowledged, as Faust does for every record (recovery starts from it).
        """
        if not self._pending:
            return
        changes = list(self._pending.values())
        self._pending.clear()
        by_table: dict[int, tuple[Any, list[Record]]] = {}
        for table, key, value in changes:
            store = table.data
            codec = store_codec(store)
            raw_key = codec.encode_key(key)
            raw_value = None if value is None else codec.encode_value(value)
            if raw_value is None:
                store._del(raw_key)
            else:
                store._set(raw_key, raw_value)
            topic = table.changelog_topic.get_topic_name()
            record = (topic, table.partition_for_key(key), raw_key, raw_value)
            by_table.setdefault(id(table), (table, []))[1].append(record)

        async def send_all() -> None:
            for table, records in by_table.values():
                producer = table.app.producer._ensure_producer()
                futures = await send_records(producer, records)
                futures[-1].add_done_callback(partial(_persisted, table))

        await write_until_acknowledged(send_all, what=what, on_retry=self._on_retry)


class TableView:
    """``get``, ``[]``, ``in``, assignment and ``del`` on a table, writes held by a batch."""

    def __init__(self, batch: TableBatch, table: Any) -> None:
        self._batch = batch
        self._table = table
        self._id = id(table)

    def _read(self, key: str) -> Any:
        change = self._batch._pending.get((self._id, key))
        if change is not None:
            value = change[2]
            return _MISSING if value is None else value
        store = self._table.data
        codec = store_codec(store)
        raw = store._get(codec.encode_key(key))  # one RocksDB read, not two
        return _MISSING if raw is None else codec.decode_value(raw)

    def get(self, key: str, default: Any = None) -> Any:
        """The value of ``key`` (written in this batch or stored), else ``default``."""
        value = self._read(key)
        return default if value is _MISSING else value

    def __getitem__(self, key: str) -> Any:
        value = self._read(key)
        if value is _MISSING:
            raise KeyError(key)
        return value

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self._read(key) is not _MISSING

    def __setitem__(self, key: str, value: Any) -> None:
        if value is None:
            raise ValueError("None deletes a key: use del")
        self._batch._pending[self._id, key] = (self._table, key, value)

    def __delitem__(self, key: str) -> None:
        self._batch._pending[self._id, key] = (self._table, key, None)


def _persisted(table: Any, future: Any) -> None:
    """Keep the changelog offset of a flush's last acknowledged record in RocksDB."""
    if future.cancelled() or future.exception() is not None:
        return  # not written: the offset stays where it was (recovery reads more)
    meta = future.result()
    table.data.set_persisted_offset(TP(meta.topic, meta.partition), meta.offset)
