"""Test helpers shared by integration and end-to-end tests: the broker, workers, topics."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Mapping
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, TopicPartition

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable


def free_port(*, neighbours: tuple[int, ...] = ()) -> int:
    """A TCP port on 127.0.0.1 that is free right now, below the ephemeral range, with
    ``port + n`` free too for each of ``neighbours``; never one this process was given
    before.

    Not one the OS hands out for outgoing connections: a port from that range, free when
    checked, was once taken by a client's source port before a fake bound it, and a client
    retrying a stopped broker's port thousands of times can connect to itself there.
    """
    low = _ephemeral_low()
    while True:
        if low - 1000 > 20000:
            port = random.randrange(20000, low - 1000)
        else:  # no room below the range on this machine: whatever the OS gives
            with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
                s.bind(("127.0.0.1", 0))
                port = int(s.getsockname()[1])
        wanted = [port + n for n in (0, *neighbours)]
        if any(p > 65535 or p in _GIVEN or p in _COMPOSE_PORTS for p in wanted):
            continue
        if all(bindable(p) for p in wanted):
            _GIVEN.update(wanted)
            return port


_GIVEN: set[int] = set()  # handed out in this process: a test often takes several at once
# docker-compose.yml's defaults: a stack started later on the host network takes them.
_COMPOSE_PORTS = frozenset({10001, 13000, 16066, 16067, 19090, 19092, 19093, 29092})


def bindable(port: int) -> bool:
    """Whether a server could bind 127.0.0.1:port now."""
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@functools.lru_cache(maxsize=1)
def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


@dataclass(frozen=True)
class LocalBroker:
    """A broker of a test's own, started and stopped by ops/kafka on two ports that were free.

    ops/kafka puts the controller on the port after the broker's unless told: a free
    ephemeral port's neighbour may be taken (a test once failed to start on that).
    """

    port: int
    controller_port: int

    @classmethod
    def on_free_ports(cls) -> LocalBroker:
        """Two distinct ports that are free right now (free_port: below the ephemeral range)."""
        return cls(free_port(), free_port())  # never the same port twice

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def run(self, command: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        """``ops/kafka <command>`` (start, stop) for this broker."""
        env = {
            **os.environ,
            "RGSYNC_LOCAL_KAFKA_PORT": str(self.port),
            "RGSYNC_LOCAL_KAFKA_CONTROLLER_PORT": str(self.controller_port),
            "RGSYNC_KAFKA_URL": "",
        }
        return subprocess.run(
            [str(ROOT / "ops" / "kafka"), command],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )


def port_open(host: str, port: int) -> bool:
    """Whether something accepts connections at host:port."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def docker_available() -> bool:
    """Whether a Docker engine answers (testcontainers can start containers)."""
    if shutil.which("docker") is None:
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=5).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


# ---------------------------------------------------------------------------------------------
# Containers (testcontainers' generic container on the host network)

# apache/kafka where a registry answers; ops/docker env names the image it built here.
KAFKA_IMAGE = os.environ.get("RGSYNC_KAFKA_IMAGE") or "apache/kafka:4.1.1"
# Every container a test session starts carries this label, so `ops/docker
# containers-cleanup` finds what an interrupted session left (testcontainers' reaper
# container needs a registry and is off here).
TEST_LABEL = {"io.realgeeks-sync.test": "1"}
# name -> a function returning the end of that container's (or stack's) log; conftest adds
# them to the report of every failing test.
CONTAINER_LOGS: dict[str, Callable[[], str]] = {}


def kafka_container_env(port: int, controller_port: int) -> dict[str, str]:
    """KAFKA_* settings of a one-node KRaft broker on 127.0.0.1 (apache/kafka's variables)."""
    return {
        "CLUSTER_ID": "RkgnwWhcRriknO6XBWP_-g",
        "KAFKA_NODE_ID": "1",
        "KAFKA_PROCESS_ROLES": "broker,controller",
        "KAFKA_LISTENERS": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
        "KAFKA_ADVERTISED_LISTENERS": f"PLAINTEXT://127.0.0.1:{port}",
        "KAFKA_CONTROLLER_QUORUM_VOTERS": f"1@127.0.0.1:{controller_port}",
        "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "KAFKA_CONTROLLER_LISTENER_NAMES": "CONTROLLER",
        "KAFKA_INTER_BROKER_LISTENER_NAME": "PLAINTEXT",
        "KAFKA_LOG_DIRS": "/var/lib/kafka/data",
        "KAFKA_NUM_PARTITIONS": "1",
        "KAFKA_AUTO_CREATE_TOPICS_ENABLE": "false",
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "1",
        "KAFKA_OFFSETS_TOPIC_NUM_PARTITIONS": "8",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": "1",
        "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR": "1",
        "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR": "1",
        "KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS": "0",
        # A test session creates a few thousand partitions; 512 MiB ran out (see ops/kafka).
        "KAFKA_HEAP_OPTS": "-Xms512m -Xmx1g",
    }


