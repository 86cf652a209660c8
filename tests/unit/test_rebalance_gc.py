"""A table's store collects garbage at a rebalance only when it drops a partition's database
(app/streaming/rebalance_gc.py): Faust collected for every table at every rebalance."""

from __future__ import annotations

import gc
from types import SimpleNamespace
from typing import Any

import pytest
from faust.stores.rocksdb import Store
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
    rebalance_gc.install()  # twice: still one wrapper
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
