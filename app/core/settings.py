"""One frozen settings object, read from the environment once at start-up."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from realgeeks_sync.app.core.errors import ConfigError
from realgeeks_sync.app.core.sizes import MAX_BODY_BYTES_LIMIT

__all__ = ["Secret", "Settings"]


class Secret:
    """A string that never prints itself (logs, reprs, tracebacks)."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """Return the secret value; call only where it is used."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    def __str__(self) -> str:
        return "**********"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)


def _secrets(raw: str) -> tuple[Secret, ...]:
    return tuple(Secret(s.strip()) for s in raw.split(",") if s.strip())


class _Env:
    """Typed reads from an environment mapping; errors name the variable."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ

    def text(self, name: str, default: str = "") -> str:
        return self.environ.get(name, default).strip()

    def integer(self, name: str, default: int, minimum: int = 0) -> int:
        raw = self.text(name)
        if not raw:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
        if value < minimum:
            raise ConfigError(f"{name} must be >= {minimum}, got {value}")
        return value

    def number(self, name: str, default: float, minimum: float = 0.0) -> float:
        raw = self.text(name)
        if not raw:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(f"{name} must be a number, got {raw!r}") from None
        if value < minimum:
            raise ConfigError(f"{name} must be >= {minimum}, got {value}")
        return value

    def flag(self, name: str, default: bool) -> bool:
        raw = self.text(name).lower()
        if not raw:
            return default
        if raw in {"1", "true", "yes", "on"}:
            return True
        if raw in {"0", "false", "no", "off"}:
            return False
        raise ConfigError(f"{name} must be true or false, got {raw!r}")


@dataclass(frozen=True)
class Settings:
    """Everything configurable, with the defaults of SPEC.md."""

    realgeeks_secrets: tuple[Secret, ...]
    elevenlabs_secrets: tuple[Secret, ...] = ()
    kafka_url: str = "kafka://127.0.0.1:9092"
    web_host: str = "0.0.0.0"
    web_port: int = 6066
    # The standalone ingress process (realgeeks-sync ingress) listens on web_host here.
    ingress_port: int = 6067
    data_dir: Path = Path("var/data")
    app_id: str = "realgeeks-sync"
    topic_prefix: str = ""
    partitions: int = 8
    replication_factor: int = 1
    # How long the broker waits for a worker that stopped answering before handing its
    # partitions to the others (or to its own restart): a crash pauses them this long.
    kafka_session_timeout_s: float = 15.0
    # ingress
    max_body_bytes: int = 1024 * 1024
    elevenlabs_max_body_bytes: int = 16 * 1024 * 1024
    publish_timeout_s: float = 5.0
    retry_after_s: int = 5
    client_rate_per_s: float = 200.0
    client_burst: int = 400
    trust_forwarded_for: bool = False
    elevenlabs_tolerance_s: int = 30 * 60
    elevenlabs_future_tolerance_s: int = 5 * 60
    # domain
    default_region: str = "US"
    fuzzy_threshold: float | None = None
    # A fitted identity model (ops/fit_identity_model.py); None: the one shipped in app/data.
    identity_model: Path | None = None
    dedup_retention_days: int = 7
    rocksdb_write_buffer_mb: int = 2
    # One budget shared by every table partition (app/streaming/rocksdb_memory.py); memtables are
    # charged to it, up to rocksdb_memtable_mb.
    rocksdb_cache_mb: int = 64
    rocksdb_memtable_mb: int = 32
    own_activity_source: str = "AI Voice Agent (realgeeks-sync)"
    # Real Geeks API
    realgeeks_api_url: str = "https://receivers.leadrouter.realgeeks.com/rest"
    realgeeks_api_user: str = ""
    realgeeks_api_password: Secret = field(default_factory=lambda: Secret(""))
    realgeeks_rate_per_s: float = 5.0
    realgeeks_timeout_s: float = 10.0
    retry_base_s: float = 0.5
    retry_max_delay_s: float = 30.0
    retry_max_attempts: int = 8
    retry_max_elapsed_s: float = 120.0
    # ElevenLabs API and the dialer
    elevenlabs_api_url: str = "https://api.elevenlabs.io"
    elevenlabs_api_key: Secret = field(default_factory=lambda: Secret(""))
    elevenlabs_agent_id: str = ""
    elevenlabs_phone_number_id: str = ""
    dialer_enabled: bool = False
    dialer_max_concurrent_calls: int = 2
    dialer_max_attempts: int = 3
    dialer_max_attempts_per_day: int = 2
    dialer_redial_after_s: float = 4 * 3600.0
    dialer_max_context_age_s: float = 3600.0
    # A placed call whose outcome never arrives frees its line after this long.
    dialer_line_hold_s: float = 900.0
    elevenlabs_timeout_s: float = 10.0
    # operations
    admin_token: Secret | None = None
    health_lag_bound_s: float = 300.0
    health_probe_site: str = ""
    # Drills and tests only: the dialer reads "now" (unix seconds) from this file.
    clock_file: Path | None = None
    log_level: str = "INFO"
    log_format: str = "json"
    # -- hostile input and a secured Kafka (issue 10): one block, read by _hardening() --
    # Bytes of request bodies held before their signature is checked, over all requests
    # at once; beyond it webhooks are answered 503 + Retry-After. At least the largest
    # body limit, so one body of any accepted size always fits.
    max_pending_body_bytes: int = 64 * 1024 * 1024
    # A body that has not fully arrived after this long is answered 408.
    body_read_timeout_s: float = 30.0
    # X-Lead-Router-Timestamp later than receipt plus this is replaced by the receipt time.
    timestamp_max_skew_s: float = 300.0
    # Kafka security for every client (app/streaming/kafka_config.py builds their configuration):
    # PLAINTEXT, SSL (TLS, client certificate optional: mTLS) or SASL_SSL (TLS + SASL).
    kafka_security_protocol: str = "PLAINTEXT"
    kafka_sasl_mechanism: str = "SCRAM-SHA-512"
    kafka_sasl_username: str = ""
    kafka_sasl_password: Secret = field(default_factory=lambda: Secret(""))
    # None: the system's trust store (managed clusters with public certificates).
    kafka_ssl_ca_file: Path | None = None
    kafka_ssl_cert_file: Path | None = None
    kafka_ssl_key_file: Path | None = None
    kafka_ssl_key_password: Secret = field(default_factory=lambda: Secret(""))
    # The URL other workers use to reach this one (advertised in the consumer group; by
    # default http://<web host>:<web port>), and the key that signs requests forwarded
    # between workers (default: derived from the admin token, which is never forwarded).
    internal_url: str = ""
    internal_secret: Secret | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from RGSYNC_* variables.

        Raises:
            ConfigError: a required variable is missing or a value is malformed.
        """
        env = _Env(os.environ if environ is None else environ)
        if env.text("RGSYNC_DIALER_FALLBACK_TIMEZONE"):
            # Removed on purpose: a borrowed zone can put a call at night where the person is.
            raise ConfigError(
                "RGSYNC_DIALER_FALLBACK_TIMEZONE is no longer supported: numbers whose time "
                "zone is unknown are never called automatically; unset it"
            )
        rg_secrets = _secrets(env.text("RGSYNC_REALGEEKS_SECRETS"))
        if not rg_secrets:
            raise ConfigError(
                "RGSYNC_REALGEEKS_SECRETS is required (comma-separated webhook secrets)"
            )
        token = env.text("RGSYNC_ADMIN_TOKEN")
        threshold = env.text("RGSYNC_FUZZY_THRESHOLD")
        model_path = env.text("RGSYNC_IDENTITY_MODEL")  # read by app/main.py load_settings
        dialer = env.flag("RGSYNC_DIALER_ENABLED", False)
        settings = cls(
            realgeeks_secrets=rg_secrets,
            elevenlabs_secrets=_secrets(env.text("RGSYNC_ELEVENLABS_SECRETS")),
            kafka_url=env.text("RGSYNC_KAFKA_URL", "kafka://127.0.0.1:9092"),
            web_host=env.text("RGSYNC_WEB_HOST", "0.0.0.0"),
            web_port=env.integer("RGSYNC_WEB_PORT", 6066, minimum=1),
            ingress_port=env.integer("RGSYNC_INGRESS_PORT", 6067, minimum=1),
            data_dir=Path(env.text("RGSYNC_DATA_DIR", "var/data")),
            app_id=env.text("RGSYNC_APP_ID", "realgeeks-sync"),
            topic_prefix=env.text("RGSYNC_TOPIC_PREFIX"),
            partitions=env.integer("RGSYNC_PARTITIONS", 8, minimum=1),
            replication_factor=env.integer("RGSYNC_REPLICATION_FACTOR", 1, minimum=1),
            kafka_session_timeout_s=env.number("RGSYNC_KAFKA_SESSION_TIMEOUT_S", 15.0, minimum=6.0),
            max_body_bytes=env.integer("RGSYNC_MAX_BODY_BYTES", 1024 * 1024, minimum=1),
            publish_timeout_s=env.number("RGSYNC_PUBLISH_TIMEOUT_S", 5.0, minimum=0.1),
            retry_after_s=env.integer("RGSYNC_RETRY_AFTER_S", 5, minimum=1),
            client_rate_per_s=env.number("RGSYNC_CLIENT_RATE_PER_S", 200.0, minimum=0.1),
            client_burst=env.integer("RGSYNC_CLIENT_BURST", 400, minimum=1),
            trust_forwarded_for=env.flag("RGSYNC_TRUST_FORWARDED_FOR", False),
            default_region=env.text("RGSYNC_DEFAULT_REGION", "US").upper(),
            fuzzy_threshold=float(threshold) if threshold else None,
            identity_model=Path(model_path) if model_path else None,
            rocksdb_write_buffer_mb=env.integer("RGSYNC_ROCKSDB_WRITE_BUFFER_MB", 2, minimum=1),
            rocksdb_cache_mb=env.integer("RGSYNC_ROCKSDB_CACHE_MB", 64, minimum=8),
            rocksdb_memtable_mb=env.integer("RGSYNC_ROCKSDB_MEMTABLE_MB", 32, minimum=4),
            dedup_retention_days=env.integer("RGSYNC_DEDUP_RETENTION_DAYS", 7, minimum=7),
            realgeeks_api_url=env.text(
                "RGSYNC_REALGEEKS_API_URL", "https://receivers.leadrouter.realgeeks.com/rest"
            ).rstrip("/"),
            realgeeks_api_user=env.text("RGSYNC_REALGEEKS_API_USER"),
            realgeeks_api_password=Secret(env.text("RGSYNC_REALGEEKS_API_PASSWORD")),
            realgeeks_rate_per_s=env.number("RGSYNC_REALGEEKS_RATE_PER_S", 5.0, minimum=0.01),
            retry_base_s=env.number("RGSYNC_RETRY_BASE_S", 0.5, minimum=0.0),
            retry_max_delay_s=env.number("RGSYNC_RETRY_MAX_DELAY_S", 30.0, minimum=0.0),
            retry_max_attempts=env.integer("RGSYNC_RETRY_MAX_ATTEMPTS", 8, minimum=1),
            retry_max_elapsed_s=env.number("RGSYNC_RETRY_MAX_ELAPSED_S", 120.0, minimum=0.0),
            elevenlabs_api_url=env.text(
                "RGSYNC_ELEVENLABS_API_URL", "https://api.elevenlabs.io"
            ).rstrip("/"),
            elevenlabs_api_key=Secret(env.text("RGSYNC_ELEVENLABS_API_KEY")),
            elevenlabs_agent_id=env.text("RGSYNC_ELEVENLABS_AGENT_ID"),
            elevenlabs_phone_number_id=env.text("RGSYNC_ELEVENLABS_PHONE_NUMBER_ID"),
            dialer_enabled=dialer,
            dialer_max_concurrent_calls=env.integer("RGSYNC_DIALER_MAX_CONCURRENT_CALLS", 2, 1),
            dialer_max_attempts=env.integer("RGSYNC_DIALER_MAX_ATTEMPTS", 3, 1),
            dialer_max_attempts_per_day=env.integer("RGSYNC_DIALER_MAX_ATTEMPTS_PER_DAY", 2, 1),
            dialer_redial_after_s=env.number("RGSYNC_DIALER_REDIAL_AFTER_S", 14400.0, 0.0),
            dialer_max_context_age_s=env.number("RGSYNC_DIALER_MAX_CONTEXT_AGE_S", 3600.0, 1.0),
            dialer_line_hold_s=env.number("RGSYNC_DIALER_LINE_HOLD_S", 900.0, 1.0),
            elevenlabs_timeout_s=env.number("RGSYNC_ELEVENLABS_TIMEOUT_S", 10.0, 0.1),
            admin_token=Secret(token) if token else None,
            health_lag_bound_s=env.number("RGSYNC_HEALTH_LAG_BOUND_S", 300.0, minimum=1.0),
            health_probe_site=env.text("RGSYNC_HEALTH_PROBE_SITE"),
            clock_file=Path(env.text("RGSYNC_CLOCK_FILE"))
            if env.text("RGSYNC_CLOCK_FILE")
            else None,
            log_level=env.text("RGSYNC_LOG_LEVEL", "INFO").upper(),
            log_format=env.text("RGSYNC_LOG_FORMAT", "json").lower(),
            **_hardening(env),
        )
        if dialer:
            for name, value in (
                ("RGSYNC_ELEVENLABS_API_KEY", settings.elevenlabs_api_key.reveal()),
                ("RGSYNC_ELEVENLABS_AGENT_ID", settings.elevenlabs_agent_id),
                ("RGSYNC_ELEVENLABS_PHONE_NUMBER_ID", settings.elevenlabs_phone_number_id),
            ):
                if not value:
                    raise ConfigError(f"{name} is required when RGSYNC_DIALER_ENABLED=true")
        return settings

    def topic(self, name: str) -> str:
        """The full name of a topic (a prefix isolates test runs on a shared broker)."""
        return f"{self.topic_prefix}{name}"

    @property
    def bootstrap_servers(self) -> str:
        """The broker list in the host:port,host:port form Kafka clients take."""
        hosts = [h.strip() for h in self.kafka_url.replace(";", ",").split(",") if h.strip()]
        return ",".join(h.split("://", 1)[-1] for h in hosts)


