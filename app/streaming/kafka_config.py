"""Every Kafka client's configuration, built in one place from the settings.

Three client families connect to Kafka: librdkafka (confluent-kafka: the ingress
producer, topic administration, the health probe, backfill, dead-letter replay, the
tests' readers), aiokafka (inside Faust: agents, tables, changelogs) and Faust's own
settings that hand credentials to aiokafka. Each gets its security settings here, so a
cluster that requires TLS or SASL (Confluent Cloud, MSK, Aiven, a hardened self-hosted
one) is reached by all of them or by none.

Also here: ``list_topics_or_explain``, the first request a process makes, which turns a
refused login or TLS handshake into one clear line instead of a 30-second wait.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, ClusterMetadata

from realgeeks_sync.app.core.errors import ConfigError
from realgeeks_sync.app.core.settings import Settings
from realgeeks_sync.app.core.sizes import max_message_bytes

__all__ = [
    "KafkaAccessError",
    "admin_client",
    "aiokafka_options",
    "describe",
    "faust_options",
    "librdkafka_config",
    "list_topics_or_explain",
    "producer_config",
    "ssl_context",
]

# librdkafka's codes for a refused login and a failed TLS handshake: retrying cannot help.
_ACCESS_ERRORS = {KafkaError._AUTHENTICATION: "SASL login", KafkaError._SSL: "TLS handshake"}


def _refusal(error: KafkaError) -> str | None:
    """What the broker refused, if this error says so (None for anything retriable)."""
    if error.code() in _ACCESS_ERRORS:
        return _ACCESS_ERRORS[error.code()]
    # A broker that requires a client certificate (mTLS) and got none answers with a TLS
    # alert, which librdkafka reports as a transport failure.
    if error.code() == KafkaError._TRANSPORT and "ssl/tls alert" in error.str().lower():
        return "TLS handshake"
    return None


class KafkaAccessError(ConfigError):
    """The broker refused our credentials or our TLS handshake."""


def describe(settings: Settings) -> str:
    """How we connect, for messages: protocol, mechanism and user (never the password)."""
    if settings.kafka_security_protocol == "SASL_SSL":
        return f"SASL_SSL {settings.kafka_sasl_mechanism} as {settings.kafka_sasl_username!r}"
    if settings.kafka_security_protocol == "SSL":
        return "SSL with a client certificate" if settings.kafka_ssl_cert_file else "SSL"
    return "PLAINTEXT"


def librdkafka_config(settings: Settings, **extra: Any) -> dict[str, Any]:
    """Configuration for a confluent-kafka Producer, Consumer or AdminClient.

    ``extra`` holds the client's own settings (acks, group.id, log_level, ...).
    """
    config: dict[str, Any] = {"bootstrap.servers": settings.bootstrap_servers}
    protocol = settings.kafka_security_protocol
    if protocol != "PLAINTEXT":
        config["security.protocol"] = protocol.lower()
        # librdkafka checks the broker's name against its certificate by default (https).
        if settings.kafka_ssl_ca_file is not None:
            config["ssl.ca.location"] = str(settings.kafka_ssl_ca_file)
        if settings.kafka_ssl_cert_file is not None:
            config["ssl.certificate.location"] = str(settings.kafka_ssl_cert_file)
            config["ssl.key.location"] = str(settings.kafka_ssl_key_file)
            if settings.kafka_ssl_key_password:
                config["ssl.key.password"] = settings.kafka_ssl_key_password.reveal()
    if protocol == "SASL_SSL":
        config["sasl.mechanism"] = settings.kafka_sasl_mechanism
        config["sasl.username"] = settings.kafka_sasl_username
        config["sasl.password"] = settings.kafka_sasl_password.reveal()
    config.update(extra)
    return config


def producer_config(settings: Settings, **extra: Any) -> dict[str, Any]:
    """A librdkafka producer that writes like the ingress: acks=all, idempotent, keyed alike.

    murmur2_random is Java's and aiokafka's partitioner, so a site's records land on the
    partition Faust's agents and tables expect.
    """
    return librdkafka_config(
        settings,
        **{
            "acks": "all",
            "enable.idempotence": True,
            "partitioner": "murmur2_random",
            "message.max.bytes": max_message_bytes(settings.max_body_bytes),
            **extra,
        },
    )


def ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """The TLS context for aiokafka (hostname checked), or None for PLAINTEXT."""
    if settings.kafka_security_protocol == "PLAINTEXT":
        return None
    ca = settings.kafka_ssl_ca_file
    context = ssl.create_default_context(cafile=str(ca) if ca is not None else None)
    if settings.kafka_ssl_cert_file is not None:
        context.load_cert_chain(
            str(settings.kafka_ssl_cert_file),
            str(settings.kafka_ssl_key_file),
            password=settings.kafka_ssl_key_password.reveal() or None,
        )
    return context


def aiokafka_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for an aiokafka producer or consumer (empty for PLAINTEXT)."""
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return {}
    options: dict[str, Any] = {"security_protocol": protocol, "ssl_context": ssl_context(settings)}
    if protocol == "SASL_SSL":
        options.update(
            sasl_mechanism=settings.kafka_sasl_mechanism,
            sasl_plain_username=settings.kafka_sasl_username,
            sasl_plain_password=settings.kafka_sasl_password.reveal(),
        )
    return options


