"""Settings from the environment: required secrets, types, secrets never printed."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from ops.testkit.support import ROOT
from realgeeks_sync.app.core.errors import ConfigError
from realgeeks_sync.app.core.settings import Secret, Settings, Spec, setting_specs, settings_table


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


# -- declared once: the README's table, every bad value refused in one line ---------------

BAD_VALUES = {"int": "many", "float": "lots", "float | None": "1e", "bool": "maybe"}


def _bad_value(kind: str, spec: Spec) -> str | None:
    """A value the declaration must refuse (None: any text is acceptable)."""
    if spec.choices:
        return "verbose"
    if kind in BAD_VALUES:
        return BAD_VALUES[kind]
    if spec.must_exist:
        return "/nowhere/at/all.pem"
    return None


@pytest.mark.parametrize(
    ("env", "kind", "spec"), [(s.env, str(f.type), s) for f, s in setting_specs()]
)
def test_every_declared_setting_refuses_a_bad_value_in_one_line(
    env: str, kind: str, spec: Spec
) -> None:
    bad = _bad_value(kind, spec)
    if bad is None:
        pytest.skip(f"{env}: free text")
    with pytest.raises(ConfigError) as refused:
        Settings.from_env({"RGSYNC_REALGEEKS_SECRETS": "a", env: bad})
    message = str(refused.value)
    assert message.startswith(env) and "\n" not in message
    if spec.minimum is not None:
        below = str(int(spec.minimum) - 1 if kind == "int" else spec.minimum - 1)
        with pytest.raises(ConfigError, match=env):
            Settings.from_env({"RGSYNC_REALGEEKS_SECRETS": "a", env: below})


def test_the_issues_two_examples_are_refused() -> None:
    # A non-numeric threshold once gave a traceback; a log level "verbose" was accepted.
    for env, value in (("RGSYNC_FUZZY_THRESHOLD", "high"), ("RGSYNC_LOG_LEVEL", "verbose")):
        with pytest.raises(ConfigError, match=env):
            Settings.from_env({"RGSYNC_REALGEEKS_SECRETS": "a", env: value})


def test_a_bad_value_stops_the_worker_with_one_line_and_no_traceback() -> None:
    env = {"PATH": "/usr/bin:/bin", "RGSYNC_REALGEEKS_SECRETS": "a", "RGSYNC_FUZZY_THRESHOLD": "x"}
    out = subprocess.run(
        [sys.executable, "-m", "realgeeks_sync.app.cli", "worker"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        "realgeeks-sync: RGSYNC_FUZZY_THRESHOLD must be a number, got 'x'"
    ]


def test_the_readme_table_is_the_declarations() -> None:
    readme = (ROOT / "README.md").read_text()
    start = readme.index("<!-- settings table: start -->\n") + len(
        "<!-- settings table: start -->\n"
    )
    end = readme.index("<!-- settings table: end -->")
    assert readme[start:end] == settings_table(), "run ops/settings-table --write"


def test_every_variable_the_service_reads_is_declared() -> None:
    declared = {spec.env for _f, spec in setting_specs()}
    # Read elsewhere on purpose: the removed fallback zone (refused by name).
    known = declared | {"RGSYNC_DIALER_FALLBACK_TIMEZONE"}
    read = set()
    for path in [*(ROOT / "app").rglob("*.py"), *(ROOT / "agents").rglob("*.py")]:
        read |= set(re.findall(r"RGSYNC_[A-Z0-9_]+", path.read_text()))
    assert read <= known, sorted(read - known)


@pytest.mark.parametrize(
    ("env", "value"),
    [
        ("RGSYNC_OUTCOME_LEAD_FIELDS", "timeframe=notes"),
        ("RGSYNC_OUTCOME_LEAD_FIELDS", "budget=field:Budget Range"),
        ("RGSYNC_HOT_OUTCOMES", "tour_requested,hot"),
        ("RGSYNC_RECONCILE_INTERVAL_S", "0.5"),
    ],
)
def test_outcome_settings_are_read_at_start_up(env: str, value: str) -> None:
    from realgeeks_sync.app.main import load_settings

    with pytest.raises(ConfigError) as refused:
        load_settings({"RGSYNC_REALGEEKS_SECRETS": "a", env: value})
    assert str(refused.value).startswith(env) and "\n" not in str(refused.value)


def test_outcome_settings_build_the_mapping() -> None:
    from realgeeks_sync.app.domain.call_outcomes import outcome_mapping

    settings = Settings.from_env(
        {
            "RGSYNC_REALGEEKS_SECRETS": "a",
            "RGSYNC_OUTCOME_LEAD_FIELDS": "urgency=field:urgency",
            "RGSYNC_HOT_OUTCOMES": " called ",
        }
    )
    mapping = outcome_mapping(settings)
    assert mapping.notify_kinds == frozenset({"called"})
    assert [(r.source, r.target, r.name) for r in mapping.lead_field_rules] == [
        ("urgency", "field", "urgency")
    ]
    default = outcome_mapping(Settings.from_env({"RGSYNC_REALGEEKS_SECRETS": "a"}))
    assert default.notify_kinds == frozenset({"tour_requested", "callback_requested", "opted_out"})
