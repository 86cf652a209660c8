"""The tables' changelog topics the worker creates before Faust starts are the ones Faust's
tables would create: same names, partitions and broker-side config."""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from confluent_kafka import KafkaException
from faust.transport.drivers.aiokafka import Transport

from realgeeks_sync.app.core.settings import Settings
from realgeeks_sync.app.streaming import topics
from realgeeks_sync.app.streaming.faust_app import build_tables, create_app
from realgeeks_sync.app.streaming.topics import changelog_topics
from realgeeks_sync.tables.catalog import TABLES


def _faust_config(topic: object) -> dict[str, str]:
    """What Faust's aiokafka transport sends when it creates ``topic`` (its _create_topic)."""
    config = Transport._topic_config(
        None,  # type: ignore[arg-type]  # a pure function of its arguments
        topic.retention,  # type: ignore[attr-defined]
        topic.compacting,  # type: ignore[attr-defined]
        topic.deleting,  # type: ignore[attr-defined]
    )
    config.update(topic.config or {})  # type: ignore[attr-defined]
    return {k: str(v) for k, v in config.items()}


@pytest.mark.parametrize(
    "env",
    [{}, {"RGSYNC_TOPIC_PREFIX": "acme.", "RGSYNC_APP_ID": "acme-sync", "RGSYNC_PARTITIONS": "3"}],
)
def test_changelog_topics_are_faust_s_own(tmp_path: Path, env: dict[str, str]) -> None:
    settings = Settings.from_env(
        {"RGSYNC_REALGEEKS_SECRETS": "x", "RGSYNC_DATA_DIR": str(tmp_path), **env}
    )
    tables = build_tables(create_app(settings), settings)
    faust_topics = {
        t.changelog_topic.get_topic_name(): t.changelog_topic for t in vars(tables).values()
    }
    ours = changelog_topics(settings)
    assert set(ours) == set(faust_topics)
    assert len(ours) == len(TABLES)
    for name, topic in faust_topics.items():
        assert ours[name] == _faust_config(topic), name
        assert topic.partitions == settings.partitions, name
    # The dedup table's changelog forgets what its window forgets; the others compact only.
    dedup = next(n for n in ours if n.endswith("processed_messages-changelog"))
    assert ours[dedup]["cleanup.policy"] == "compact,delete"
    assert int(ours[dedup]["retention.ms"]) == (settings.dedup_retention_days + 1) * 86_400_000
    unbounded = [t for t in TABLES if t.ttl is None and t.ttl_days is None]
    assert sum(c["cleanup.policy"] == "compact" for c in ours.values()) == len(unbounded)


class _Admin:
    """list_topics as confluent-kafka's AdminClient answers it, failing the first times."""

    def __init__(self, failures: int, leaders: list[int]) -> None:
        self.failures = failures
        self.leaders = leaders
        self.calls = 0

    def list_topics(self, timeout: float) -> Any:
        self.calls += 1
        if self.calls <= self.failures:
            raise KafkaException("the broker did not answer")
        partitions = {i: SimpleNamespace(leader=leader) for i, leader in enumerate(self.leaders)}
        return SimpleNamespace(topics={"t": SimpleNamespace(partitions=partitions)})


def test_creation_waits_through_a_failed_listing_until_every_partition_has_a_leader(
    caplog: pytest.LogCaptureFixture,
) -> None:
    admin = _Admin(failures=2, leaders=[0, 0])
    with caplog.at_level(logging.WARNING):
        topics._await_listed(admin, {"t": 2}, timeout_s=5.0)  # type: ignore[arg-type]
    assert admin.calls == 3
    assert not caplog.records


def test_creation_goes_on_with_a_warning_when_a_partition_stays_leaderless(
    caplog: pytest.LogCaptureFixture,
) -> None:
    admin = _Admin(failures=1, leaders=[0, -1])
    with caplog.at_level(logging.WARNING):
        topics._await_listed(admin, {"t": 2}, timeout_s=0.3)  # type: ignore[arg-type]
    assert [r.getMessage() for r in caplog.records] == [
        "created topics not yet in the broker's metadata; going on"
    ]
    assert caplog.records[0].topics == ["t"]