def faust_options(settings: Settings) -> dict[str, Any]:
    """Settings for ``faust.App``: the largest record its producer may send (app/core/sizes.py)
    and the credentials Faust hands to every aiokafka client."""
    import faust

    options: dict[str, Any] = {
        "producer_max_request_size": max_message_bytes(settings.max_body_bytes)
    }
    protocol = settings.kafka_security_protocol
    context = ssl_context(settings)
    if protocol == "SSL":
        options["broker_credentials"] = faust.SSLCredentials(context)
    elif protocol == "SASL_SSL":
        options["broker_credentials"] = faust.SASLCredentials(
            username=settings.kafka_sasl_username,
            password=settings.kafka_sasl_password.reveal(),
            ssl_context=context,
            mechanism=settings.kafka_sasl_mechanism,
        )
    return options


def admin_client(settings: Settings) -> tuple[AdminClient, list[KafkaError]]:
    """A quiet AdminClient and the list its error callback fills (see list_topics_or_explain)."""
    errors: list[KafkaError] = []
    # log_level 0: an unreachable broker is reported once by the caller, not by librdkafka
    # once per connection attempt.
    admin = AdminClient(librdkafka_config(settings, log_level=0, error_cb=errors.append))
    return admin, errors


def list_topics_or_explain(
    settings: Settings,
    admin: AdminClient,
    errors: list[KafkaError],
    timeout_s: float,
    *,
    clock: Callable[[], float] = time.monotonic,
) -> ClusterMetadata:
    """A metadata request that fails at once, with one clear line, on refused access.

    librdkafka keeps retrying a refused login or handshake until the request's timeout and
    then reports only a transport failure; the error callback sees the reason first.

    Raises:
        KafkaAccessError: the broker refused the credentials or the TLS handshake.
        KafkaException: the broker did not answer within the timeout.
    """
    deadline = clock() + timeout_s
    while True:
        remaining = deadline - clock()
        try:
            return admin.list_topics(timeout=max(0.1, min(1.0, remaining)))
        except KafkaException:
            admin.poll(0)  # serves the error callback
            refused = next((e for e in errors if _refusal(e)), None)
            if refused is not None:
                kind = _refusal(refused) or ""
                reason = " ".join(refused.str().split())  # one line, whatever librdkafka says
                raise KafkaAccessError(
                    f"Kafka at {settings.bootstrap_servers} ({describe(settings)}): "
                    f"{kind} failed: {reason}{_hint(kind)}"
                ) from None
            if remaining <= 1.0:
                raise


def _hint(kind: str) -> str:
    if kind == "SASL login":
        return (
            "; check RGSYNC_KAFKA_SASL_USERNAME, RGSYNC_KAFKA_SASL_PASSWORD and "
            "RGSYNC_KAFKA_SASL_MECHANISM"
        )
    return "; check RGSYNC_KAFKA_SSL_CA_FILE (and the client certificate for mTLS)"
