"""A worker creates every topic it needs, the tables' changelogs included, before Faust
starts: a changelog Faust made itself could be missing from the broker's metadata at the
first assignment, which then left that table's partitions unassigned until a rebalance."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType

from ops.testkit.support import Worker, worker_env
from realgeeks_sync.app.core.settings import Settings
from realgeeks_sync.app.streaming.topics import changelog_topics, ensure_topics, topic_specs

pytestmark = pytest.mark.integration


def test_ensure_topics_creates_the_changelogs_and_returns_once_they_are_listed(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    settings = Settings.from_env(worker_env(kafka_bootstrap, tmp_path))
    changelogs = changelog_topics(settings)
    created = ensure_topics(settings, changelogs=True)
    assert sorted(created) == sorted(
        [settings.topic(s.name) for s in topic_specs(settings)] + list(changelogs)
    )
    # Listed at once, every partition led: no assignment can miss them any more.
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    listed = admin.list_topics(timeout=10).topics
    for name in created:
        assert len(listed[name].partitions) == settings.partitions, name
        assert all(p.leader >= 0 for p in listed[name].partitions.values()), name
    described = admin.describe_configs(
        [ConfigResource(ResourceType.TOPIC, name) for name in changelogs]
    )
    for resource, future in described.items():
        config = future.result(30)
        for key, value in changelogs[resource.name].items():
            assert config[key].value == value, (resource.name, key)
    assert ensure_topics(settings, changelogs=True) == []


def test_a_fresh_deployment_s_worker_creates_its_changelogs_itself(
    start_worker: Callable[..., Worker], tmp_path: Path
) -> None:
    worker = start_worker()
    log = (tmp_path / "worker0.log").read_text(errors="replace")
    settings = Settings.from_env(worker.env)
    created = [json.loads(line) for line in log.splitlines() if '"topics created"' in line]
    # The contract's topics and the changelogs, in one go before Faust started.
    assert [line["count"] for line in created] == [
        len(topic_specs(settings)) + len(changelog_topics(settings))
    ]
    assert "Ignoring missing topic" not in log
    assert "not found in cluster metadata" not in log
    assert worker.proc.poll() is None
