"""Ingest benchmark: signed Real Geeks webhooks acknowledged by Kafka vs a bare aiohttp 200.

    .venv/bin/python ops/bench_ingest.py [--duration 10] [--rate 500] [--connections 32]
        [--rounds 2] [--targets bare,ingress,ingress-aiokafka,worker]

Each target is a server in its own process; the load generator (ops/loadgen.py, aiohttp
client, keep-alive) runs in other processes, the same for every target. Targets:

* ``bare``: aiohttp handler that reads the body and returns 200 (the ceiling);
* ``bare-publish``: the bare handler plus what the spec asks before a 200: the body
  published with the service's ``KafkaPublisher`` (acks=all) and the acknowledgement
  awaited; no signature, no envelope. The ceiling of any conforming ingress on this broker;
* ``ingress``: ``standalone_app(Ingress(...))`` with the service's ``KafkaPublisher``
  (confluent-kafka, acks=all), real signature checks, real broker acks;
* ``ingress-aiokafka``: the same ingress on an ``AIOKafkaProducer`` (Faust's client);
* ``ingress-sasl-ssl``: ``ingress`` again, to the secured local broker (``ops/kafka start
  --secure``: TLS and SASL SCRAM-SHA-512) instead of the plaintext one, in the same run;
* ``worker``: the full Faust worker (``realgeeks_sync.app.cli worker``), agents included; a
  fresh one per round, stopped after its turn so its agents' backlog loads nobody else.

Per target and round: an open-loop phase at ``--rate`` req/s (timetable fixed in advance,
latency from the scheduled send time), then a closed-loop max-throughput phase with
``--connections`` connections: wrk (``--load wrk``, the default: C, two threads, one signed
body, 1 s warm-up; Debian's package, installed when missing), which the servers saturate
before it does, or ops/loadgen.py (``--load loadgen``: ``--generators`` Python processes,
2 s warm-up), which saturated before the bare handler did (bare 8,700 req/s against
20,300 with wrk on the same machine).
Targets alternate within a round and the order reverses every other round, so machine
noise hits all of them; ratios compare targets of the same round. CPU of the server, the
generators, the broker and everything else on the machine is recorded per phase: on a
small shared machine "server CPU per request" is steadier than req/s. Afterwards every
200 is checked against the records on the target's raw topic.

Everything goes to 127.0.0.1 under a unique topic prefix (topics and groups deleted at
the end unless ``--keep-topics``). Defaults take about 3.5 minutes (16 measured windows of
10 s); ``--duration 7`` stays under 3. The last line is ``RESULT {json}``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "ops")]

from loadgen import WebhookFactory, percentile_ms  # noqa: E402

PYTHON = sys.executable
LOADGEN = ROOT / "ops" / "loadgen.py"
BROKER = "127.0.0.1:9092"
ALL_TARGETS = ("bare", "bare-publish", "ingress", "ingress-aiokafka", "ingress-sasl-ssl", "worker")
SECURE_ENV = ROOT / "var" / "kafka-secure" / "worker.env"
WEBHOOK_PATH = "/webhooks/realgeeks"
RAW_TOPIC = "realgeeks.webhooks.raw"

__all__ = ["main"]


# --------------------------------------------------------------------------- servers


def _service_env(
    prefix: str, port: int, secret: str, log_level: str, *, secure: bool = False
) -> dict[str, str]:
    """RGSYNC_* settings for a benchmarked service: own topics, no client rate limit.

    ``secure``: the secured local broker's settings (TLS + SASL) instead of the plaintext one.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("RGSYNC_")}
    env.update(
        {
            "RGSYNC_REALGEEKS_SECRETS": secret,
            "RGSYNC_KAFKA_URL": f"kafka://{BROKER}",
            "RGSYNC_WEB_HOST": "127.0.0.1",
            "RGSYNC_WEB_PORT": str(port),
            "RGSYNC_TOPIC_PREFIX": prefix,
            "RGSYNC_APP_ID": prefix.rstrip("."),
            "RGSYNC_CLIENT_RATE_PER_S": "1e9",
            "RGSYNC_CLIENT_BURST": str(10**9),  # an integer setting: "1e9" would not parse
            "RGSYNC_LOG_LEVEL": log_level,
            # Nothing leaves the machine, even if an agent tried to call an API.
            "RGSYNC_REALGEEKS_API_URL": "http://127.0.0.1:9",
            "RGSYNC_ELEVENLABS_API_URL": "http://127.0.0.1:9",
            "PYTHONUNBUFFERED": "1",
        }
    )
    if secure:
        env.update(
            line.split("=", 1) for line in SECURE_ENV.read_text().splitlines() if "=" in line
        )
    return env


