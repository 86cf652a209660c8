"""Kafka security settings and the one place that turns them into each client's configuration."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

from realgeeks_sync.app.core.errors import ConfigError
from realgeeks_sync.app.core.settings import Settings
from realgeeks_sync.app.streaming.kafka_config import (
    KafkaAccessError,
    aiokafka_options,
    describe,
    faust_options,
    librdkafka_config,
    list_topics_or_explain,
    producer_config,
)

TLS = Path()  # set by the tls fixture: a throwaway CA and client certificate


@pytest.fixture(scope="module", autouse=True)
def tls(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA and a client certificate made with openssl, as an operator would have them."""
    global TLS
    TLS = tmp_path_factory.mktemp("tls")

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=TLS, check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=ca",
            "-keyout", "ca.key", "-out", "ca.crt")  # fmt: skip
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=client", "-keyout",
            "client.key", "-out", "client.csr")  # fmt: skip
    openssl("x509", "-req", "-in", "client.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "2", "-out", "client.crt")  # fmt: skip
    return TLS


def settings(**env: str) -> Settings:
    return Settings.from_env({"RGSYNC_REALGEEKS_SECRETS": "s", **env})


def sasl(**env: str) -> Settings:
    return settings(
        RGSYNC_KAFKA_URL="kafka://broker-1:9094;kafka://broker-2:9094",
        RGSYNC_KAFKA_SECURITY_PROTOCOL="SASL_SSL",
        RGSYNC_KAFKA_SASL_USERNAME="svc",
        RGSYNC_KAFKA_SASL_PASSWORD="pw-123",
        RGSYNC_KAFKA_SSL_CA_FILE=str(TLS / "ca.crt"),
        **env,
    )


def mtls() -> Settings:
    return settings(
        RGSYNC_KAFKA_SECURITY_PROTOCOL="ssl",
        RGSYNC_KAFKA_SSL_CA_FILE=str(TLS / "ca.crt"),
        RGSYNC_KAFKA_SSL_CERT_FILE=str(TLS / "client.crt"),
        RGSYNC_KAFKA_SSL_KEY_FILE=str(TLS / "client.key"),
    )


def test_plaintext_is_the_default_and_adds_nothing() -> None:
    s = settings()
    assert s.kafka_security_protocol == "PLAINTEXT"
    assert librdkafka_config(s, log_level=0) == {
        "bootstrap.servers": "127.0.0.1:9092",
        "log_level": 0,
    }
    assert aiokafka_options(s) == {}
    assert faust_options(s) == {"producer_max_request_size": 17 * 1024 * 1024}


def test_sasl_ssl_for_librdkafka() -> None:
    config = librdkafka_config(sasl(RGSYNC_KAFKA_SASL_MECHANISM="plain"))
    assert config == {
        "bootstrap.servers": "broker-1:9094,broker-2:9094",
        "security.protocol": "sasl_ssl",
        "ssl.ca.location": str(TLS / "ca.crt"),
        "sasl.mechanism": "PLAIN",
        "sasl.username": "svc",
        "sasl.password": "pw-123",
    }
    # The producers' shared settings go on top of the same security.
    assert producer_config(sasl(), linger_ms=5) == {
        **librdkafka_config(sasl()),
        "acks": "all",
        "enable.idempotence": True,
        "partitioner": "murmur2_random",
        "message.max.bytes": 17 * 1024 * 1024,  # app/core/sizes.py: 16 x the 1 MiB body + 1 MiB
        "linger_ms": 5,
    }


def test_mtls_for_librdkafka() -> None:
    assert librdkafka_config(mtls()) == {
        "bootstrap.servers": "127.0.0.1:9092",
        "security.protocol": "ssl",
        "ssl.ca.location": str(TLS / "ca.crt"),
        "ssl.certificate.location": str(TLS / "client.crt"),
        "ssl.key.location": str(TLS / "client.key"),
    }
    assert describe(mtls()) == "SSL with a client certificate"


@pytest.mark.parametrize("make", [sasl, mtls])
def test_faust_hands_aiokafka_what_our_own_aiokafka_clients_get(make: Any) -> None:
    s = make()
    ours = aiokafka_options(s)
    faust = credentials_to_aiokafka_auth(faust_options(s)["broker_credentials"])
    assert ours.pop("ssl_context").check_hostname and faust.pop("ssl_context").check_hostname
    assert ours == faust
    assert ours["security_protocol"] == s.kafka_security_protocol


def test_the_password_never_prints() -> None:
    s = sasl()
    assert "pw-123" not in repr(s) and "pw-123" not in describe(s)
    assert describe(s) == "SASL_SSL SCRAM-SHA-512 as 'svc'"


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"RGSYNC_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT"}, "RGSYNC_KAFKA_SECURITY_PROTOCOL"),
        (
            {"RGSYNC_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "RGSYNC_KAFKA_SASL_PASSWORD": "x"},
            "RGSYNC_KAFKA_SASL_USERNAME is required",
        ),
        (
            {"RGSYNC_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "RGSYNC_KAFKA_SASL_USERNAME": "u"},
            "RGSYNC_KAFKA_SASL_PASSWORD is required",
        ),
        (
            {"RGSYNC_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "RGSYNC_KAFKA_SASL_MECHANISM": "GSSAPI"},
            "RGSYNC_KAFKA_SASL_MECHANISM must be one of",
        ),
        ({"RGSYNC_KAFKA_SASL_USERNAME": "u"}, "uses no SASL"),
        ({"RGSYNC_KAFKA_SSL_CA_FILE": "{tls}/ca.crt"}, "uses no TLS"),
        (
            {"RGSYNC_KAFKA_SECURITY_PROTOCOL": "SSL", "RGSYNC_KAFKA_SSL_CA_FILE": "/nope/ca.crt"},
            "RGSYNC_KAFKA_SSL_CA_FILE names no readable file",
        ),
        (
            {
                "RGSYNC_KAFKA_SECURITY_PROTOCOL": "SSL",
                "RGSYNC_KAFKA_SSL_CERT_FILE": "{tls}/client.crt",
            },
            "RGSYNC_KAFKA_SSL_KEY_FILE is required",
        ),
    ],
)
def test_bad_combinations_stop_start_up_with_one_line_naming_the_variable(
    env: dict[str, str], names: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        settings(**{k: v.format(tls=TLS) for k, v in env.items()})
    message = str(refused.value)
    assert names in message and "\n" not in message


class FakeAdmin:
    """An AdminClient whose broker refuses the login: the reason comes by the error callback."""

    def __init__(self, errors: list[KafkaError], error: KafkaError) -> None:
        self.errors, self.error, self.calls = errors, error, 0

    def list_topics(self, timeout: float) -> Any:
        self.calls += 1
        raise KafkaException(KafkaError(KafkaError._TRANSPORT, "Broker transport failure"))

    def poll(self, _timeout: float) -> int:
        self.errors.append(self.error)
        return 1


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (KafkaError(KafkaError._AUTHENTICATION, "SASL authentication error"), "SASL login"),
        (KafkaError(KafkaError._SSL, "certificate verify failed"), "TLS handshake"),
        (
            KafkaError(KafkaError._TRANSPORT, "Receive failed: ssl/tls alert bad certificate"),
            "TLS handshake",
        ),
    ],
)
def test_a_refused_login_or_handshake_fails_at_once_with_the_reason(
    error: KafkaError, kind: str
) -> None:
    errors: list[KafkaError] = []
    admin = FakeAdmin(errors, error)
    with pytest.raises(KafkaAccessError) as refused:
        list_topics_or_explain(sasl(), admin, errors, timeout_s=30)  # type: ignore[arg-type]
    assert admin.calls == 1
    assert f"{kind} failed" in str(refused.value) and "pw-123" not in str(refused.value)


def test_an_unreachable_broker_is_still_a_kafka_exception_after_the_timeout() -> None:
    errors: list[KafkaError] = []
    admin = FakeAdmin(errors, KafkaError(KafkaError._TRANSPORT, "Connection refused"))
    now = [0.0]

    def clock() -> float:
        now[0] += 0.5
        return now[0]

    with pytest.raises(KafkaException):
        list_topics_or_explain(settings(), admin, errors, timeout_s=3, clock=clock)  # type: ignore[arg-type]
    assert admin.calls >= 2
