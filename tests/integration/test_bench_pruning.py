"""ops/bench deletes the topics and groups of killed benchmark runs, never a running one's."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import pytest
from confluent_kafka import Consumer, ConsumerGroupState, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from ops.bench_e2e_latency import delete_stale_bench_topics

pytestmark = pytest.mark.integration


def _topics(admin: AdminClient) -> set[str]:
    return set(admin.list_topics(timeout=10).topics)


def _group_states(admin: AdminClient) -> dict[str, ConsumerGroupState]:
    return {g.group_id: g.state for g in admin.list_consumer_groups().result(timeout=10).valid}


def _until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


def _member(bootstrap: str, group: str, topic: str) -> Consumer:
    """A consumer of the group holding its assignment, its offset committed: the group has
    a member, and stays listed (empty) after it leaves, as a killed worker's does."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest"}
    )
    consumer.subscribe([topic])
    deadline = time.monotonic() + 30
    while not consumer.assignment():
        assert time.monotonic() < deadline, "the consumer never joined its group"
        consumer.poll(0.2)
    consumer.commit(offsets=[TopicPartition(topic, 0, 0)], asynchronous=False)
    return consumer


def test_a_killed_run_is_pruned_and_a_running_one_left_alone(kafka_bootstrap: str) -> None:
    live, dead = (f"bench{uuid.uuid4().hex[:10]}" for _ in range(2))
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    topics = {run: {f"{run}.raw", f"{run}.leads.normalized"} for run in (live, dead)}
    for future in admin.create_topics(
        [NewTopic(n, 1, 1) for ts in topics.values() for n in ts]
    ).values():
        future.result(30)
    _until(lambda: set().union(*topics.values()) <= _topics(admin), "the topics were not listed")
    try:
        running = _member(kafka_bootstrap, live, f"{live}.raw")
        try:
            # A killed run's group: offsets committed, no member left.
            _member(kafka_bootstrap, dead, f"{dead}.raw").close()
            _until(
                lambda: _group_states(admin).get(dead) == ConsumerGroupState.EMPTY,
                "the killed run's group never became empty",
            )

            assert delete_stale_bench_topics(kafka_bootstrap, runs={live, dead}) == 2

            _until(lambda: not topics[dead] & _topics(admin), "the killed run's topics are listed")
            _until(
                lambda: dead not in _group_states(admin), "the killed run's group is still there"
            )
            assert topics[live] <= _topics(admin)
            assert _group_states(admin)[live] == ConsumerGroupState.STABLE
        finally:
            running.close()

        # Once its worker is gone, that run is stale too.
        _until(
            lambda: _group_states(admin).get(live) == ConsumerGroupState.EMPTY,
            "the ended run's group never became empty",
        )
        assert delete_stale_bench_topics(kafka_bootstrap, runs={live}) == 2
        _until(lambda: not topics[live] & _topics(admin), "the ended run's topics are listed")
    finally:  # whatever a failure left
        names = [n for ts in topics.values() for n in ts if n in _topics(admin)]
        for future in admin.delete_topics(names).values() if names else []:
            future.exception(30)