def _kafka_config(env: dict[str, str], **extra: Any) -> dict[str, Any]:
    """librdkafka settings for the broker a service's env names (app/streaming/kafka_config.py)."""
    from realgeeks_sync.app.core.settings import Settings
    from realgeeks_sync.app.streaming.kafka_config import librdkafka_config

    settings = Settings.from_env({**env, "RGSYNC_REALGEEKS_SECRETS": "x"})
    return librdkafka_config(settings, log_level=3, **extra)


class AIOKafkaPublisher:
    """The ingress ``Publisher`` on aiokafka (Faust's client): send_and_wait with acks=all."""

    def __init__(self, bootstrap_servers: str, timeout_s: float = 5.0) -> None:
        from aiokafka import AIOKafkaProducer

        self.timeout_s = timeout_s
        self._producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap_servers,
            client_id="realgeeks-sync-ingress-aiokafka",
            acks="all",
            enable_idempotence=True,
            linger_ms=2,
        )

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        await self._producer.stop()

    async def publish(self, topic: str, key: str, value: bytes) -> None:
        """Write one record and wait for acks=all.

        Raises:
            PublishError: not acknowledged within the bound, or a Kafka error.
        """
        from aiokafka.errors import KafkaError

        from realgeeks_sync.app.core.errors import PublishError

        try:
            await asyncio.wait_for(
                self._producer.send_and_wait(topic, value=value, key=key.encode("utf-8")),
                timeout=self.timeout_s,
            )
        except TimeoutError as exc:
            raise PublishError(f"no acknowledgement from Kafka within {self.timeout_s:g}s") from exc
        except KafkaError as exc:
            raise PublishError(f"Kafka refused the record: {exc}") from exc


async def _serve(target: str, port: int) -> None:
    """Run one benchmark server until SIGTERM (``--serve``); settings come from RGSYNC_*."""
    from aiohttp import web

    from realgeeks_sync.app.core.logs import configure_logging
    from realgeeks_sync.app.core.settings import Settings

    settings = Settings.from_env()
    configure_logging(settings.log_level, settings.log_format)  # as the worker does
    cleanup: list[Any] = []
    if target == "bare":

        async def bare(request: web.Request) -> web.Response:
            await request.read()
            return web.Response()

        app = web.Application()
        app.router.add_post(WEBHOOK_PATH, bare)
    else:
        publisher: Any
        if target == "ingress-aiokafka":
            publisher = AIOKafkaPublisher(settings.bootstrap_servers, settings.publish_timeout_s)
            await publisher.start()
            cleanup.append(publisher.stop)
        else:
            from realgeeks_sync.app.streaming.publisher import KafkaPublisher

            # As the service builds it: TLS and SASL from the settings when they are set.
            publisher = KafkaPublisher.for_settings(settings)
            cleanup.append(lambda: asyncio.to_thread(publisher.close))
        if target == "bare-publish":
            topic = settings.topic_prefix + RAW_TOPIC

            async def bare_publish(request: web.Request) -> web.Response:
                body = await request.read()
                await publisher.publish(topic, "bench", body)
                return web.Response()

            app = web.Application()
            app.router.add_post(WEBHOOK_PATH, bare_publish)
        else:
            from realgeeks_sync.app.core.metrics import Metrics
            from realgeeks_sync.app.ingress.handlers import Ingress, standalone_app

            app = standalone_app(Ingress(settings, publisher, Metrics()))
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print("ready", flush=True)
    await stop.wait()
    await runner.cleanup()
    for fn in cleanup:
        await fn()


# --------------------------------------------------------------------------- orchestration


def _free_port() -> int:
    with contextlib.closing(socket.socket()) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _broker_pid() -> int | None:
    """The local broker's pid (ops/kafka's pid file), for CPU figures only."""
    try:
        pid = int((ROOT / "var" / "kafka" / "kafka-9092.pid").read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if Path(f"/proc/{pid}").exists() else None


@dataclass
class Server:
    """One benchmark target running as a subprocess (its own session, so its own group)."""

    target: str
    prefix: str
    port: int
    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    acked: int = 0  # 200s it answered, warm-ups and probes included

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{WEBHOOK_PATH}"

    @property
    def raw_topic(self) -> str | None:
        return None if self.target == "bare" else self.prefix + RAW_TOPIC

    def start(self) -> None:
        if self.target == "worker":
            cmd = [PYTHON, "-m", "realgeeks_sync.app.cli", "worker"]
        else:
            cmd = [
                PYTHON,
                str(Path(__file__).resolve()),
                "--serve",
                self.target,
                "--port",
                str(self.port),
            ]
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child writes to it until it stops
        self.proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, secret: str, timeout_s: float = 90.0) -> None:
        """Until one signed webhook gets a 200 (worker: after /health answers).

        Raises:
            RuntimeError: the server exited or never accepted a webhook in time.
        """
        factory = WebhookFactory(secret, seed="probe")
        deadline = time.monotonic() + timeout_s
        last = ""
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                raise RuntimeError(f"{self.target} exited:\n{self.tail()}")
            body, headers = factory.next()
            req = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(req, timeout=10) as resp:
                    if resp.status == 200:
                        self.acked += 1
                        return
            except urllib.error.HTTPError as exc:
                last = f"HTTP {exc.code}: {exc.read()[:200]!r}"
            except OSError as exc:
                last = str(exc)
            time.sleep(0.3)
        raise RuntimeError(f"{self.target} not ready in {timeout_s:g}s ({last}):\n{self.tail()}")

    def health(self) -> dict[str, Any]:
        """Worker only: its /health report ({} when it does not answer)."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=5) as r:
                report: dict[str, Any] = json.load(r)
        except urllib.error.HTTPError as exc:
            report = json.loads(exc.read())
        except (OSError, ValueError):
            return {}
        return report

    def wait_healthy(self, timeout_s: float = 30.0) -> float:
        """Worker only: until /health says healthy (partitions assigned, tables recovered)."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout_s and self.health().get("status") != "healthy":
            time.sleep(0.5)
        return time.monotonic() - t0

    def consumer_lag(self) -> int | None:
        """Worker only: messages its agents have not consumed yet (from /health)."""
        lags = self.health().get("checks", {}).get("consumer_lag_messages")
        if not isinstance(lags, dict):
            return None
        return sum(v for v in lags.values() if isinstance(v, int))

    def tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout_s: float = 30.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


