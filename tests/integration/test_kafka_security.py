"""A Kafka that requires TLS and SASL: every client reaches it, a wrong login stops start-up.

Runs against the secured local broker (``ops/kafka start --secure``: SASL_SSL with
SCRAM-SHA-512, SCRAM-SHA-256 and PLAIN; SSL with a required client certificate), a broker
of its own next to the plaintext one.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import urllib.request
from pathlib import Path

import pytest

from ops.testkit.support import (
    PYTHON,
    ROOT,
    SecureKafka,
    Worker,
    delete_topics_with_prefixes,
    drain,
    unique,
    worker_env,
)
from realgeeks_sync.app.core.settings import Settings
from realgeeks_sync.app.streaming.kafka_config import aiokafka_options, librdkafka_config
from realgeeks_sync.app.streaming.publisher import KafkaPublisher
from realgeeks_sync.app.streaming.topics import ensure_topics
from tests.integration.helpers import outputs, send_realgeeks

pytestmark = pytest.mark.integration


def _settings(env: dict[str, str]) -> Settings:
    return Settings.from_env({"RGSYNC_REALGEEKS_SECRETS": "test-secret", **env})


def _cli(env: dict[str, str], *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, "-m", "realgeeks_sync.app.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_webhook_to_leads_normalized_over_sasl_ssl(
    secure_kafka: SecureKafka, tmp_path: Path
) -> None:
    env = worker_env(secure_kafka.sasl_bootstrap, tmp_path, **secure_kafka.env())
    worker = Worker(env=env, log_path=tmp_path / "worker.log").start()
    try:
        site, lead = unique("site"), unique("lead")
        body = {"site_uuid": site, "id": lead, "email": "tls@example.com", "source": "Web"}
        assert send_realgeeks(worker, body, action="created") == 200
        events = outputs(
            secure_kafka.sasl_bootstrap,
            worker,
            "leads.normalized",
            count=1,
            timeout=60,
            match=lambda e: e["source_lead_id"] == lead,
            config=secure_kafka.client,
        )
        assert events and events[0]["op"] == "created" and events[0]["site_uuid"] == site
        with urllib.request.urlopen(f"{worker.url}/health", timeout=10) as resp:
            health = json.loads(resp.read())
        assert health["checks"]["kafka"]["status"] == "ok"

        # The command-line clients: backfill (a producer) and the dead-letter reader.
        export = tmp_path / "export.csv"
        export.write_text(f"id,email,first_name\n{unique('b')},b@example.com,Bea\n")
        backfill = _cli(env, "backfill", str(export), "--site-uuid", site)
        assert backfill.returncode == 0, backfill.stderr[-2000:]
        assert json.loads(backfill.stderr.strip().splitlines()[-1])["sent"] == 1
        dlq = _cli(env, "dlq", "list")
        assert dlq.returncode == 0, dlq.stderr[-2000:]
        assert dlq.stdout.strip().endswith("dead letter(s)")
    finally:
        worker.stop()


@pytest.mark.parametrize("command", ["worker", "ingress"])
def test_wrong_credentials_stop_start_up_with_one_clear_line(
    secure_kafka: SecureKafka, tmp_path: Path, command: str
) -> None:
    env = worker_env(
        secure_kafka.sasl_bootstrap,
        tmp_path,
        **secure_kafka.env(RGSYNC_KAFKA_SASL_PASSWORD="not-the-password"),
    )
    result = _cli(env, command, timeout=60)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "SASL login failed" in lines[0] and "RGSYNC_KAFKA_SASL_PASSWORD" in lines[0]
    assert "not-the-password" not in result.stderr + result.stdout


@pytest.mark.parametrize("listener", ["SCRAM-SHA-256", "PLAIN", "mTLS"])
def test_every_client_family_connects_with_each_mechanism(
    secure_kafka: SecureKafka, listener: str
) -> None:
    """The librdkafka producer and reader and an aiokafka consumer (Faust's client)."""
    env = secure_kafka.mtls_env() if listener == "mTLS" else secure_kafka.env(listener)
    prefix = unique("t") + "."
    settings = _settings({**env, "RGSYNC_TOPIC_PREFIX": prefix, "RGSYNC_PARTITIONS": "1"})
    ensure_topics(settings)
    topic = settings.topic("realgeeks.webhooks.raw")
    try:
        publisher = KafkaPublisher.for_settings(settings)
        try:
            asyncio.run(publisher.publish(topic, "k", b'{"tls":true}'))
        finally:
            publisher.close(timeout_s=5)
        config = librdkafka_config(settings)
        bootstrap = config.pop("bootstrap.servers")
        assert [m.value() for m in drain(bootstrap, topic, count=1, config=config)] == [
            b'{"tls":true}'
        ]
        assert asyncio.run(_read_with_aiokafka(settings, topic)) == b'{"tls":true}'
    finally:
        config = librdkafka_config(settings)
        delete_topics_with_prefixes(config.pop("bootstrap.servers"), [prefix], config)


async def _read_with_aiokafka(settings: Settings, topic: str) -> bytes | None:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.bootstrap_servers,
        auto_offset_reset="earliest",
        group_id=unique("aio"),
        **aiokafka_options(settings),
    )
    await consumer.start()
    try:
        message = await asyncio.wait_for(consumer.getone(), timeout=20)
        return message.value
    finally:
        await consumer.stop()
