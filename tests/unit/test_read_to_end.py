"""The harness's contract check says which partitions it could not read to their end."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from ops.testkit import contracts
from ops.testkit.contracts import UnreadError, read_to_end

TOPIC = "t1.leads.normalized"


@dataclass
class Record:
    """What a confluent-kafka Message answers that read_to_end asks."""

    at: int
    partition_: int

    def error(self) -> None:
        return None

    def topic(self) -> str:
        return TOPIC

    def partition(self) -> int:
        return self.partition_

    def offset(self) -> int:
        return self.at


@dataclass
class StuckConsumer:
    """Two partitions of three records each; partition 1's records never arrive."""

    pending: list[Record] = field(default_factory=lambda: [Record(n, 0) for n in range(3)])
    read: dict[int, int] = field(default_factory=dict)

    def list_topics(self, timeout: float) -> Any:
        return SimpleNamespace(topics={TOPIC: SimpleNamespace(error=None, partitions={0: 0, 1: 1})})

    def get_watermark_offsets(self, tp: TopicPartition, timeout: float, cached: bool) -> Any:
        return 0, 3

    def assign(self, partitions: list[TopicPartition]) -> None:
        pass

    def poll(self, timeout: float) -> Record | None:
        if self.pending:
            record = self.pending.pop(0)
            self.read[record.partition_] = record.at + 1
            return record
        time.sleep(0.01)
        return None

    def position(self, parts: list[TopicPartition]) -> list[TopicPartition]:
        # -1001: librdkafka's "no position yet", for a partition nothing came from.
        return [TopicPartition(tp.topic, tp.partition, self.read.get(tp.partition, -1001))
                for tp in parts]  # fmt: skip

    def close(self) -> None:
        pass


def test_partitions_not_read_to_their_end_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(contracts, "reader", lambda *_args: StuckConsumer())
    with pytest.raises(UnreadError) as caught:
        read_to_end("unused:9092", [TOPIC], stall_s=0.2)
    assert str(caught.value) == (
        "1 partition(s) not read to their end after 0.2 s without a record, their records "
        f"not checked: {TOPIC} [1] at 0 of 3"
    )


def test_partitions_read_to_their_end_give_their_records(monkeypatch: pytest.MonkeyPatch) -> None:
    consumer = StuckConsumer()
    consumer.pending += [Record(n, 1) for n in range(3)]
    monkeypatch.setattr(contracts, "reader", lambda *_args: consumer)
    found = read_to_end("unused:9092", [TOPIC], stall_s=0.2)
    assert [(m.partition(), m.offset()) for m in found[TOPIC]] == [
        (p, n) for p in (0, 1) for n in range(3)
    ]


def test_a_partition_whose_leader_is_moving_is_asked_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A topic just created may answer NOT_LEADER_FOR_PARTITION for a moment (seen in the
    # container tier); the check asks again instead of failing the test that wrote it.
    consumer = StuckConsumer()
    consumer.pending += [Record(n, 1) for n in range(3)]
    answers = iter([KafkaException(KafkaError(KafkaError.NOT_LEADER_FOR_PARTITION))])
    plain = consumer.get_watermark_offsets

    def moving(tp: TopicPartition, timeout: float, cached: bool) -> Any:
        for error in answers:
            raise error
        return plain(tp, timeout, cached)

    consumer.get_watermark_offsets = moving  # type: ignore[method-assign]
    monkeypatch.setattr(contracts, "reader", lambda *_args: consumer)
    found = read_to_end("unused:9092", [TOPIC], stall_s=0.2)
    assert len(found[TOPIC]) == 6


def test_other_broker_errors_are_not_hidden(monkeypatch: pytest.MonkeyPatch) -> None:
    consumer = StuckConsumer()

    def broken(tp: TopicPartition, timeout: float, cached: bool) -> Any:
        raise KafkaException(KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED))

    consumer.get_watermark_offsets = broken  # type: ignore[method-assign]
    monkeypatch.setattr(contracts, "reader", lambda *_args: consumer)
    with pytest.raises(KafkaException):
        read_to_end("unused:9092", [TOPIC], stall_s=0.2)