def _hardening(env: _Env) -> dict[str, Any]:
    """The settings of issue 10's block (ingress bounds, Kafka security, internal routing).

    Raises:
        ConfigError: a value is malformed or the combination cannot work.
    """
    max_body = env.integer("RGSYNC_MAX_BODY_BYTES", 1024 * 1024, minimum=1)
    if max_body > MAX_BODY_BYTES_LIMIT:
        # Records grow to 16x the body (app/core/sizes.py); brokers refuse requests over 100 MiB.
        raise ConfigError(
            f"RGSYNC_MAX_BODY_BYTES must be <= {MAX_BODY_BYTES_LIMIT}, got {max_body}"
        )
    body_limit = max(max_body, 16 * 1024 * 1024)
    internal_url = env.text("RGSYNC_INTERNAL_URL").rstrip("/")
    if internal_url and not internal_url.startswith(("http://", "https://")):
        raise ConfigError(
            f"RGSYNC_INTERNAL_URL must start with http:// or https://, got {internal_url!r}"
        )
    internal_secret = env.text("RGSYNC_INTERNAL_SECRET")
    return {
        **_kafka_security(env),
        "internal_url": internal_url,
        "internal_secret": Secret(internal_secret) if internal_secret else None,
        "max_pending_body_bytes": env.integer(
            "RGSYNC_MAX_PENDING_BODY_BYTES", 64 * 1024 * 1024, minimum=body_limit
        ),
        "body_read_timeout_s": env.number("RGSYNC_BODY_READ_TIMEOUT_S", 30.0, minimum=0.1),
        "timestamp_max_skew_s": env.number("RGSYNC_TIMESTAMP_MAX_SKEW_S", 300.0, minimum=0.0),
    }


