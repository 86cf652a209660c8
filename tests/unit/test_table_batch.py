"""TableBatch: a batch's reads see its writes; one changelog record per key, sent at flush."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace
from typing import Any

from realgeeks_sync.app.streaming.table_batch import TableBatch


class FakeStore:
    """Faust's SerializedStore as TableView uses it: encoded keys, one read per _get."""

    def __init__(self) -> None:
        self.raw: dict[bytes, bytes] = {}
        self.reads = 0

    def _encode_key(self, key: str) -> bytes:
        return json.dumps(key).encode()

    def _get(self, key: bytes) -> bytes | None:
        self.reads += 1
        return self.raw.get(key)

    def _decode_value(self, raw: bytes) -> Any:
        return json.loads(raw)

    def _encode_value(self, value: Any) -> bytes:
        return json.dumps(value).encode()

    def _set(self, key: bytes, value: bytes) -> None:
        self.raw[key] = value

    def _del(self, key: bytes) -> None:
        self.raw.pop(key, None)

    def __setitem__(self, key: str, value: Any) -> None:
        self._set(self._encode_key(key), self._encode_value(value))

    def set_persisted_offset(self, tp: Any, offset: int) -> None:
        self.persisted = (tuple(tp), offset)


class FakeProducer:
    """aiokafka's producer without its internals: send_records sends record by record."""

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self.sent: list[tuple[str, Any]] = []

    async def send(self, topic: str, value: bytes | None, key: bytes, *, partition: int) -> Any:
        offset = len(self.sent)
        self.sent.append((json.loads(key), None if value is None else json.loads(value)))
        future = asyncio.get_running_loop().create_future()
        future.set_result(SimpleNamespace(topic=topic, partition=partition, offset=offset))
        return future


class FakeTable:
    """A Faust table as TableBatch uses it."""

    use_partitioner = False

    def __init__(self) -> None:
        self.data = FakeStore()
        self.changelog_topic = SimpleNamespace(get_topic_name=lambda: "changelog")
        self.producer = FakeProducer("changelog")
        self.sent = self.producer.sent
        self.app = SimpleNamespace(producer=SimpleNamespace(_ensure_producer=lambda: self.producer))

    def partition_for_key(self, _key: str) -> int:
        return 3


async def test_reads_see_the_batch_and_each_key_is_sent_once_with_its_last_value() -> None:
    table = FakeTable()
    table.data["old"] = {"v": 0}
    batch = TableBatch()
    view = batch.view(table)
    assert view.get("old") == {"v": 0} and table.data.reads == 1  # one read, not two
    view["k"] = {"v": 1}
    view["k"] = {"v": 2}
    view["gone"] = {"v": 3}
    del view["gone"]
    assert view.get("k") == {"v": 2} and "gone" not in view and view.get("gone", 7) == 7
    assert table.sent == [] and table.data.reads == 1  # nothing written or read yet
    await batch.flush()
    assert table.sent == [("k", {"v": 2}), ("gone", None)]
    assert table.data._decode_value(table.data.raw[b'"k"']) == {"v": 2}
    assert b'"gone"' not in table.data.raw
    await asyncio.sleep(0)  # acknowledged: the last offset is kept for recovery
    assert table.data.persisted == (("changelog", 3), 1)
    assert batch.pending() == 0
    await batch.flush()  # nothing pending: nothing sent again
    assert len(table.sent) == 2


async def test_two_tables_in_one_batch_keep_their_keys_apart() -> None:
    a, b = FakeTable(), FakeTable()
    batch = TableBatch()
    batch.view(a)["k"] = {"t": "a"}
    batch.view(b)["k"] = {"t": "b"}
    assert batch.view(a)["k"] == {"t": "a"} and batch.view(b)["k"] == {"t": "b"}
    await batch.flush()
    assert a.sent == [("k", {"t": "a"})] and b.sent == [("k", {"t": "b"})]
