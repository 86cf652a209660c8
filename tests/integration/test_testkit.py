"""The harness cleans up after a test: every topic its workers made goes, nothing else."""

from __future__ import annotations

import time

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from ops.testkit.support import delete_topics_with_prefixes, unique

pytestmark = pytest.mark.integration


def test_a_prefix_takes_its_apps_internal_topics_along(kafka_bootstrap: str) -> None:
    prefix = unique("t") + "."
    app = prefix.rstrip(".")  # worker_env's app id; Faust's changelogs are "<app id>-..."
    mine = [f"{prefix}leads.normalized", f"{app}-{app}-identity_index-changelog"]
    others = [f"{app}x.leads.normalized", f"{app}x-{app}x-identity_index-changelog"]
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    for future in admin.create_topics([NewTopic(t, 1, 1) for t in mine + others]).values():
        future.result(30)
    # Created is not yet listed: the deletion lists topics first, so wait until they show.
    deadline = time.monotonic() + 30
    while set(mine + others) - set(admin.list_topics(timeout=10).topics):
        assert time.monotonic() < deadline, "created topics never listed"
        time.sleep(0.2)
    try:
        assert delete_topics_with_prefixes(kafka_bootstrap, [prefix]) == len(mine)
        deadline = time.monotonic() + 30
        left: set[str] = set(mine)
        while left and time.monotonic() < deadline:
            left = set(mine) & set(admin.list_topics(timeout=10).topics)
            time.sleep(0.2)
        assert not left
        assert set(others) <= set(admin.list_topics(timeout=10).topics)
    finally:
        delete_topics_with_prefixes(kafka_bootstrap, [f"{app}x."])
