"""TableBatch reads and writes the current partition's RocksDB directly
(app/streaming/partition_db.py): the same bytes in the same database as Faust's own
``Store._get``/``_set``/``_del``, and Faust's path wherever it would do otherwise."""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import faust
import faust.streams
import pytest

from realgeeks_sync.app.streaming import partition_db as partition_db_module
from realgeeks_sync.app.streaming import table_codec
from realgeeks_sync.app.streaming.partition_db import partition_db
from realgeeks_sync.app.streaming.table_batch import TableBatch
from realgeeks_sync.app.streaming.table_writes import apply_changes


class _Event:
    def __init__(self, partition: int) -> None:
        self.message = SimpleNamespace(topic="source", partition=partition)


@contextlib.contextmanager
def _in_event(partition: int) -> Iterator[None]:
    event = _Event(partition)
    token = faust.streams._current_event.set(weakref.ref(event))  # as Faust's stream does
    try:
        yield
    finally:
        faust.streams._current_event.reset(token)


def _table(tmp_path: Path, **options: Any) -> Any:
    table_codec.install()
    app = faust.App("pdb", broker="memory://", store="rocksdb://", datadir=str(tmp_path))
    table = app.Table("t", partitions=4, key_type=str, value_type=None, **options)
    # As app/streaming/faust_app.py declares every table.
    table.key_serializer = table_codec.KEY_SERIALIZER
    table.value_serializer = table_codec.VALUE_SERIALIZER
    table._data = table._new_store()  # the RocksDB store, without starting the app
    table._verified_source_topics_for_partitions.add("source")  # no consumer to ask
    return table


def test_outside_stream_iteration_or_for_other_stores_faust_decides(tmp_path: Path) -> None:
    table = _table(tmp_path)
    assert partition_db(table.data) is None  # no current event
    assert partition_db(SimpleNamespace(_get=lambda key: None)) is None  # not RocksDB
    with _in_event(2):
        assert partition_db(table.data) is table.data._db_for_partition(2)
    table.data.table.use_partitioner = True
    with _in_event(2):
        assert partition_db(table.data) is None


def test_writes_and_reads_are_fausts_bytes_in_the_event_partition(tmp_path: Path) -> None:
    table = _table(tmp_path)
    store = table.data
    codec = table_codec.store_codec(store)
    with _in_event(1):
        records = apply_changes([(table, "a", {"n": 1}), (table, "b", {"n": 2})])
        store._set(codec.encode_key("c"), codec.encode_value({"n": 3}))  # Faust's own write
        # Faust's own read finds what was written directly, with the bytes it sends.
        assert store._get(codec.encode_key("a")) == records[id(table)][1][0][3]
        view = TableBatch().view(table)
        assert (view.get("a"), view.get("c"), view.get("zz")) == ({"n": 1}, {"n": 3}, None)
        apply_changes([(table, "b", None)])
        assert store._get(codec.encode_key("b")) is None
        assert "b" not in TableBatch().view(table)
    with _in_event(2):
        # Another partition's database: as with Faust, a key lives in its partition only.
        assert TableBatch().view(table).get("a") is None
    # Outside stream iteration Faust still finds it (its index was not told: bloom filters).
    assert store._get(codec.encode_key("a")) == codec.encode_value({"n": 1})


def test_a_batch_flush_reaches_the_store_and_the_changelog(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = _table(tmp_path)
    sent: list[Any] = []

    async def send_changes(by_table: Any) -> list[Any]:
        sent.extend(by_table[id(table)][1])
        return []

    monkeypatch.setattr("realgeeks_sync.app.streaming.table_batch.send_changes", send_changes)
    direct: list[Any] = []
    real = partition_db_module.partition_db

    def counting(store: Any) -> Any:
        db = real(store)
        direct.append(db is not None)
        return db

    monkeypatch.setattr("realgeeks_sync.app.streaming.table_writes.partition_db", counting)
    with _in_event(3):
        batch = TableBatch()
        view = batch.view(table)
        view["k"] = {"v": 1}
        view["k"] = {"v": 2}
        asyncio.run(batch.flush())
        assert TableBatch().view(table)["k"] == {"v": 2}
    assert [(key, value) for _t, _p, key, value in sent] == [(b'"k"', b'{"v":2}')]
    assert direct == [True]


def test_a_table_partitioned_by_its_keys_goes_through_faust(tmp_path: Path) -> None:
    table = _table(tmp_path)
    table.use_partitioner = True  # the producer picks each record's partition
    with _in_event(1):
        records = apply_changes([(table, "a", {"n": 1}), (table, "b", {"n": 2})])
    assert [partition for _t, partition, _k, _v in records[id(table)][1]] == [None, None]
    assert table.data._get(b'"a"') == b'{"n":1}'  # Faust's own _set wrote it