def _create_raw_topic(env: dict[str, str]) -> None:
    """The raw topic a standalone ingress writes to, as the worker would create it."""
    from confluent_kafka.admin import AdminClient, NewTopic

    from realgeeks_sync.app.core.settings import Settings
    from realgeeks_sync.app.streaming.topics import topic_specs

    settings = Settings.from_env({**env, "RGSYNC_REALGEEKS_SECRETS": "x"})
    spec = next(s for s in topic_specs(settings) if s.name == RAW_TOPIC)
    admin = AdminClient(_kafka_config(env))
    new = NewTopic(
        settings.topic(spec.name),
        spec.partitions,
        settings.replication_factor,
        config=dict(spec.config),
    )
    for future in admin.create_topics([new], operation_timeout=30).values():
        future.result(timeout=30)


def _records_in(topic: str, env: dict[str, str]) -> int | None:
    """How many records a topic holds (sum of high - low watermarks)."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer(_kafka_config(env, **{"group.id": f"rgbench-probe-{uuid.uuid4()}"}))
    try:
        meta = consumer.list_topics(topic, timeout=10).topics.get(topic)
        if meta is None or meta.error is not None:
            return None
        total = 0
        for p in meta.partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            total += high - low
        return total
    finally:
        consumer.close()


def _delete_run_topics(token: str, env: dict[str, str]) -> int:
    """Delete this run's topics and consumer groups (names start with the run token)."""
    from confluent_kafka.admin import AdminClient

    admin = AdminClient(_kafka_config(env))
    mine = [t for t in admin.list_topics(timeout=10).topics if t.startswith(token)]
    if mine:
        for future in admin.delete_topics(mine, operation_timeout=30).values():
            with contextlib.suppress(Exception):
                future.result(timeout=30)
    with contextlib.suppress(Exception):
        groups = admin.list_consumer_groups().result(timeout=10).valid
        ours = [g.group_id for g in groups if g.group_id.startswith(token)]
        if ours:
            for future in admin.delete_consumer_groups(ours).values():
                with contextlib.suppress(Exception):
                    future.result(timeout=10)
    return len(mine)