KAFKA_SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_SSL")
KAFKA_SASL_MECHANISMS = ("SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN")


def _existing_file(env: _Env, name: str) -> Path | None:
    raw = env.text(name)
    if not raw:
        return None
    path = Path(raw)
    if not path.is_file():
        raise ConfigError(f"{name} names no readable file: {raw}")
    return path


def _kafka_security(env: _Env) -> dict[str, Any]:
    """RGSYNC_KAFKA_SECURITY_PROTOCOL and the SASL and TLS settings that go with it.

    A setting that the chosen protocol would ignore is an error, so nobody believes TLS
    or SASL is on when it is not.

    Raises:
        ConfigError: an unknown value, a missing credential or file, or a setting the
            protocol does not use.
    """
    protocol = env.text("RGSYNC_KAFKA_SECURITY_PROTOCOL", "PLAINTEXT").upper()
    if protocol not in KAFKA_SECURITY_PROTOCOLS:
        raise ConfigError(
            f"RGSYNC_KAFKA_SECURITY_PROTOCOL must be one of {', '.join(KAFKA_SECURITY_PROTOCOLS)},"
            f" got {protocol!r}"
        )
    mechanism = env.text("RGSYNC_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512").upper()
    if mechanism not in KAFKA_SASL_MECHANISMS:
        raise ConfigError(
            f"RGSYNC_KAFKA_SASL_MECHANISM must be one of {', '.join(KAFKA_SASL_MECHANISMS)},"
            f" got {mechanism!r}"
        )
    username = env.text("RGSYNC_KAFKA_SASL_USERNAME")
    password = env.text("RGSYNC_KAFKA_SASL_PASSWORD")
    files = {
        name: _existing_file(env, name)
        for name in (
            "RGSYNC_KAFKA_SSL_CA_FILE",
            "RGSYNC_KAFKA_SSL_CERT_FILE",
            "RGSYNC_KAFKA_SSL_KEY_FILE",
        )
    }
    key_password = env.text("RGSYNC_KAFKA_SSL_KEY_PASSWORD")
    if protocol == "SASL_SSL":
        for name, value in (
            ("RGSYNC_KAFKA_SASL_USERNAME", username),
            ("RGSYNC_KAFKA_SASL_PASSWORD", password),
        ):
            if not value:
                raise ConfigError(
                    f"{name} is required when RGSYNC_KAFKA_SECURITY_PROTOCOL=SASL_SSL"
                )
    else:
        for name, value in (
            ("RGSYNC_KAFKA_SASL_USERNAME", username),
            ("RGSYNC_KAFKA_SASL_PASSWORD", password),
            ("RGSYNC_KAFKA_SASL_MECHANISM", env.text("RGSYNC_KAFKA_SASL_MECHANISM")),
        ):
            if value:
                raise ConfigError(
                    f"{name} is set but RGSYNC_KAFKA_SECURITY_PROTOCOL={protocol} uses no SASL"
                    " (set it to SASL_SSL)"
                )
    if protocol == "PLAINTEXT":
        tls = [n for n, v in files.items() if v] + (
            ["RGSYNC_KAFKA_SSL_KEY_PASSWORD"] if key_password else []
        )
        if tls:
            raise ConfigError(
                f"{tls[0]} is set but RGSYNC_KAFKA_SECURITY_PROTOCOL=PLAINTEXT uses no TLS"
                " (set it to SSL or SASL_SSL)"
            )
    cert, key = files["RGSYNC_KAFKA_SSL_CERT_FILE"], files["RGSYNC_KAFKA_SSL_KEY_FILE"]
    if (cert is None) != (key is None):
        missing = "RGSYNC_KAFKA_SSL_KEY_FILE" if key is None else "RGSYNC_KAFKA_SSL_CERT_FILE"
        raise ConfigError(f"{missing} is required with a client certificate (mTLS)")
    return {
        "kafka_security_protocol": protocol,
        "kafka_sasl_mechanism": mechanism,
        "kafka_sasl_username": username,
        "kafka_sasl_password": Secret(password),
        "kafka_ssl_ca_file": files["RGSYNC_KAFKA_SSL_CA_FILE"],
        "kafka_ssl_cert_file": cert,
        "kafka_ssl_key_file": key,
        "kafka_ssl_key_password": Secret(key_password),
    }
