"""One frozen settings object, read from the environment once at start-up.

Every setting is declared once, in ``Settings``: its field, variable, default, bounds or
choices, and help text (``setting(...)``). ``Settings.from_env`` reads and checks each from
that declaration, and the README's configuration table is generated from it
(``settings_table``; tests/unit/test_settings.py keeps the two identical). A bad value
stops start-up with one line naming the variable.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import phonenumbers

from realgeeks_sync.app.core.errors import ConfigError
from realgeeks_sync.app.core.sizes import MAX_BODY_BYTES_LIMIT

__all__ = [
    "DEFAULT_HOT_OUTCOMES",
    "DEFAULT_OUTCOME_LEAD_FIELDS",
    "Secret",
    "Settings",
    "setting_specs",
    "settings_table",
]


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


@dataclass(frozen=True)
class Spec:
    """How one variable is read: bounds, choices and the text of the README's table."""

    env: str
    help: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    required: bool = False
    required_unless: str | None = None  # required unless this variable is set
    must_exist: bool = False  # a path that must name a readable file
    shown_default: str | None = None  # the table's default column, where the value says little
    transform: Callable[[str], str] | None = None


def setting(env: str, default: Any, help: str, **options: Any) -> Any:
    """Declare a setting: its variable, default, bounds and help, in one place."""
    return field(default=default, metadata={"spec": Spec(env, help, **options)})


_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
KAFKA_SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_SSL")
KAFKA_SASL_MECHANISMS = ("SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN")
_REGIONS = tuple(sorted(phonenumbers.SUPPORTED_REGIONS))
_MIB = 1024 * 1024
# What an agent collected -> lead fields and tags (app/domain/lead_fields.py reads the rules).
DEFAULT_OUTCOME_LEAD_FIELDS = (
    "timeframe=field:timeframe,budget=tag:Budget {value},pre_approved=tag:Pre-approved,"
    "viewing_date=tag:Tour requested {value},callback_time=tag:Callback requested {value}"
)
DEFAULT_HOT_OUTCOMES = "tour_requested,callback_requested,opted_out"


def _upper(text: str) -> str:
    return text.upper()


def _lower(text: str) -> str:
    return text.lower()


def _no_trailing_slash(text: str) -> str:
    return text.rstrip("/")


