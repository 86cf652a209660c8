"""A table's store collects garbage at a rebalance only when it lets a partition go.

faust-streaming's RocksDB ``Store.revoke_partitions`` drops the databases of revoked
partitions and leaves their closing to the garbage collector: it ends with ``gc.collect()``
for every table at every rebalance, whether or not anything was dropped. A full collection
visits the whole heap with the event loop stopped: 64-84 ms per table at a worker's
start-up, where nothing is revoked, 13 tables, about 1 s before the first webhook; the
same at every rebalance that takes nothing from this worker (another one joining or
leaving), on a heap that has grown since. Here Faust's method runs, collection included,
only when the store holds an open database of a revoked partition.

A handle Faust dropped earlier that a reference cycle still holds (a cancelled agent's
traceback, say) keeps its database locked until a collection; before, the next rebalance's
collection freed it whatever it revoked. So opening a partition whose database is locked
collects once and tries again before Faust's own retries (a second a try, then a crash).
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable, Set
from typing import Any, TypeVar

from faust.stores.rocksdb import Store
from faust.types import TP

__all__ = ["install", "open_collecting", "releases"]

log = logging.getLogger(__name__)

DB = TypeVar("DB")

_installed = False


def releases(store: Any, table: Any, tps: Set[TP]) -> bool:
    """True when revoking ``tps`` drops one of the store's open databases."""
    topics = table.changelog_topic.topics
    dbs = store._dbs
    return any(tp.topic in topics and tp.partition in dbs for tp in tps)


def open_collecting(open_db: Callable[[], DB]) -> DB:
    """``open_db()``; when the database is locked, a garbage collection and one try more.

    Raises:
        Exception: what the second try raises, or the first when it is not about a lock.
    """
    try:
        return open_db()
    except Exception as exc:  # rocksdict raises a plain Exception for a locked database
        if "lock" not in repr(exc).lower():
            raise
        log.info("table partition locked: collecting garbage before trying again")
        gc.collect()  # frees a dropped handle that a reference cycle held
        return open_db()


def install() -> None:
    """Skip Faust's revocation (and its collection) where it would drop nothing (idempotent)."""
    global _installed
    if _installed:
        return
    _installed = True
    revoke, open_db = Store.revoke_partitions, Store._open_for_partition

    def revoke_partitions(self: Store, table: Any, tps: set[TP]) -> None:
        if releases(self, table, tps):
            revoke(self, table, tps)

    def open_for_partition(self: Store, partition: int) -> Any:
        return open_collecting(lambda: open_db(self, partition))

    Store.revoke_partitions = revoke_partitions  # type: ignore[method-assign]
    Store._open_for_partition = open_for_partition  # type: ignore[method-assign]
