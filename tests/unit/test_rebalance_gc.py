"""A table's store collects garbage at a rebalance only when it drops a partition's database
(app/streaming/rebalance_gc.py): Faust collected for every table at every rebalance."""

from __future__ import annotations

import gc
from types import SimpleNamespace
from typing import Any

import pytest
from faust.stores.rocksdb import RocksDBOptions, Store
from faust.types import TP

from realgeeks_sync.app.streaming import rebalance_gc

CHANGELOG = "app-leads-changelog"


def _store(*partitions: int) -> Any:
    """What Faust's revoke_partitions uses of a store: its open databases and its logger."""
    return SimpleNamespace(
        _dbs={p: object() for p in partitions},
        logger=SimpleNamespace(info=lambda *_a, **_k: None),
    )


TABLE = SimpleNamespace(changelog_topic=SimpleNamespace(topics={CHANGELOG}))


@pytest.fixture
def collections(monkeypatch: pytest.MonkeyPatch) -> list[None]:
    calls: list[None] = []
    monkeypatch.setattr(gc, "collect", lambda *_a: calls.append(None) or 0)
    rebalance_gc.install()
    installed = Store.revoke_partitions
    rebalance_gc.install()
    assert Store.revoke_partitions is installed  # twice: still one wrapper
    return calls


def test_a_rebalance_that_takes_nothing_collects_nothing(collections: list[None]) -> None:
    store = _store(0, 1)
    Store.revoke_partitions(store, TABLE, set())  # a worker's start: nothing revoked
    Store.revoke_partitions(store, TABLE, {TP(CHANGELOG, 5)})  # a partition it never had
    Store.revoke_partitions(store, TABLE, {TP("app-other-changelog", 0)})  # another table's
    assert collections == []
    assert set(store._dbs) == {0, 1}


def test_a_dropped_database_is_collected_as_faust_does(collections: list[None]) -> None:
    store = _store(0, 1)
    Store.revoke_partitions(store, TABLE, {TP(CHANGELOG, 1), TP(CHANGELOG, 7)})
    assert set(store._dbs) == {0}  # Faust's own method ran: partition 1 let go
    assert len(collections) == 1  # and collected, so RocksDB closes it


def test_releases() -> None:
    store = _store(2)
    assert rebalance_gc.releases(store, TABLE, {TP(CHANGELOG, 2)})
    assert not rebalance_gc.releases(store, TABLE, {TP(CHANGELOG, 3), TP("x", 2)})
    assert not rebalance_gc.releases(store, TABLE, set())


def test_a_locked_partition_is_opened_again_after_a_collection(collections: list[None]) -> None:
    tries: list[int] = []

    def open_db() -> str:
        tries.append(1)
        if len(tries) == 1:
            raise Exception("IO error: lock hold by current process: .../LOCK")  # as rocksdict
        return "db"

    assert rebalance_gc.open_collecting(open_db) == "db"
    assert len(tries) == 2 and len(collections) == 1


def test_other_open_errors_are_raised_without_a_collection(collections: list[None]) -> None:
    def open_db() -> str:
        raise Exception("IO error: No space left on device")

    with pytest.raises(Exception, match="No space"):
        rebalance_gc.open_collecting(open_db)
    assert collections == []


def test_the_store_collects_and_opens_again_when_locked(
    collections: list[None], tmp_path: Any
) -> None:
    tries: list[str] = []

    def open_db(path: Any, read_only: bool) -> str:
        tries.append(str(path))
        if len(tries) == 1:
            raise Exception("IO error: lock hold by current process: LOCK")
        return "db"

    store = SimpleNamespace(
        partition_path=lambda p: tmp_path / f"p{p}",
        read_only=False,
        rocksdb_options=SimpleNamespace(open=open_db),
    )
    assert Store._open_for_partition(store, 3) == "db"  # Faust's own would have raised
    assert len(tries) == 2 and len(collections) == 1


def test_a_real_database_held_by_a_cycle_opens_after_the_collection(tmp_path: Any) -> None:
    # rocksdict itself: a dropped handle that a reference cycle still holds keeps the LOCK.
    rebalance_gc.install()
    options = RocksDBOptions(use_rocksdict=True)
    store = SimpleNamespace(
        partition_path=lambda p: tmp_path / f"p{p}", read_only=False, rocksdb_options=options
    )
    gc.disable()
    try:
        cycle: dict[str, Any] = {"db": options.open(tmp_path / "p0")}
        cycle["self"] = cycle
        del cycle  # garbage, but only a collection frees it
        with pytest.raises(Exception, match="lock"):
            options.open(tmp_path / "p0")
        db = Store._open_for_partition(store, 0)
    finally:
        gc.enable()
    db.put(b"k", b"v")
    assert db.get(b"k") == b"v"
