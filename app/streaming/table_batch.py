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
from typing import Any

from realgeeks_sync.app.streaming.broker_retry import write_until_acknowledged
from realgeeks_sync.app.streaming.partition_db import partition_db
from realgeeks_sync.app.streaming.table_codec import store_codec
from realgeeks_sync.app.streaming.table_writes import TableChange, apply_changes, send_changes

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
        records = apply_changes(changes)

        async def send_all() -> None:
            await send_changes(records)

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
        raw_key = codec.encode_key(key)
        db = partition_db(store)
        raw = store._get(raw_key) if db is None else db.get(raw_key)  # one read, not two
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
