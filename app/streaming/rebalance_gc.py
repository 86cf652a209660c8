"""A table's store collects garbage at a rebalance only when it lets a partition go.

faust-streaming's RocksDB ``Store.revoke_partitions`` drops the databases of revoked
partitions and leaves their closing to the garbage collector: it ends with ``gc.collect()``
for every table at every rebalance, whether or not anything was dropped. A full collection
visits the whole heap with the event loop stopped: 64-84 ms per table at a worker's
start-up, where nothing is revoked, 13 tables, about 1 s before the first webhook; the
same at every rebalance that takes nothing from this worker (another one joining or
leaving), on a heap that has grown since. Here Faust's method runs, collection included,
only when the store holds an open database of a revoked partition.
"""

from __future__ import annotations

from collections.abc import Callable, Set
from typing import Any

from faust.stores.rocksdb import Store
from faust.types import TP

__all__ = ["install", "releases"]

_original: Callable[..., None] | None = None


def releases(store: Any, table: Any, tps: Set[TP]) -> bool:
    """True when revoking ``tps`` drops one of the store's open databases."""
    topics = table.changelog_topic.topics
    dbs = store._dbs
    return any(tp.topic in topics and tp.partition in dbs for tp in tps)


def install() -> None:
    """Skip Faust's revocation (and its collection) where it would drop nothing (idempotent)."""
    global _original
    if _original is not None:
        return
    _original = Store.revoke_partitions

    def revoke_partitions(self: Store, table: Any, tps: set[TP]) -> None:
        assert _original is not None
        if releases(self, table, tps):
            _original(self, table, tps)

    Store.revoke_partitions = revoke_partitions  # type: ignore[method-assign]
