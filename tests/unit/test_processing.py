"""The idempotent-processing rule without a broker: what a duplicate costs in logs and metrics."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from faust.types import TP

from realgeeks_sync.agents.processing import process_idempotently
from realgeeks_sync.app.core.metrics import Metrics


async def test_a_duplicate_is_counted_and_logged_only_at_debug(
    caplog: pytest.LogCaptureFixture,
) -> None:
    metrics = Metrics()
    pipeline: Any = SimpleNamespace(
        metrics=metrics,
        settings=SimpleNamespace(dedup_retention_days=7),
        in_flight={},
        last_processed_at=0.0,
    )
    envelope = {"message_id": "m-1", "body": "{}", "action": "created"}
    event: Any = SimpleNamespace(
        message=SimpleNamespace(
            tp=TP("raw", 0), key=b"site", value=json.dumps(envelope).encode(), offset=7
        )
    )
    table = {"m-1": {"first_seen": datetime.now(UTC).isoformat(), "done": True}}

    async def decide(_envelope: dict[str, Any]) -> list[Any]:
        raise AssertionError("a duplicate is never decided again")

    caplog.set_level(logging.INFO, logger="agents.processing")
    for _ in range(100):  # a sender retrying a burst
        outcome = await process_idempotently(
            pipeline,
            event,
            source="realgeeks",
            table=table,
            decide=decide,
            key_of=lambda e, _k: e["message_id"],
        )
        assert outcome == "duplicate"
    assert [r for r in caplog.records if r.levelno >= logging.INFO] == []
    counted = metrics.registry.get_sample_value(
        "realgeeks_duplicate_messages_total", {"source": "realgeeks"}
    )
    assert counted == 100
