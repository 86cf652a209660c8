"""Reconciliation without a broker: the command's refusals (exit 2, before any Kafka or
HTTP) and the periodic job's place (the leader worker only)."""

from __future__ import annotations

import io
from types import SimpleNamespace
from typing import Any, cast

import pytest

from ops.testkit.support import free_port
from realgeeks_sync.agents import reconcile_calls
from realgeeks_sync.app.clients.elevenlabs import ElevenLabsClients
from realgeeks_sync.app.core.settings import Settings
from realgeeks_sync.app.operations.reconcile import run_reconcile
from realgeeks_sync.app.streaming.pipeline import Pipeline


def settings_with(**extra: str) -> Settings:
    return Settings.from_env(
        {
            "RGSYNC_REALGEEKS_SECRETS": "x",
            # Nothing listens here: a refusal must come before any connection.
            "RGSYNC_KAFKA_URL": f"kafka://127.0.0.1:{free_port()}",
            "RGSYNC_ELEVENLABS_API_URL": f"http://127.0.0.1:{free_port()}",
            **extra,
        }
    )


def run(settings: Settings, since: str) -> tuple[int, str]:
    out = io.StringIO()
    return run_reconcile(settings, since, out=out), out.getvalue()


def test_without_an_agent_and_key_there_is_nothing_to_list() -> None:
    code, said = run(settings_with(RGSYNC_ELEVENLABS_API_KEY="sk"), "2d")
    assert code == 2 and "RGSYNC_ELEVENLABS_AGENT_ID" in said
    code, said = run(settings_with(RGSYNC_ELEVENLABS_AGENT_ID="agent_1"), "2d")  # no key
    assert code == 2 and "RGSYNC_ELEVENLABS_API_KEY" in said


@pytest.mark.parametrize(
    ("since", "said"),
    [("yesterday", "reconcile: --since: "), ("2w", "reconcile: --since: "), ("", "is needed")],
)
def test_a_since_that_is_no_time_is_refused(since: str, said: str) -> None:
    settings = settings_with(RGSYNC_ELEVENLABS_AGENT_ID="agent_1", RGSYNC_ELEVENLABS_API_KEY="sk")
    code, text = run(settings, since)
    assert code == 2 and said in text


class TimerApp:
    """Records the timers registered on it."""

    def __init__(self) -> None:
        self.timers: list[dict[str, Any]] = []

    def timer(self, **options: Any) -> Any:
        self.timers.append(options)
        return lambda fun: fun


@pytest.mark.parametrize(("interval", "timers"), [("300", 1), ("0", 0)])
def test_the_periodic_job_runs_on_the_leader_worker_only(interval: str, timers: int) -> None:
    settings = settings_with(RGSYNC_RECONCILE_INTERVAL_S=interval)
    app = TimerApp()
    p = cast(Pipeline, SimpleNamespace(settings=settings, sites=None, app=app))
    reconcile_calls.register(p, ElevenLabsClients(settings))
    assert app.timers == [{"interval": 300.0, "on_leader": True}][:timers]