@dataclass(frozen=True)
class Settings:
    """Everything configurable, with the defaults of SPEC.md."""

    # -- Kafka ---------------------------------------------------------------------------
    kafka_url: str = setting("RGSYNC_KAFKA_URL", "kafka://127.0.0.1:9092", "broker(s)")
    partitions: int = setting(
        "RGSYNC_PARTITIONS",
        8,
        "partitions of every topic (sites spread over them; fixed when topics are made)",
        minimum=1,
        maximum=1000,
    )
    table_standby_replicas: int = setting(
        "RGSYNC_TABLE_STANDBY_REPLICAS",
        1,
        "workers that keep a warm copy of each table partition they do not own (a failover "
        "starts from it instead of the changelog; each copy applies every table write once "
        "more: 0 saves about 40 % of two workers' CPU)",
        minimum=0,
        maximum=10,
    )
    replication_factor: int = setting(
        "RGSYNC_REPLICATION_FACTOR", 1, "replicas of every topic the service creates", minimum=1
    )
    kafka_session_timeout_s: float = setting(
        "RGSYNC_KAFKA_SESSION_TIMEOUT_S",
        15.0,
        "a crashed worker's partitions wait this long before another member (or its "
        "restart) takes them (Faust's default is 60)",
        minimum=6.0,
        maximum=300.0,
    )
    topic_prefix: str = setting(
        "RGSYNC_TOPIC_PREFIX", "", "prefix of every topic name: isolates a deployment"
    )
    app_id: str = setting(
        "RGSYNC_APP_ID", "realgeeks-sync", "consumer group and table names: isolates a deployment"
    )
    kafka_security_protocol: str = setting(
        "RGSYNC_KAFKA_SECURITY_PROTOCOL",
        "PLAINTEXT",
        "PLAINTEXT, SSL (TLS; with a client certificate: mTLS) or SASL_SSL (TLS + SASL), "
        "for every Kafka client",
        choices=KAFKA_SECURITY_PROTOCOLS,
        transform=_upper,
    )
    kafka_sasl_mechanism: str = setting(
        "RGSYNC_KAFKA_SASL_MECHANISM",
        "SCRAM-SHA-512",
        "SCRAM-SHA-512, SCRAM-SHA-256 or PLAIN (SASL_SSL only)",
        choices=KAFKA_SASL_MECHANISMS,
        transform=_upper,
    )
    kafka_sasl_username: str = setting("RGSYNC_KAFKA_SASL_USERNAME", "", "required with SASL_SSL")
    kafka_sasl_password: Secret = setting(
        "RGSYNC_KAFKA_SASL_PASSWORD", Secret(""), "required with SASL_SSL; never printed"
    )
    kafka_ssl_ca_file: Path | None = setting(
        "RGSYNC_KAFKA_SSL_CA_FILE",
        None,
        "PEM file of the CA that signed the brokers' certificates",
        must_exist=True,
        shown_default="(the system's trust store)",
    )
    kafka_ssl_cert_file: Path | None = setting(
        "RGSYNC_KAFKA_SSL_CERT_FILE", None, "client certificate (PEM) for mTLS", must_exist=True
    )
    kafka_ssl_key_file: Path | None = setting(
        "RGSYNC_KAFKA_SSL_KEY_FILE", None, "client key (PEM) for mTLS", must_exist=True
    )
    kafka_ssl_key_password: Secret = setting(
        "RGSYNC_KAFKA_SSL_KEY_PASSWORD", Secret(""), "password of the client key, if any"
    )
    # -- web server and ingress ----------------------------------------------------------
    web_host: str = setting("RGSYNC_WEB_HOST", "0.0.0.0", "bind address")
    web_port: int = setting(
        "RGSYNC_WEB_PORT", 6066, "HTTP port of the worker's web server", minimum=1, maximum=65535
    )
    ingress_port: int = setting(
        "RGSYNC_INGRESS_PORT",
        6067,
        "HTTP port of the standalone ingress (`realgeeks-sync ingress`), on RGSYNC_WEB_HOST",
        minimum=1,
        maximum=65535,
    )
    realgeeks_secrets: tuple[Secret, ...] = setting(
        "RGSYNC_REALGEEKS_SECRETS",
        (),
        "comma-separated webhook secrets; any one may sign (rotation); with a sites file, "
        "they sign for every site that lists none of its own",
        required=True,
        required_unless="RGSYNC_SITES_FILE",
        shown_default="(required without RGSYNC_SITES_FILE)",
    )
    elevenlabs_secrets: tuple[Secret, ...] = setting(
        "RGSYNC_ELEVENLABS_SECRETS",
        (),
        "comma-separated ElevenLabs webhook secrets",
        shown_default="(required to accept ElevenLabs webhooks)",
    )
    max_body_bytes: int = setting(
        "RGSYNC_MAX_BODY_BYTES",
        _MIB,
        "webhook body limit (413 above); every producer and topic takes records of 16x this "
        "+ 1 MiB (`app/core/sizes.py`)",
        minimum=1,
        maximum=MAX_BODY_BYTES_LIMIT,
    )
    publish_timeout_s: float = setting(
        "RGSYNC_PUBLISH_TIMEOUT_S",
        5.0,
        "bound on Kafka's ack before answering 503",
        minimum=0.1,
        maximum=60.0,
    )
    retry_after_s: int = setting(
        "RGSYNC_RETRY_AFTER_S", 5, "the Retry-After of a 503", minimum=1, maximum=3600
    )
    client_rate_per_s: float = setting(
        "RGSYNC_CLIENT_RATE_PER_S", 200.0, "per-client rate at the ingress (429 above)", minimum=0.1
    )
    client_burst: int = setting(
        "RGSYNC_CLIENT_BURST", 400, "per-client burst at the ingress", minimum=1
    )
    trust_forwarded_for: bool = setting(
        "RGSYNC_TRUST_FORWARDED_FOR", False, "take the client from X-Forwarded-For (behind a proxy)"
    )
    max_pending_body_bytes: int = setting(
        "RGSYNC_MAX_PENDING_BODY_BYTES",
        64 * _MIB,
        "bytes of webhook bodies held before their signature is checked, all requests "
        "together (503 + Retry-After above); at least the largest body limit (16 MiB)",
        minimum=16 * _MIB,
    )
    body_read_timeout_s: float = setting(
        "RGSYNC_BODY_READ_TIMEOUT_S",
        30.0,
        "a webhook body not fully received by then is answered 408",
        minimum=0.1,
    )
    timestamp_max_skew_s: float = setting(
        "RGSYNC_TIMESTAMP_MAX_SKEW_S",
        300.0,
        "an X-Lead-Router-Timestamp later than receipt plus this is replaced by the receipt time",
        minimum=0.0,
    )
    sites_file: Path | None = setting(
        "RGSYNC_SITES_FILE",
        None,
        "TOML file listing each Real Geeks site with its own secrets, logins, ElevenLabs agent "
        'and number, calling hours and dialer (README "Sites"); reread on SIGHUP; webhooks '
        "of sites it does not list are refused",
        must_exist=True,
    )
    public_url: str = setting(
        "RGSYNC_PUBLIC_URL",
        "",
        "the URL Real Geeks and ElevenLabs reach this service at (printed by `doctor`)",
        shown_default="http://<web host>:<web port>",
        transform=_no_trailing_slash,
    )
    # Not configurable: ElevenLabs' own bounds.
    elevenlabs_max_body_bytes: int = 16 * _MIB
    elevenlabs_tolerance_s: int = 30 * 60
    elevenlabs_future_tolerance_s: int = 5 * 60
    # -- tables and identity resolution ----------------------------------------------------
    data_dir: Path = setting("RGSYNC_DATA_DIR", Path("var/data"), "RocksDB tables")
    default_region: str = setting(
        "RGSYNC_DEFAULT_REGION",
        "US",
        "region for phone numbers without a country code",
        choices=_REGIONS,
        transform=_upper,
    )
    dedup_retention_days: int = setting(
        "RGSYNC_DEDUP_RETENTION_DAYS",
        7,
        "how long message ids are remembered (Real Geeks ignores messages older than 7 days)",
        minimum=7,
        maximum=3650,
    )
    batch_max_messages: int = setting(
        "RGSYNC_BATCH_MAX_MESSAGES",
        64,
        "raw webhooks of one partition an agent takes at once when they are waiting "
        "(decided in order, acknowledged together; 1: one at a time)",
        minimum=1,
        maximum=10000,
    )
    batch_linger_ms: int = setting(
        "RGSYNC_BATCH_LINGER_MS",
        25,
        "longest a run of raw webhooks waits for more of its partition when the partition "
        "has steady traffic (runs of several cost less CPU per webhook; a partition with "
        "occasional webhooks never waits; 0: never)",
        minimum=0,
        maximum=1000,
    )
    fetch_max_wait_ms: int = setting(
        "RGSYNC_FETCH_MAX_WAIT_MS",
        50,
        "longest the worker's consumer lets the broker wait for more records before "
        "answering a fetch (fewer fetches and less CPU per webhook, at most this much more "
        "latency per hop when traffic is light)",
        minimum=0,
        maximum=1500,
    )
    fuzzy_threshold: float | None = setting(
        "RGSYNC_FUZZY_THRESHOLD",
        None,
        "fuzzy-match probability needed to merge (1 switches fuzzy matching off)",
        minimum=0.5,
        maximum=1.0,
        shown_default="0.999",
    )
    identity_model: Path | None = setting(
        "RGSYNC_IDENTITY_MODEL",
        None,
        "identity model file written by `ops/fit_identity_model.py`",
        shown_default="(the fitted `app/domain/matching/data/identity_model.json`)",
    )
    gc_freeze: bool = setting(
        "RGSYNC_GC_FREEZE",
        True,
        "the worker hides the objects alive after each rebalance from Python's garbage "
        "collector (app/core/gc_tuning.py): at 250 webhooks/s the longest pause fell from at "
        "most 250 ms to at most 50 ms, and collection time by 40 %; a backfill of 100,000 "
        "leads took about 1.2 times the CPU a webhook without it (two runs)",
    )
    rocksdb_cache_mb: int = setting(
        "RGSYNC_ROCKSDB_CACHE_MB",
        64,
        "one RocksDB cache shared by every table partition; memtables and index/filter blocks "
        "are charged to it, so it caps RocksDB's memory",
        minimum=8,
    )
    rocksdb_memtable_mb: int = setting(
        "RGSYNC_ROCKSDB_MEMTABLE_MB", 32, "memtables in all (inside the cache)", minimum=4
    )
    rocksdb_write_buffer_mb: int = setting(
        "RGSYNC_ROCKSDB_WRITE_BUFFER_MB", 2, "memtable size of one table partition", minimum=1
    )
    own_activity_source: str = "AI Voice Agent (realgeeks-sync)"
    # -- Real Geeks API --------------------------------------------------------------------
    realgeeks_api_url: str = setting(
        "RGSYNC_REALGEEKS_API_URL",
        "https://receivers.leadrouter.realgeeks.com/rest",
        "Real Geeks Incoming Leads API",
        transform=_no_trailing_slash,
    )
    realgeeks_api_user: str = setting(
        "RGSYNC_REALGEEKS_API_USER", "", "HTTP Basic user of the Real Geeks API"
    )
    realgeeks_api_password: Secret = setting(
        "RGSYNC_REALGEEKS_API_PASSWORD", Secret(""), "HTTP Basic password; never printed"
    )
    realgeeks_rate_per_s: float = setting(
        "RGSYNC_REALGEEKS_RATE_PER_S",
        5.0,
        "Real Geeks API writes per second, per site",
        minimum=0.01,
    )
    realgeeks_timeout_s: float = 10.0
    retry_base_s: float = setting(
        "RGSYNC_RETRY_BASE_S", 0.5, "backoff: the first delay (full jitter)", minimum=0.0
    )
    retry_max_delay_s: float = setting(
        "RGSYNC_RETRY_MAX_DELAY_S", 30.0, "backoff: the longest delay", minimum=0.0
    )
    retry_max_attempts: int = setting(
        "RGSYNC_RETRY_MAX_ATTEMPTS", 8, "attempts, then the dead-letter topic", minimum=1
    )
    retry_max_elapsed_s: float = setting(
        "RGSYNC_RETRY_MAX_ELAPSED_S",
        120.0,
        "time for all attempts, then the dead-letter topic",
        minimum=0.0,
    )
    # -- ElevenLabs and the dialer ---------------------------------------------------------
    elevenlabs_api_url: str = setting(
        "RGSYNC_ELEVENLABS_API_URL",
        "https://api.elevenlabs.io",
        "ElevenLabs API",
        transform=_no_trailing_slash,
    )
    elevenlabs_api_key: Secret = setting(
        "RGSYNC_ELEVENLABS_API_KEY", Secret(""), "for outbound calls; never printed"
    )
    elevenlabs_agent_id: str = setting(
        "RGSYNC_ELEVENLABS_AGENT_ID", "", "the agent that makes outbound calls"
    )
    elevenlabs_phone_number_id: str = setting(
        "RGSYNC_ELEVENLABS_PHONE_NUMBER_ID", "", "the number outbound calls come from"
    )
    elevenlabs_timeout_s: float = setting(
        "RGSYNC_ELEVENLABS_TIMEOUT_S",
        10.0,
        "answer timeout of an ElevenLabs request (the connection has 5 s more of its own)",
        minimum=0.1,
        maximum=300.0,
    )
    dialer_enabled: bool = setting(
        "RGSYNC_DIALER_ENABLED", False, "start AI calls for eligible new leads"
    )
    dialer_max_concurrent_calls: int = setting(
        "RGSYNC_DIALER_MAX_CONCURRENT_CALLS",
        2,
        "calls in flight at once, per site (from the request until the call's outcome "
        "arrives, at most RGSYNC_DIALER_LINE_HOLD_S)",
        minimum=1,
    )
    dialer_max_attempts: int = setting(
        "RGSYNC_DIALER_MAX_ATTEMPTS",
        3,
        "call attempts per lead in total (redials only after no answer, busy or voicemail)",
        minimum=1,
    )
    dialer_max_attempts_per_day: int = setting(
        "RGSYNC_DIALER_MAX_ATTEMPTS_PER_DAY", 2, "call attempts per lead per local day", minimum=1
    )
    dialer_redial_after_s: float = setting(
        "RGSYNC_DIALER_REDIAL_AFTER_S",
        14400.0,
        "least time between two attempts for one lead",
        minimum=0.0,
    )
    dialer_max_context_age_s: float = setting(
        "RGSYNC_DIALER_MAX_CONTEXT_AGE_S",
        3600.0,
        "a lead whose webhook is older than this when the dialer sees it is not dialed (time "
        "then spent waiting for the window or a line does not count)",
        minimum=1.0,
    )
    dialer_line_hold_s: float = setting(
        "RGSYNC_DIALER_LINE_HOLD_S",
        900.0,
        "a placed call whose outcome never arrives frees its line after this long",
        minimum=1.0,
    )
    # -- what calls write back, inbound calls, reconciliation ------------------------------
    outcome_lead_fields: str = setting(
        "RGSYNC_OUTCOME_LEAD_FIELDS",
        DEFAULT_OUTCOME_LEAD_FIELDS,
        "what the AI agent collected, written onto the lead: comma-separated "
        "`<result>=field:<name>` or `<result>=tag:<text>` (`{value}`: the result; "
        "`criteria:<id>` for an evaluation criterion); empty: nothing",
        shown_default="timeframe, budget, pre-approval, tour and callback times (README)",
    )
    hot_outcomes: str = setting(
        "RGSYNC_HOT_OUTCOMES",
        DEFAULT_HOT_OUTCOMES,
        "call outcomes whose activity notifies the lead's assigned agent (`notify_users`): "
        "any of called, note, opted_out, tour_requested, callback_requested",
    )
    elevenlabs_initiation_secrets: tuple[Secret, ...] = setting(
        "RGSYNC_ELEVENLABS_INITIATION_SECRETS",
        (),
        "comma-separated bearer secrets for the pre-call webhook "
        "(POST /webhooks/elevenlabs/initiation); any one is accepted (rotation), for every "
        "site; must be unset once the sites file gives sites their own "
        "(elevenlabs_initiation_secrets, each accepted for its sites only)",
        shown_default="(unset: 404 unless sites list their own)",
    )
    reconcile_interval_s: float = setting(
        "RGSYNC_RECONCILE_INTERVAL_S",
        300.0,
        "how often each agent's recent conversations are checked for outcomes whose webhook "
        "never arrived (0: never; needs an agent id and API key, a site's or "
        "RGSYNC_ELEVENLABS_AGENT_ID and _API_KEY)",
        minimum=0.0,
    )
    reconcile_lookback_s: float = setting(
        "RGSYNC_RECONCILE_LOOKBACK_S",
        86400.0,
        "how far back each check looks",
        minimum=60.0,
    )
    reconcile_grace_s: float = setting(
        "RGSYNC_RECONCILE_GRACE_S",
        120.0,
        "a conversation that ended less than this long ago is left to its webhook",
        minimum=0.0,
    )
    # -- operations ------------------------------------------------------------------------
    admin_token: Secret | None = setting(
        "RGSYNC_ADMIN_TOKEN",
        None,
        "bearer token for /tables/* and the /ui/ pages (and their login form)",
        shown_default="(unset: inspection disabled)",
    )
    internal_url: str = setting(
        "RGSYNC_INTERNAL_URL",
        "",
        "the URL other workers use to reach this one for inspection (advertised in the "
        "consumer group)",
        shown_default="http://<web host>:<web port>",
        transform=_no_trailing_slash,
    )
    internal_secret: Secret | None = setting(
        "RGSYNC_INTERNAL_SECRET",
        None,
        "signs inspection requests forwarded between workers; the same on every worker",
        shown_default="(derived from RGSYNC_ADMIN_TOKEN)",
    )
    ops_port: int = setting(
        "RGSYNC_OPS_PORT",
        0,
        "serve /metrics and /health on this port (on RGSYNC_OPS_HOST) and not on the webhook "
        "port, for the worker and the standalone ingress alike; 0: on the webhook port",
        minimum=0,
        maximum=65535,
    )
    ops_host: str = setting(
        "RGSYNC_OPS_HOST", "127.0.0.1", "bind address of RGSYNC_OPS_PORT (keep it internal)"
    )
    health_lag_bound_s: float = setting(
        "RGSYNC_HEALTH_LAG_BOUND_S", 300.0, "sync lag above which /health is degraded", minimum=1.0
    )
    health_probe_site: str = setting(
        "RGSYNC_HEALTH_PROBE_SITE", "", "site used for the Real Geeks health call"
    )
    clock_file: Path | None = setting(
        "RGSYNC_CLOCK_FILE",
        None,
        'drills and tests: the dialer and receipt times read "now" (unix seconds) from this '
        "file; signatures keep the real clock",
    )
    log_level: str = setting(
        "RGSYNC_LOG_LEVEL",
        "INFO",
        "DEBUG, INFO, WARNING, ERROR or CRITICAL",
        choices=_LOG_LEVELS,
        transform=_upper,
    )
    log_format: str = setting(
        "RGSYNC_LOG_FORMAT",
        "json",
        "json (one JSON object a line) or text; emails and phones masked either way",
        choices=("json", "text"),
        transform=_lower,
    )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from RGSYNC_* variables, each checked by its declaration.

        Raises:
            ConfigError: a missing required variable, a malformed value, or a combination
                that cannot work, in one line naming the variable.
        """
        env = os.environ if environ is None else environ
        if env.get("RGSYNC_DIALER_FALLBACK_TIMEZONE", "").strip():
            # Removed on purpose: a borrowed zone can put a call at night where the person is.
            raise ConfigError(
                "RGSYNC_DIALER_FALLBACK_TIMEZONE is no longer supported: numbers whose time "
                "zone is unknown are never called automatically; unset it"
            )
        values = {
            f.name: _read(f, env.get(_spec(f).env, "").strip(), env)
            for f in dataclasses.fields(cls)
            if "spec" in f.metadata
        }
        settings = cls(**values)
        _check_together(settings, env)
        return settings

    def topic(self, name: str) -> str:
        """The full name of a topic (a prefix isolates test runs on a shared broker)."""
        return f"{self.topic_prefix}{name}"

    @property
    def bootstrap_servers(self) -> str:
        """The broker list in the host:port,host:port form Kafka clients take."""
        hosts = [h.strip() for h in self.kafka_url.replace(";", ",").split(",") if h.strip()]
        return ",".join(h.split("://", 1)[-1] for h in hosts)


def setting_specs() -> list[tuple[dataclasses.Field[Any], Spec]]:
    """Every declared setting with its declaration, in the class's order."""
    return [(f, _spec(f)) for f in dataclasses.fields(Settings) if "spec" in f.metadata]


