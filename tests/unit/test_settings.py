"""Settings from the environment: required secrets, types, secrets never printed."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ops.testkit.support import ROOT
from realgeeks_sync.app.core.errors import ConfigError
from realgeeks_sync.app.core.settings import Secret, Settings


def test_missing_secret_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="RGSYNC_REALGEEKS_SECRETS"):
        Settings.from_env({})


def test_defaults_follow_the_spec() -> None:
    s = Settings.from_env({"RGSYNC_REALGEEKS_SECRETS": "a, b"})
    assert [x.reveal() for x in s.realgeeks_secrets] == ["a", "b"]
    assert s.kafka_url == "kafka://127.0.0.1:9092" and s.web_port == 6066
    assert str(s.data_dir) == "var/data" and s.dialer_enabled is False and s.admin_token is None
    assert s.bootstrap_servers == "127.0.0.1:9092"


def test_ingress_port_defaults_to_6067_and_is_read_from_the_environment() -> None:
    assert Settings.from_env({"RGSYNC_REALGEEKS_SECRETS": "a"}).ingress_port == 6067
    s = Settings.from_env({"RGSYNC_REALGEEKS_SECRETS": "a", "RGSYNC_INGRESS_PORT": " 7070 "})
    assert s.ingress_port == 7070 and s.web_port == 6066


def test_secrets_never_print() -> None:
    s = Settings.from_env({"RGSYNC_REALGEEKS_SECRETS": "topsecret", "RGSYNC_ADMIN_TOKEN": "tok"})
    assert "topsecret" not in repr(s) and "tok'" not in repr(s)
    assert str(Secret("x")) == "**********"


@pytest.mark.parametrize(
    "name,value",
    [
        ("RGSYNC_WEB_PORT", "http"),
        ("RGSYNC_INGRESS_PORT", "http"),
        ("RGSYNC_INGRESS_PORT", "0"),
        ("RGSYNC_DIALER_ENABLED", "maybe"),
        ("RGSYNC_DEDUP_RETENTION_DAYS", "3"),
    ],
)
def test_malformed_values_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({"RGSYNC_REALGEEKS_SECRETS": "a", name: value})


def test_dialer_requires_its_credentials() -> None:
    with pytest.raises(ConfigError, match="RGSYNC_ELEVENLABS_API_KEY"):
        Settings.from_env({"RGSYNC_REALGEEKS_SECRETS": "a", "RGSYNC_DIALER_ENABLED": "true"})


@pytest.mark.parametrize("command", ["worker", "ingress"])
def test_refuses_to_start_without_secrets(command: str) -> None:
    env = {"PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-m", "realgeeks_sync.app.cli", command],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "RGSYNC_REALGEEKS_SECRETS" in lines[0]