def _loadgen(
    server: Server, secret: str, phase: str, args: argparse.Namespace, broker_pid: int | None
) -> dict[str, Any]:
    """One phase from ``args.generators`` synchronized loadgen processes (open loop: one)."""
    assert server.proc is not None
    procs = args.generators if phase == "closed" else 1
    cmd = [
        PYTHON,
        str(LOADGEN),
        "--url",
        server.url,
        "--secret",
        secret,
        "--phase",
        phase,
        "--connections",
        str(max(1, args.connections // procs)),
        "--duration",
        str(args.duration),
        "--rate",
        str(args.rate),
        "--warmup",
        str(_warmup(server, phase, args)),
        "--wait-go",
        "--cpu-pid",
        f"server={server.proc.pid}",
        *(["--cpu-pid", f"broker={broker_pid}"] if broker_pid else []),
        *(["--dump-latencies"] if procs > 1 else []),
    ]
    running = [
        subprocess.Popen(
            cmd,
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(procs)
    ]
    for proc in running:  # all imported and connected to nothing yet: start them together
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != "ready":
            raise RuntimeError(f"loadgen did not start: {proc.communicate()[1][-2000:]}")
    for proc in running:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    parts = []
    for proc in running:
        out, err = proc.communicate(timeout=args.duration * 3 + args.warmup + 60)
        if proc.returncode != 0:
            raise RuntimeError(f"loadgen failed: {err[-2000:]}")
        parts.append(json.loads(out.strip().splitlines()[-1]))
    result = parts[0] if procs == 1 else _merge(parts)
    cpu = result["cpu_pct"]
    if "machine" in cpu:  # busy CPU not ours: other tenants of this shared machine
        ours = sum(cpu.get(k, 0.0) for k in ("loadgen", "server", "broker"))
        cpu["others"] = round(max(0.0, cpu["machine"] - ours), 1)
    # CPU the server spent per answered request (all its threads): steadier than req/s
    # when other tenants take cores away.
    if result["rps"] and "server" in cpu:
        result["server_cpu_us_per_req"] = round(cpu["server"] / 100 / result["rps"] * 1e6, 1)
    # The same for the event-loop thread alone (librdkafka's threads excluded): one core
    # can serve at most 1e6 / this many requests per second.
    if result["rps"] and "server_main_thread" in cpu:
        result["loop_cpu_us_per_req"] = round(
            cpu["server_main_thread"] / 100 / result["rps"] * 1e6, 1
        )
    server.acked += result["all_ok"]
    return result


_WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = {body}
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-Lead-Router-Action"] = "created"
wrk.headers["X-Lead-Router-Message-Id"] = "wrk-bench"
wrk.headers["X-Lead-Router-Signature"] = "{signature}"
"""


def ensure_wrk() -> str:
    """The path of wrk.

    Raises:
        RuntimeError: wrk is not installed; ``ops/wrk install`` installs it (ops/bench runs it).
    """
    found = shutil.which("wrk")
    if not found:
        raise RuntimeError("wrk is not installed: run ops/wrk install (Debian's package, as root)")
    return found


def _wrk(
    server: Server, secret: str, args: argparse.Namespace, broker_pid: int | None
) -> dict[str, Any]:
    """Max throughput with wrk (C, two threads, keep-alive): one signed body, every request.

    The same body and message id each time (the ingress publishes every one; downstream
    the agents would drop repeats by message id): what is measured is the ingress path.
    """
    from loadgen import _cpu_seconds, _machine_busy_seconds

    assert server.proc is not None
    body, headers = WebhookFactory(secret, seed="wrk").next()
    script = Path(tempfile.mkdtemp(prefix="wrk-")) / "post.lua"
    script.write_text(
        _WRK_SCRIPT.format(
            body=json.dumps(body.decode()), signature=headers["X-Lead-Router-Signature"]
        )
    )
    cmd = [ensure_wrk(), "-t2", f"-c{args.connections}", "--latency", "-s", str(script)]
    # Warm-up (connections, caches), not measured.
    warm = subprocess.run([*cmd, "-d1s", server.url], capture_output=True, text=True, check=False)
    warm_ok = (_wrk_number(r"(\d+) requests in", warm.stdout) or 0) - (
        _wrk_number(r"Non-2xx or 3xx responses: (\d+)", warm.stdout) or 0
    )
    pids = {"server": server.proc.pid, **({"broker": broker_pid} if broker_pid else {})}
    cpu0 = {name: _cpu_seconds(pid) for name, pid in pids.items()}
    loop0 = _cpu_seconds(server.proc.pid, True)
    busy0, t0 = _machine_busy_seconds(), time.monotonic()
    run = subprocess.run(
        [*cmd, f"-d{args.duration:g}s", server.url], capture_output=True, text=True, check=False
    )
    elapsed = time.monotonic() - t0
    cpu: dict[str, float] = {}
    for name, pid in pids.items():
        end, begin = _cpu_seconds(pid), cpu0[name]
        if end is not None and begin is not None:
            cpu[name] = round(100 * (end - begin) / elapsed, 1)
    loop1, busy1 = _cpu_seconds(server.proc.pid, True), _machine_busy_seconds()
    if loop0 is not None and loop1 is not None:
        cpu["server_main_thread"] = round(100 * (loop1 - loop0) / elapsed, 1)
    if busy0 is not None and busy1 is not None:
        cpu["machine"] = round(100 * (busy1 - busy0) / elapsed, 1)
    out = run.stdout
    requests = _wrk_number(r"(\d+) requests in", out)
    bad = _wrk_number(r"Non-2xx or 3xx responses: (\d+)", out) or 0
    socket_errors = sum(int(x) for x in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    ok = max(0, (requests or 0) - bad)
    rps = round(ok / args.duration, 1)
    result: dict[str, Any] = {
        "phase": "closed",
        "load": "wrk",
        "window_s": args.duration,
        "sent": requests or 0,
        "ok": ok,
        "all_ok": ok + warm_ok,  # every 200, the warm-up's too (the Kafka check)
        "errors": bad + socket_errors,
        "error_kinds": {"non_2xx": bad, "socket": socket_errors},
        "rps": rps,
        "p50_ms": _wrk_latency_ms("50%", out),
        "p90_ms": _wrk_latency_ms("90%", out),
        "p99_ms": _wrk_latency_ms("99%", out),
        "cpu_pct": cpu,
    }
    if rps and "server" in cpu:
        result["server_cpu_us_per_req"] = round(cpu["server"] / 100 / rps * 1e6, 1)
    if rps and "server_main_thread" in cpu:
        result["loop_cpu_us_per_req"] = round(cpu["server_main_thread"] / 100 / rps * 1e6, 1)
    if run.returncode != 0 or requests is None:
        raise RuntimeError(f"wrk failed: {run.stderr[-500:]} {out[-500:]}")
    server.acked += result["all_ok"]
    return result


def _wrk_number(pattern: str, text: str) -> int | None:
    match = re.search(pattern, text)
    return int(match.group(1)) if match else None


def _wrk_latency_ms(label: str, text: str) -> float | None:
    """A latency percentile from wrk's --latency table ("99%    4.21ms")."""
    match = re.search(rf"^\s*{re.escape(label)}\s+([\d.]+)(us|ms|s)\s*$", text, re.MULTILINE)
    if not match:
        return None
    scale = {"us": 1e-3, "ms": 1.0, "s": 1e3}[match.group(2)]
    return round(float(match.group(1)) * scale, 2)


def _warmup(server: Server, phase: str, args: argparse.Namespace) -> float:
    """Seconds of unmeasured load before the window.

    A fresh worker opens RocksDB for each table partition on first touch (~15 ms each,
    on the event loop) and rebalances once more: its first open-loop seconds are start-up.
    """
    if phase == "closed":
        return float(args.warmup)
    return max(float(args.open_warmup), 3.0) if server.target == "worker" else args.open_warmup


def _merge(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """One result from generators that ran the same window side by side."""
    lat = sorted(x / 1e3 for part in parts for x in part.pop("latencies_ms"))
    kinds: dict[str, int] = {}
    for part in parts:
        for kind, n in part["error_kinds"].items():
            kinds[kind] = kinds.get(kind, 0) + n
    cpu = {
        "loadgen": round(sum(part["cpu_pct"].get("loadgen", 0.0) for part in parts), 1),
        **{
            name: round(statistics.mean(part["cpu_pct"].get(name, 0.0) for part in parts), 1)
            for name in ("server", "server_main_thread", "broker", "machine")
            if name in parts[0]["cpu_pct"]
        },
    }
    merged = dict(parts[0])
    merged.update(
        {key: sum(part[key] for part in parts) for key in ("sent", "ok", "all_ok", "errors", "rps")}
    )
    merged.update(
        {
            "rps": round(merged["rps"], 1),
            "error_kinds": kinds,
            "p50_ms": percentile_ms(lat, 50),
            "p90_ms": percentile_ms(lat, 90),
            "p99_ms": percentile_ms(lat, 99),
            "max_ms": round(lat[-1] * 1e3, 2) if lat else None,
            "cpu_pct": cpu,
            "generators": len(parts),
        }
    )
    return merged


def _fmt(value: Any, spec: str = ".1f") -> str:
    return "-" if value is None else format(value, spec)


def _print_table(rows: list[dict[str, Any]], rate: float) -> None:
    head = (
        f"{'round':>5} {'target':<17}| {'max req/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'err':>4}"
        f" {'us/req srv/loop':>15}"
        f" {'cpu% srv/gen/kafka/other':>24} | {'@' + format(rate, 'g') + '/s got':>10}"
        f" {'p50 ms':>7} {'p99 ms':>8} {'err':>4}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        c, o = r["closed"], r["open"]
        cpu = c["cpu_pct"]
        us = f"{_fmt(c.get('server_cpu_us_per_req'), '.0f')}/"
        us += _fmt(c.get("loop_cpu_us_per_req"), ".0f")
        cpus = "/".join(_fmt(cpu.get(k), ".0f") for k in ("server", "loadgen", "broker", "others"))
        print(
            f"{r['round']:>5} {r['target']:<17}| {c['rps']:>9.0f} {_fmt(c['p50_ms']):>7}"
            f" {_fmt(c['p99_ms']):>7} {c['errors']:>4} {us:>15}"
            f" {cpus:>24} | {o['rps']:>10.1f}"
            f" {_fmt(o['p50_ms'], '.2f'):>7} {_fmt(o['p99_ms'], '.2f'):>8} {o['errors']:>4}"
        )


def _start(
    target: str, label: str, token: str, secret: str, args: argparse.Namespace, tmp: Path
) -> Server:
    """Start one target under its own topic prefix (``<token>.<label>.``)."""
    prefix = f"{token}.{label}."
    secure = target == "ingress-sasl-ssl"
    env = _service_env(prefix, _free_port(), secret, args.log_level, secure=secure)
    env["RGSYNC_DATA_DIR"] = str(tmp / label / "data")
    if target in ("bare-publish", "ingress", "ingress-aiokafka", "ingress-sasl-ssl"):
        _create_raw_topic(env)
    server = Server(target, prefix, int(env["RGSYNC_WEB_PORT"]), env, tmp / f"{label}.log")
    server.start()
    return server


def _measure(
    server: Server, rnd: int, secret: str, args: argparse.Namespace, broker_pid: int | None
) -> dict[str, Any]:
    """Both phases against one target; one table row."""
    # Open loop first: the closed phase leaves the worker's agents a backlog to chew on.
    open_ = _loadgen(server, secret, "open", args, broker_pid)
    if args.load == "wrk":
        closed = _wrk(server, secret, args, broker_pid)
    else:
        closed = _loadgen(server, secret, "closed", args, broker_pid)
    row: dict[str, Any] = {"round": rnd, "target": server.target, "closed": closed, "open": open_}
    if server.target == "worker":
        row["agents_lag_after"] = server.consumer_lag()
    print(
        f"  round {rnd} {server.target:<17} max {closed['rps']:>7.0f} req/s "
        f"p99 {_fmt(closed['p99_ms'])} ms | at {args.rate:g}/s "
        f"p50 {_fmt(open_['p50_ms'], '.2f')} p99 {_fmt(open_['p99_ms'], '.2f')} ms"
        f" err {closed['errors'] + open_['errors']}",
        flush=True,
    )
    return row


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Start the targets, measure them round by round, check Kafka, clean up, report."""
    targets = list(dict.fromkeys(t.strip() for t in args.targets.split(",") if t.strip()))
    unknown = sorted(set(targets) - set(ALL_TARGETS))
    if unknown:
        raise SystemExit(f"bench_ingest: unknown targets {unknown}; choose from {ALL_TARGETS}")
    if any(t != "bare" for t in targets) and not _port_open("127.0.0.1", 9092):
        print("bench_ingest: no broker on 127.0.0.1:9092, running ops/kafka start", flush=True)
        subprocess.run([str(ROOT / "ops" / "kafka"), "start"], cwd=ROOT, check=True)
    kafka = str(ROOT / "ops" / "kafka")
    started_secure = False
    if "ingress-sasl-ssl" in targets:
        # The secured broker runs next to the plaintext one (never instead of it). One this
        # run starts is stopped at its end: idle, it still took ~3 % of a core from the
        # benchmarks after it.
        status = subprocess.run([kafka, "status", "--secure"], cwd=ROOT, capture_output=True)
        subprocess.run([kafka, "start", "--secure"], cwd=ROOT, check=True)
        started_secure = status.returncode != 0
    token = f"rgbench{uuid.uuid4().hex[:8]}"
    secret = f"bench-secret-{uuid.uuid4().hex}"
    tmp = Path(tempfile.mkdtemp(prefix=f"{token}-"))
    broker_pid = _broker_pid()
    servers: dict[str, Server] = {}  # long-lived targets (everything but the worker)
    every: list[Server] = []  # all servers started, for the Kafka check
    rows: list[dict[str, Any]] = []
    failed: dict[str, str] = {}
    started = time.monotonic()
    print(f"bench_ingest: run {token}, logs in {tmp}", flush=True)
    try:
        for target in targets:
            if target != "worker":
                servers[target] = _start(target, target, token, secret, args, tmp)
                every.append(servers[target])
        for target, server in list(servers.items()):
            try:
                server.wait_ready(secret)
            except RuntimeError as exc:
                failed[target] = str(exc).splitlines()[0]
                print(f"bench_ingest: {target} skipped: {exc}", file=sys.stderr)
                server.stop()
                del servers[target]
        for rnd in range(1, args.rounds + 1):
            order = [t for t in targets if t in servers or (t == "worker" and t not in failed)]
            for target in order if rnd % 2 else reversed(order):
                if target != "worker":
                    rows.append(_measure(servers[target], rnd, secret, args, broker_pid))
                    continue
                # A fresh worker per round, stopped after its turn: its agents' backlog
                # from the max-throughput phase must not load the next target.
                worker = _start("worker", f"worker-r{rnd}", token, secret, args, tmp)
                every.append(worker)
                try:
                    t0 = time.monotonic()
                    worker.wait_ready(secret)
                    worker.wait_healthy()
                    time.sleep(2.0)  # let start-up work (rebalance, recovery, commits) settle
                    startup_s = round(time.monotonic() - t0, 1)
                    rows.append(_measure(worker, rnd, secret, args, broker_pid))
                    rows[-1]["worker_startup_s"] = startup_s
                except RuntimeError as exc:
                    failed["worker"] = str(exc).splitlines()[0]
                    print(f"bench_ingest: worker skipped: {exc}", file=sys.stderr)
                finally:
                    worker.stop(timeout_s=15)
    finally:
        for server in every:
            server.stop()
        kafka_check = _kafka_check(every)
        deleted = 0
        if not args.keep_topics:
            plain = _service_env(token, 1, secret, args.log_level)
            deleted = _delete_run_topics(token, plain)
            if "ingress-sasl-ssl" in targets:
                secure = _service_env(token, 1, secret, args.log_level, secure=True)
                deleted += _delete_run_topics(token, secure)
        for server in every:  # RocksDB data of the workers; the logs stay for reading
            shutil.rmtree(Path(server.env["RGSYNC_DATA_DIR"]).parent, ignore_errors=True)
        if started_secure:
            subprocess.run([kafka, "stop", "--secure"], cwd=ROOT, check=False)
    return _report(args, rows, kafka_check, failed, token, deleted, time.monotonic() - started)


def _kafka_check(servers: list[Server]) -> dict[str, dict[str, int | None]]:
    """Every 200 must be on the raw topic (acks=all before the answer): both counts."""
    check: dict[str, dict[str, int | None]] = {}
    for server in servers:
        if not server.raw_topic:
            continue
        mine = check.setdefault(server.target, {"answered_200": 0, "records_on_topic": 0})
        on_topic = _records_in(server.raw_topic, server.env)
        mine["answered_200"] = (mine["answered_200"] or 0) + server.acked
        so_far = mine["records_on_topic"]
        mine["records_on_topic"] = None if on_topic is None or so_far is None else so_far + on_topic
    return check


def _report(
    args: argparse.Namespace,
    rows: list[dict[str, Any]],
    kafka_check: dict[str, Any],
    failed: dict[str, str],
    token: str,
    deleted: int,
    elapsed: float,
) -> dict[str, Any]:
    print()
    _print_table(rows, args.rate)
    targets = list(dict.fromkeys(r["target"] for r in rows))
    by_round: dict[int, dict[str, dict[str, Any]]] = {}
    for r in rows:
        by_round.setdefault(r["round"], {})[r["target"]] = r
    ratios: dict[str, list[float]] = {}  # max req/s, target over bare, same round
    cpu_ratios: dict[str, list[float]] = {}  # server CPU per request, bare over target
    for rnd in by_round.values():
        bare = rnd.get("bare")
        if not bare or not bare["closed"]["rps"]:
            continue
        bare_us = bare["closed"].get("server_cpu_us_per_req")
        for t, r in rnd.items():
            if t == "bare":
                continue
            ratios.setdefault(t, []).append(round(r["closed"]["rps"] / bare["closed"]["rps"], 3))
            us = r["closed"].get("server_cpu_us_per_req")
            if bare_us and us:
                cpu_ratios.setdefault(t, []).append(round(bare_us / us, 3))
    summary: dict[str, Any] = {}
    for t in targets:
        mine = [r for r in rows if r["target"] == t]
        summary[t] = {
            "max_rps_median": round(statistics.median(r["closed"]["rps"] for r in mine), 1),
            "max_rps_rounds": [r["closed"]["rps"] for r in mine],
            "server_cpu_us_per_req_median": _median(
                r["closed"].get("server_cpu_us_per_req") for r in mine
            ),
            "loop_cpu_us_per_req_median": _median(
                r["closed"].get("loop_cpu_us_per_req") for r in mine
            ),
            "open_p50_ms_median": _median(r["open"]["p50_ms"] for r in mine),
            "open_p99_ms_median": _median(r["open"]["p99_ms"] for r in mine),
            "open_rps_median": round(statistics.median(r["open"]["rps"] for r in mine), 1),
            "errors": sum(r["closed"]["errors"] + r["open"]["errors"] for r in mine),
        }
        if t in ratios:
            summary[t]["ratio_vs_bare_rounds"] = ratios[t]
            summary[t]["ratio_vs_bare_median"] = round(statistics.median(ratios[t]), 3)
        if t in cpu_ratios:
            summary[t]["cpu_ratio_vs_bare_rounds"] = cpu_ratios[t]
    print()
    print(
        f"{'target':<17} {'max req/s (median)':>18} {'ratio/bare by round':>20}"
        f" {'us/req srv/loop':>15} {'cpu ratio by round':>19}"
        f" {'p50/p99 ms @' + format(args.rate, 'g') + '/s':>20} {'errors':>7}"
    )
    for t, s in summary.items():
        rr = ",".join(f"{x:.2f}" for x in s.get("ratio_vs_bare_rounds", [])) or "-"
        cr = ",".join(f"{x:.2f}" for x in s.get("cpu_ratio_vs_bare_rounds", [])) or "-"
        lat = f"{_fmt(s['open_p50_ms_median'], '.2f')}/{_fmt(s['open_p99_ms_median'], '.2f')}"
        us = f"{_fmt(s['server_cpu_us_per_req_median'], '.0f')}/"
        us += _fmt(s["loop_cpu_us_per_req_median"], ".0f")
        print(
            f"{t:<17} {s['max_rps_median']:>18.0f} {rr:>20} {us:>15} {cr:>19}"
            f" {lat:>20} {s['errors']:>7}"
        )
    print(
        "(ratio: max req/s over bare's in the same round; us/req: server CPU per request,"
        " all threads / event-loop thread; cpu ratio: bare's server CPU per request over"
        " the target's, steadier than req/s when other tenants take cores)"
    )
    for a, b, key, label in (
        (
            "ingress-sasl-ssl",
            "ingress",
            "sasl_ssl_over_plaintext_rounds",
            "Kafka over TLS + SASL / plaintext",
        ),
        (
            "ingress",
            "ingress-aiokafka",
            "confluent_over_aiokafka_rounds",
            "producers: confluent-kafka / aiokafka",
        ),
        (
            "ingress",
            "bare-publish",
            "ingress_over_bare_publish_rounds",
            "the ingress / its floor (bare-publish)",
        ),
    ):
        if a in summary and b in summary:
            summary[key] = _versus(summary, by_round, a, b, label, args.rate)
    for t, c in kafka_check.items():
        print(f"{t}: {c['answered_200']} answered 200, {c['records_on_topic']} records on topic")
    for t, why in failed.items():
        print(f"{t}: not measured ({why})")
    print(f"run {token}: {elapsed:.0f} s, {deleted} topics deleted")
    result = {
        "config": {
            k: getattr(args, k)
            for k in (
                "duration",
                "rate",
                "connections",
                "generators",
                "load",
                "rounds",
                "targets",
                "warmup",
                "open_warmup",
                "log_level",
            )
        },
        "cpus": os.cpu_count(),
        "summary": summary,
        "rounds": rows,
        "kafka_check": kafka_check,
        "failed": failed,
        "elapsed_s": round(elapsed, 1),
    }
    print("RESULT " + json.dumps(result, separators=(",", ":")))
    return result


def _versus(
    summary: dict[str, Any],
    by_round: dict[int, dict[str, dict[str, Any]]],
    a: str,
    b: str,
    label: str,
    rate: float,
) -> list[float]:
    """Target a's max req/s over b's, round by round; prints them with CPU and latency."""
    per_round = [
        round(rnd[a]["closed"]["rps"] / rnd[b]["closed"]["rps"], 3)
        for rnd in by_round.values()
        if {a, b} <= set(rnd) and rnd[b]["closed"]["rps"]
    ]
    x, y = summary[a], summary[b]
    print(
        f"{label}: max req/s by round {', '.join(f'{r:.2f}' for r in per_round)}; "
        f"server CPU per request {_fmt(x['server_cpu_us_per_req_median'], '.0f')} vs "
        f"{_fmt(y['server_cpu_us_per_req_median'], '.0f')} us (event loop "
        f"{_fmt(x['loop_cpu_us_per_req_median'], '.0f')} vs "
        f"{_fmt(y['loop_cpu_us_per_req_median'], '.0f')} us); p50/p99 at {rate:g}/s "
        f"{_fmt(x['open_p50_ms_median'], '.2f')}/{_fmt(x['open_p99_ms_median'], '.2f')} vs "
        f"{_fmt(y['open_p50_ms_median'], '.2f')}/{_fmt(y['open_p99_ms_median'], '.2f')} ms"
    )
    return per_round


def _median(values: Any) -> float | None:
    present = [v for v in values if v is not None]
    return round(statistics.median(present), 2) if present else None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per phase")
    parser.add_argument("--rate", type=float, default=500.0, help="open-loop requests/s")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--generators",
        type=int,
        default=2,
        help="loadgen processes sharing the connections in the max-throughput phase",
    )
    parser.add_argument("--targets", default=",".join(ALL_TARGETS))
    parser.add_argument(
        "--load",
        choices=("wrk", "loadgen"),
        default="wrk",
        help="max-throughput phase: wrk (C, not the bottleneck) or ops/loadgen.py processes",
    )
    parser.add_argument("--warmup", type=float, default=2.0, help="closed-loop warm-up, s")
    parser.add_argument(
        "--open-warmup", type=float, default=0.5, help="open-loop warm-up, s (worker: 3 s at least)"
    )
    parser.add_argument("--log-level", default="INFO", help="RGSYNC_LOG_LEVEL of the services")
    parser.add_argument("--keep-topics", action="store_true")
    parser.add_argument(
        "--serve", choices=[t for t in ALL_TARGETS if t != "worker"], help=argparse.SUPPRESS
    )
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        if args.serve == "bare":
            asyncio.run(_serve(args.serve, args.port))  # a bare aiohttp app, as it comes
        else:
            # The ingress's event loop, as `realgeeks-sync ingress` runs it.
            import uvloop

            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                runner.run(_serve(args.serve, args.port))
        return
    run(args)


if __name__ == "__main__":
    main()