def broker_answers(bootstrap: str, timeout: float = 2.0) -> bool:
    """Whether a Kafka broker at bootstrap serves metadata (not merely an open port)."""
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
    try:
        return bool(admin.list_topics(timeout=timeout).brokers)
    except Exception:  # noqa: BLE001 - KafkaException while starting: not ready yet
        return False


def container_log_tail(container: Any, lines: int = 60) -> str:
    """The last lines of a docker-py container's stdout and stderr."""
    try:
        raw = container.logs(tail=lines)
    except Exception as exc:  # noqa: BLE001 - the container may be gone already
        return f"(no log: {exc})"
    return bytes(raw).decode(errors="replace")


# Topic prefixes handed out to workers by the running test; conftest deletes their topics
# afterwards so a long suite does not pile thousands of partitions onto one broker.
PREFIXES_IN_USE: list[str] = []


def delete_topics_with_prefixes(
    bootstrap: str, prefixes: list[str], config: Mapping[str, Any] | None = None
) -> int:
    """Delete every topic whose name starts with one of the prefixes; returns how many.

    The internal topics of an app whose id is a prefix without its dot (worker_env's) go
    too: Faust names its changelogs and its assignor's topic ``<app id>-...``.
    ``config``: the client's security settings for a secured broker (SecureKafka.client).
    """
    from confluent_kafka.admin import AdminClient

    if not prefixes:
        return 0
    starts = tuple(s for p in prefixes for s in (p, p.rstrip(".") + "-"))
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0, **(config or {})})
    names = [t for t in admin.list_topics(timeout=10).topics if t.startswith(starts)]
    if names:
        for future in admin.delete_topics(names, operation_timeout=30).values():
            # Best effort: the test has run; a topic left behind only costs broker memory.
            with contextlib.suppress(Exception):
                future.result(30)
    return len(names)


def unique(prefix: str = "t") -> str:
    """A short unique name for topics, groups and sites of one test."""
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def reader(bootstrap: str, purpose: str, config: Mapping[str, Any] | None = None) -> Consumer:
    """A consumer that reads from the oldest record and commits nothing (a group of its own).

    ``purpose`` starts the group's name; ``config``: the client's security settings for a
    secured broker (SecureKafka.client).
    """
    return Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": unique(purpose),
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            **(config or {}),
        }
    )


def drain(
    bootstrap: str,
    topic: str,
    count: int | None = None,
    timeout: float = 20.0,
    *,
    until: Any = None,
    config: Mapping[str, Any] | None = None,
) -> list[Any]:
    """Read a topic from the beginning until ``count`` records (or ``until(msgs)``) or timeout.

    Returns confluent-kafka Message objects (key(), value(), partition(), offset()).
    ``config``: the client's security settings for a secured broker (SecureKafka.client).
    """
    consumer = reader(bootstrap, "drain", config)
    try:
        deadline = time.monotonic() + timeout
        metadata = None
        while time.monotonic() < deadline:
            metadata = consumer.list_topics(topic, timeout=5).topics.get(topic)
            if metadata is not None and metadata.error is None and metadata.partitions:
                break
            time.sleep(0.2)
        if metadata is None or not metadata.partitions:
            return []
        consumer.assign([TopicPartition(topic, p, 0) for p in metadata.partitions])
        messages: list[Any] = []
        while time.monotonic() < deadline:
            if count is not None and len(messages) >= count:
                break
            if until is not None and until(messages):
                break
            msg = consumer.poll(0.2)
            if msg is None or msg.error():
                continue
            messages.append(msg)
        return messages
    finally:
        consumer.close()


def drain_json(
    bootstrap: str, topic: str, count: int | None = None, timeout: float = 20.0, **kw: Any
) -> list[dict[str, Any]]:
    """Like drain, returning decoded JSON values."""
    return [json.loads(m.value()) for m in drain(bootstrap, topic, count, timeout, **kw)]


@dataclass
class Worker:
    """A realgeeks-sync worker running as a subprocess with its own settings."""

    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    port: int = field(default=0)
    command: str = "worker"
    port_variable: str = "RGSYNC_WEB_PORT"
    # The checkout whose code runs (benchmarks run an earlier commit's worker beside this one).
    root: Path = ROOT

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, wait: bool = True, timeout: float = 90.0) -> Worker:
        self.port = int(self.env[self.port_variable])
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child writes to it until it stops
        self.proc = subprocess.Popen(
            [PYTHON, "-m", "realgeeks_sync.app.cli", self.command],
            cwd=self.root,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        if wait:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 90.0) -> None:
        """Wait until the web server answers /health (Faust starts it after recovery)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.command} exited with {self.proc.returncode}:\n{self.tail()}"
                )
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2):
                    return
            except urllib.error.HTTPError:
                return  # answered (503 while degraded is still an answer)
            except OSError:
                time.sleep(0.3)
        raise TimeoutError(f"{self.command} not ready in {timeout}s:\n{self.tail()}")

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def kill(self) -> None:
        """SIGKILL: a crash, no clean shutdown."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM and wait; SIGKILL when it does not stop in time."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass
class IngressProcess(Worker):
    """A ``realgeeks-sync ingress`` subprocess (webhooks only) on RGSYNC_INGRESS_PORT."""

    command: str = "ingress"
    port_variable: str = "RGSYNC_INGRESS_PORT"


def worker_env(bootstrap: str, tmp: Path, **overrides: str) -> dict[str, str]:
    """Settings for an isolated worker: its own topics (prefix), app id, port and data dir."""
    prefix = overrides.pop("prefix", None) or unique("t") + "."
    PREFIXES_IN_USE.append(prefix)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RGSYNC_")}
    env.update(
        {
            "RGSYNC_KAFKA_URL": f"kafka://{bootstrap}",
            "RGSYNC_REALGEEKS_SECRETS": "test-secret",
            "RGSYNC_ELEVENLABS_SECRETS": "el-secret",
            "RGSYNC_TOPIC_PREFIX": prefix,
            "RGSYNC_APP_ID": prefix.rstrip("."),
            "RGSYNC_WEB_PORT": str(free_port()),
            "RGSYNC_INGRESS_PORT": str(free_port()),
            "RGSYNC_WEB_HOST": "127.0.0.1",
            "RGSYNC_DATA_DIR": str(tmp / "data"),
            "RGSYNC_PARTITIONS": "4",
            "RGSYNC_LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(overrides)
    return env


@dataclass(frozen=True)
class SecureKafka:
    """The secured local broker (``ops/kafka start --secure``) and what a client needs for it."""

    sasl_bootstrap: str  # SASL_SSL listener
    mtls_bootstrap: str  # SSL listener that requires a client certificate
    ca_file: Path
    client_cert: Path
    client_key: Path
    scram_user: str
    scram_password: str
    plain_user: str
    plain_password: str

    @classmethod
    def from_files(cls, home: Path, port: int) -> SecureKafka:
        """Read var/kafka-secure's credentials and certificates."""
        creds = dict(
            line.split("=", 1)
            for line in (home / "credentials.env").read_text().splitlines()
            if "=" in line
        )
        tls = home / "tls"
        return cls(
            sasl_bootstrap=f"127.0.0.1:{port}",
            mtls_bootstrap=f"127.0.0.1:{port + 1}",
            ca_file=tls / "ca.crt",
            client_cert=tls / "client.crt",
            client_key=tls / "client.key",
            scram_user=creds["SCRAM_USER"],
            scram_password=creds["SCRAM_PASSWORD"],
            plain_user=creds["PLAIN_USER"],
            plain_password=creds["PLAIN_PASSWORD"],
        )

    def env(self, mechanism: str = "SCRAM-SHA-512", **overrides: str) -> dict[str, str]:
        """RGSYNC_* settings for a worker on the SASL_SSL listener."""
        plain = mechanism == "PLAIN"
        return {
            "RGSYNC_KAFKA_URL": f"kafka://{self.sasl_bootstrap}",
            "RGSYNC_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "RGSYNC_KAFKA_SASL_MECHANISM": mechanism,
            "RGSYNC_KAFKA_SASL_USERNAME": self.plain_user if plain else self.scram_user,
            "RGSYNC_KAFKA_SASL_PASSWORD": self.plain_password if plain else self.scram_password,
            "RGSYNC_KAFKA_SSL_CA_FILE": str(self.ca_file),
            **overrides,
        }

    def mtls_env(self) -> dict[str, str]:
        """RGSYNC_* settings for a client on the mTLS listener."""
        return {
            "RGSYNC_KAFKA_URL": f"kafka://{self.mtls_bootstrap}",
            "RGSYNC_KAFKA_SECURITY_PROTOCOL": "SSL",
            "RGSYNC_KAFKA_SSL_CA_FILE": str(self.ca_file),
            "RGSYNC_KAFKA_SSL_CERT_FILE": str(self.client_cert),
            "RGSYNC_KAFKA_SSL_KEY_FILE": str(self.client_key),
        }

    @property
    def client(self) -> dict[str, Any]:
        """Security settings for the tests' own readers on the SASL_SSL listener.

        Built by app/streaming/kafka_config.py from the same settings a worker gets.
        """
        from realgeeks_sync.app.core.settings import Settings
        from realgeeks_sync.app.streaming.kafka_config import librdkafka_config

        settings = Settings.from_env({"RGSYNC_REALGEEKS_SECRETS": "unused", **self.env()})
        config = librdkafka_config(settings)
        del config["bootstrap.servers"]
        return config
