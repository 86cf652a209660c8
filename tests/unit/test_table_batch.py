"""TableBatch: a batch's reads see its writes; one changelog record per key, sent at flush."""

from __future__ import annotations

import json
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

    def __setitem__(self, key: str, value: Any) -> None:
        self.raw[self._encode_key(key)] = json.dumps(value).encode()

    def pop(self, key: str, default: Any = None) -> Any:
        return self.raw.pop(self._encode_key(key), default)


class FakeTopic:
    def __init__(self, sent: list[tuple[str, Any]]) -> None:
        self.sent = sent

    def as_future_message(self, *, key: str, value: Any, **_kw: Any) -> Any:
        return (key, value)

    async def publish_message(self, future: Any, wait: bool) -> None:
        assert wait is False
        self.sent.append(future)


class FakeTable:
    """A Faust table as write_tables uses it."""

    key_serializer = value_serializer = "json"

    def __init__(self) -> None:
        self.data = FakeStore()
        self.sent: list[tuple[str, Any]] = []
        self.changelog_topic = FakeTopic(self.sent)

    def partition_for_key(self, _key: str) -> int:
        return 0

    def _on_changelog_sent(self, *_args: Any) -> None:
        return None


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