def settings_table() -> str:
    """The README's configuration table, generated from the declarations."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for f, spec in setting_specs():
        rows.append(f"| {spec.env} | {_shown(f, spec)} | {spec.help} |")
    return "\n".join(rows) + "\n"


# -- reading ----------------------------------------------------------------------------


def _spec(f: dataclasses.Field[Any]) -> Spec:
    spec = f.metadata["spec"]
    assert isinstance(spec, Spec)
    return spec


def _read(f: dataclasses.Field[Any], raw: str, env: Mapping[str, str]) -> Any:
    """The value of one field from its variable (its default when unset)."""
    spec = _spec(f)
    kind = str(f.type)
    required = spec.required and not (
        spec.required_unless and env.get(spec.required_unless, "").strip()
    )
    if not raw:
        if required:
            raise ConfigError(f"{spec.env} is required ({spec.help})")
        return f.default
    if spec.transform is not None:
        raw = spec.transform(raw)
    reader = _READERS.get(kind)
    if reader is None:  # a declaration this module cannot read: a bug, not a bad value
        raise TypeError(f"no reader for {kind} ({spec.env})")
    value = reader(spec, raw)
    if spec.choices and value not in spec.choices:
        shown = ", ".join(spec.choices) if len(spec.choices) <= 8 else "a known value"
        raise ConfigError(f"{spec.env} must be one of {shown}, got {raw!r}")
    if isinstance(value, int | float) and not isinstance(value, bool):
        if spec.minimum is not None and value < spec.minimum:
            raise ConfigError(f"{spec.env} must be >= {spec.minimum:g}, got {raw}")
        if spec.maximum is not None and value > spec.maximum:
            raise ConfigError(f"{spec.env} must be <= {spec.maximum:g}, got {raw}")
    return value


def _integer(spec: Spec, raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{spec.env} must be an integer, got {raw!r}") from None


def _number(spec: Spec, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{spec.env} must be a number, got {raw!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise ConfigError(f"{spec.env} must be a finite number, got {raw!r}")
    return value


def _flag(spec: Spec, raw: str) -> bool:
    word = raw.lower()
    if word in {"1", "true", "yes", "on"}:
        return True
    if word in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{spec.env} must be true or false, got {raw!r}")


def _path(spec: Spec, raw: str) -> Path:
    path = Path(raw)
    if spec.must_exist and not path.is_file():
        raise ConfigError(f"{spec.env} names no readable file: {raw}")
    return path


def _secrets(spec: Spec, raw: str) -> tuple[Secret, ...]:
    secrets = tuple(Secret(s.strip()) for s in raw.split(",") if s.strip())
    if spec.required and not spec.required_unless and not secrets:
        raise ConfigError(f"{spec.env} is required ({spec.help})")
    return secrets


_READERS: dict[str, Callable[[Spec, str], Any]] = {
    "str": lambda _spec, raw: raw,
    "int": _integer,
    "float": _number,
    "float | None": _number,
    "bool": _flag,
    "Path": _path,
    "Path | None": _path,
    "Secret": lambda _spec, raw: Secret(raw),
    "Secret | None": lambda _spec, raw: Secret(raw),
    "tuple[Secret, ...]": _secrets,
}


def _shown(f: dataclasses.Field[Any], spec: Spec) -> str:
    if spec.shown_default is not None:
        return spec.shown_default
    default = f.default
    if default is None or isinstance(default, Secret) or default in ("", ()):
        return ""
    if isinstance(default, bool):
        return "true" if default else "false"
    if isinstance(default, float) and default.is_integer():
        return str(int(default))
    return str(default)


# -- rules across settings --------------------------------------------------------------


def _check_together(settings: Settings, env: Mapping[str, str]) -> None:
    """What no single declaration can say: combinations that cannot work.

    Raises:
        ConfigError: the first such combination, naming a variable.
    """
    if settings.dialer_enabled and settings.sites_file is None:
        # With a sites file each site that dials is checked for its ids (app/core/sites.py).
        for name, value in (
            ("RGSYNC_ELEVENLABS_API_KEY", settings.elevenlabs_api_key.reveal()),
            ("RGSYNC_ELEVENLABS_AGENT_ID", settings.elevenlabs_agent_id),
            ("RGSYNC_ELEVENLABS_PHONE_NUMBER_ID", settings.elevenlabs_phone_number_id),
        ):
            if not value:
                raise ConfigError(f"{name} is required when RGSYNC_DIALER_ENABLED=true")
    body_limit = max(settings.max_body_bytes, settings.elevenlabs_max_body_bytes)
    if settings.max_pending_body_bytes < body_limit:
        raise ConfigError(
            f"RGSYNC_MAX_PENDING_BODY_BYTES must be >= {body_limit} (the largest body limit), "
            f"got {settings.max_pending_body_bytes}"
        )
    if settings.internal_url and not settings.internal_url.startswith(("http://", "https://")):
        raise ConfigError(
            f"RGSYNC_INTERNAL_URL must start with http:// or https://, got "
            f"{settings.internal_url!r}"
        )
    if 0 < settings.reconcile_interval_s < 1:
        raise ConfigError(
            "RGSYNC_RECONCILE_INTERVAL_S must be 0 (off) or at least 1, got "
            f"{settings.reconcile_interval_s:g}"
        )
    if not settings.bootstrap_servers:
        raise ConfigError(f"RGSYNC_KAFKA_URL names no broker, got {settings.kafka_url!r}")
    _check_kafka_security(settings, env)


def _check_kafka_security(settings: Settings, env: Mapping[str, str]) -> None:
    """A setting the chosen protocol would ignore is an error, so nobody believes TLS or
    SASL is on when it is not.

    Raises:
        ConfigError: a missing credential or file, or a setting the protocol does not use.
    """
    protocol = settings.kafka_security_protocol
    if protocol == "SASL_SSL":
        for name, value in (
            ("RGSYNC_KAFKA_SASL_USERNAME", settings.kafka_sasl_username),
            ("RGSYNC_KAFKA_SASL_PASSWORD", settings.kafka_sasl_password.reveal()),
        ):
            if not value:
                raise ConfigError(
                    f"{name} is required when RGSYNC_KAFKA_SECURITY_PROTOCOL=SASL_SSL"
                )
    else:
        for name in (
            "RGSYNC_KAFKA_SASL_USERNAME",
            "RGSYNC_KAFKA_SASL_PASSWORD",
            "RGSYNC_KAFKA_SASL_MECHANISM",
        ):
            if env.get(name, "").strip():
                raise ConfigError(
                    f"{name} is set but RGSYNC_KAFKA_SECURITY_PROTOCOL={protocol} uses no SASL"
                    " (set it to SASL_SSL)"
                )
    if protocol == "PLAINTEXT":
        for name in (
            "RGSYNC_KAFKA_SSL_CA_FILE",
            "RGSYNC_KAFKA_SSL_CERT_FILE",
            "RGSYNC_KAFKA_SSL_KEY_FILE",
            "RGSYNC_KAFKA_SSL_KEY_PASSWORD",
        ):
            if env.get(name, "").strip():
                raise ConfigError(
                    f"{name} is set but RGSYNC_KAFKA_SECURITY_PROTOCOL=PLAINTEXT uses no TLS"
                    " (set it to SSL or SASL_SSL)"
                )
    cert, key = settings.kafka_ssl_cert_file, settings.kafka_ssl_key_file
    if (cert is None) != (key is None):
        missing = "RGSYNC_KAFKA_SSL_KEY_FILE" if key is None else "RGSYNC_KAFKA_SSL_CERT_FILE"
        raise ConfigError(f"{missing} is required with a client certificate (mTLS)")
