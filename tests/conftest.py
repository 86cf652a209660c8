"""Session fixtures: a real Kafka broker, isolated workers, the shared Real Geeks fixture.

Broker, in order: RGSYNC_TEST_KAFKA_URL (an existing broker); a Kafka container
(tests/kafka_container.py) when a Docker engine answers or RGSYNC_TEST_CONTAINERS=1
(`ops/test --containers`); else the project's own local broker (ops/kafka start). Under
ops/test (RGSYNC_REQUIRE_KAFKA=1) a broker that cannot be had fails the run instead of
skipping the integration tests. A failing test's report ends with the logs of the
containers the session runs. Every record a test's workers wrote to a topic of the catalogue is
validated against docs/schemas before its topics are deleted.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ops.testkit.contracts import check_and_delete
from ops.testkit.support import (
    CONTAINER_LOGS,
    PREFIXES_IN_USE,
    ROOT,
    SecureKafka,
    Worker,
    docker_available,
    port_open,
    worker_env,
)

# A copy of ../shared/fixtures/realgeeks, so a clone runs every test on its own.
REALGEEKS_FIXTURES = ROOT / "tests" / "fixtures" / "realgeeks"


def _external_broker() -> str | None:
    url = os.environ.get("RGSYNC_TEST_KAFKA_URL", "").strip()
    if not url:
        return None
    first = url.split(",")[0].split("://", 1)[-1]
    host, _, port = first.partition(":")
    if not port_open(host, int(port or 9092)):
        pytest.fail(f"RGSYNC_TEST_KAFKA_URL={url} does not answer")
    return first


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """host:port of a real Kafka broker for the whole session."""
    external = _external_broker()
    if external:
        yield external
        return
    want_containers = os.environ.get("RGSYNC_TEST_CONTAINERS") == "1"
    if want_containers or docker_available():
        if want_containers and not docker_available():
            pytest.fail("RGSYNC_TEST_CONTAINERS=1 but no Docker engine answers (ops/docker start)")
        from tests.kafka_container import kafka_in_container

        with kafka_in_container() as bootstrap:
            yield bootstrap
        return
    result = subprocess.run(
        [str(ROOT / "ops" / "kafka"), "start"],
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if k != "RGSYNC_KAFKA_URL"},
    )
    if result.returncode != 0:
        message = f"no Kafka broker: ops/kafka start failed:\n{result.stderr[-2000:]}"
        if os.environ.get("RGSYNC_REQUIRE_KAFKA") == "1":
            pytest.fail(message)
        pytest.skip(message)
    yield "127.0.0.1:9092"


@pytest.fixture(scope="session")
def secure_kafka() -> SecureKafka:
    """The secured local broker (SASL_SSL and mTLS listeners), started if needed.

    A separate broker on other ports (``ops/kafka start --secure``); the plaintext one is
    left alone. Under ops/test a broker that cannot be started fails the run.
    """
    base = int(os.environ.get("RGSYNC_SECURE_KAFKA_PORT", "19094"))
    # Another checkout's secured broker may hold the ports (its users are not ours): move on.
    for port in (base, base + 10, base + 20):
        result = subprocess.run(
            [str(ROOT / "ops" / "kafka"), "start", "--secure"],
            capture_output=True,
            text=True,
            env={**os.environ, "RGSYNC_SECURE_KAFKA_PORT": str(port)},
        )
        if result.returncode == 0 or "is taken" not in result.stderr:
            break
    if result.returncode != 0:
        message = f"no secured Kafka: ops/kafka start --secure failed:\n{result.stderr[-2000:]}"
        if os.environ.get("RGSYNC_REQUIRE_KAFKA") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return SecureKafka.from_files(ROOT / "var" / "kafka-secure", port)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Add the end of every running container's log to a failing test's report."""
    report = yield
    if report.failed and CONTAINER_LOGS:
        for name, tail in list(CONTAINER_LOGS.items()):
            report.sections.append((f"container log: {name}", tail()))
    return report


@pytest.fixture(autouse=True)
def _delete_test_topics(request: pytest.FixtureRequest) -> Iterator[None]:
    """After a test that used the broker, check every event its workers wrote against
    docs/schemas (ops/testkit/contracts.py), then delete the topics they created."""
    PREFIXES_IN_USE.clear()
    yield
    prefixes = list(PREFIXES_IN_USE)
    PREFIXES_IN_USE.clear()
    if not prefixes:
        return
    brokers: list[tuple[str, dict[str, Any] | None]] = []
    if "kafka_bootstrap" in request.fixturenames:
        brokers.append((request.getfixturevalue("kafka_bootstrap"), None))
    if "secure_kafka" in request.fixturenames:
        secure = request.getfixturevalue("secure_kafka")
        brokers.append((secure.sasl_bootstrap, secure.client))
    check_and_delete(prefixes, brokers)


@pytest.fixture
def start_worker(kafka_bootstrap: str, tmp_path: Path) -> Iterator[Callable[..., Worker]]:
    """Start isolated worker subprocesses; every one is stopped after the test."""
    workers: list[Worker] = []

    def start(env: dict[str, str] | None = None, wait: bool = True, **overrides: str) -> Worker:
        n = len(workers)
        if env is None:
            env = worker_env(kafka_bootstrap, tmp_path, **overrides)
        else:
            env = {**env, **overrides}
        if n and "RGSYNC_DATA_DIR" not in overrides:
            # Two workers never share a RocksDB folder (it is locked by its owner).
            env = {**env, "RGSYNC_DATA_DIR": str(tmp_path / f"data{n}")}
        worker = Worker(env=env, log_path=tmp_path / f"worker{n}.log")
        workers.append(worker)
        return worker.start(wait=wait)

    yield start
    for w in workers:
        w.stop()


@pytest.fixture(scope="session")
def realgeeks_fixture() -> dict[str, Any]:
    """Real Geeks' own signed webhook (body bytes, secret, signature), kept in tests/fixtures."""
    body_path = REALGEEKS_FIXTURES / "new_lead.json"
    return {
        "body": body_path.read_bytes(),
        "signature": (REALGEEKS_FIXTURES / "new_lead.signature").read_text().strip(),
        "secret": "seekrit",
    }
