"""Table partitions written without RocksDB's write-ahead log: the changelog is the log.

Each table write appended a WAL record with its own ``write()`` system call: about 15 a
webhook (strace of a worker at 150 webhooks/s: 11,325 of its main thread's 12,047 writes
in 5 s went to ``*.db/*.log``). A Faust table's durable copy is its changelog topic; the
local store is a cache of it. Kafka Streams runs its RocksDB stores without a WAL for the
same reason. After a crash the store holds what its last memtable flush wrote, the data
and the changelog offset kept with it (``set_persisted_offset``) alike, since one
database's flushes keep write order; recovery reads the changelog on from that offset, as
it does after any crash. A clean stop flushes the memtables (RocksDB does so on close when
the WAL is off), so a restart reads nothing again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import rocksdict
from faust.stores.rocksdb import RocksDBOptions

__all__ = ["install", "write_options"]

_original_open: Callable[..., Any] | None = None


def write_options() -> rocksdict.WriteOptions:
    """Write options without the WAL, for a store whose Kafka topic can rebuild it."""
    options = rocksdict.WriteOptions()
    # A property at run time; rocksdict's stub declares it a method.
    options.disable_wal = True  # type: ignore[method-assign,assignment]
    return options


def install() -> None:
    """Open every RocksDB table partition of this process with its WAL off (idempotent)."""
    global _original_open
    if _original_open is not None:
        return
    _original_open = RocksDBOptions.open

    def open_without_wal(self: RocksDBOptions, path: Any, *, read_only: bool = False) -> Any:
        assert _original_open is not None
        db = _original_open(self, path, read_only=read_only)
        if self.use_rocksdict:  # (Faust opens rocksdict read-write whatever read_only says)
            db.set_write_options(write_options())
        return db

    RocksDBOptions.open = open_without_wal  # type: ignore[method-assign]
