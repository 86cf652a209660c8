"""The worker and the ingress run on uvloop (README, "Fewer, cheaper writes per webhook")."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import faust
import pytest
import uvloop

import realgeeks_sync.app.main as app_main
from realgeeks_sync.app import cli
from realgeeks_sync.app.core.settings import Settings
from realgeeks_sync.app.ingress import server
from realgeeks_sync.app.streaming import topics


@pytest.fixture
def settings(tmp_path: Path) -> Iterator[Settings]:
    yield Settings.from_env({"RGSYNC_REALGEEKS_SECRETS": "s", "RGSYNC_DATA_DIR": str(tmp_path)})
    asyncio.set_event_loop_policy(None)  # the worker path installs uvloop's for the process


def test_the_worker_runs_on_uvloop(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Any] = []

    class Worker:
        """faust.Worker as run_worker uses it: the policy it would get its loop from."""

        def __init__(self, *_args: Any, **_kwargs: Any) -> None:
            pass

        def execute_from_commandline(self) -> None:
            seen.append(asyncio.get_event_loop_policy())

    pipeline = SimpleNamespace(app=None, publisher=SimpleNamespace(close=lambda: None))
    monkeypatch.setattr(cli, "configure_logging", lambda *_args: None)
    monkeypatch.setattr(topics, "ensure_topics", lambda _settings, **_kw: [])
    monkeypatch.setattr(app_main, "build", lambda _settings: pipeline)
    monkeypatch.setattr(faust, "Worker", Worker)
    cli.run_worker(settings)
    assert len(seen) == 1 and isinstance(seen[0], uvloop.EventLoopPolicy)


def test_the_ingress_process_runs_on_uvloop(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[asyncio.AbstractEventLoop] = []

    async def serve(_settings: Settings) -> None:
        seen.append(asyncio.get_running_loop())

    monkeypatch.setattr(server, "configure_logging", lambda *_args: None)
    monkeypatch.setattr(server, "ensure_topics", lambda _settings: [])
    monkeypatch.setattr(server, "_serve", serve)
    cli.run_ingress_process(settings)
    assert len(seen) == 1 and isinstance(seen[0], uvloop.Loop)
