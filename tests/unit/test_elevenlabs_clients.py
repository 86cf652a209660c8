"""The ElevenLabs clients the agents share: built once, closed when the app stops."""

from __future__ import annotations

from types import SimpleNamespace
from typing import cast

import faust

from realgeeks_sync.agents import elevenlabs_clients
from realgeeks_sync.app.core.metrics import Metrics
from realgeeks_sync.app.core.settings import Settings
from realgeeks_sync.app.streaming.pipeline import Pipeline


async def test_the_shared_session_closes_before_the_app_shuts_down() -> None:
    settings = Settings.from_env({"RGSYNC_REALGEEKS_SECRETS": "x"})
    app = faust.App("test-elevenlabs-clients", broker="memory://")
    p = cast(Pipeline, SimpleNamespace(settings=settings, app=app, metrics=Metrics()))
    clients = elevenlabs_clients(p)
    client = clients.client("sk_a")
    assert clients.client("sk_a") is client and clients.client("sk_b") is not client
    session = client._session
    assert not session.closed
    await app.on_before_shutdown.send()
    assert session.closed
    # Requests are timed under api="elevenlabs".
    assert client.on_request is not None
    client.on_request("list_conversations", "200", 0.5)
    sample = p.metrics.registry.get_sample_value(
        "realgeeks_api_request_duration_seconds_count",
        {"api": "elevenlabs", "operation": "list_conversations", "status": "200"},
    )
    assert sample == 1
