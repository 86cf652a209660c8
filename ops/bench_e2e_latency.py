"""End-to-end latency benchmark: signed webhook -> 200 -> lead event on leads.normalized.

    .venv/bin/python ops/bench_e2e_latency.py [--rate 200] [--duration 60] [--partitions 8]
        [--workers 1] [--standby-replicas N] [--worker-setting RGSYNC_NAME=VALUE]
        [--ingress-process] [--sites 50]
        [--connections 256] [--warmup 20]
        [--log-level INFO] [--keep-topics]

A worker subprocess (dialer off) runs under a unique topic prefix and app id against the
real broker (127.0.0.1:9092 unless --broker). A confluent-kafka consumer in a thread reads
``leads.normalized`` from offset 0 from before the first webhook and stamps each lead
event's arrival (wall clock). Webhooks are distinct signed ``created`` leads sent on an
open-loop timetable (request i is due at t0 + i/rate, whatever the server does) through an
aiohttp client with bounded connections; the 200's arrival is stamped too. With
``--ingress-process`` the webhooks go to one ``realgeeks-sync ingress`` process (same
settings, its own port) instead of the worker's own web server; the rest is the same.

Reported: event arrival - 200 (the pipeline), 200 - scheduled send (the ingress, with any
client-side queueing), event arrival - scheduled send (the whole path), sent vs received
(missing must be 0), achieved rate, worker RSS at start/end (VmRSS) and CPU. A short
warm-up (``--warmup`` leads, waited for) runs first and is not counted. The last line is
``RESULT {json}``. The run's topics and groups are deleted unless ``--keep-topics``.

Helpers here (open-loop sender, topic watcher, percentiles, worker probes, workers that
share the partitions) are also used by ops/bench_speed_to_lead.py, ops/bench_initiation.py
and ops/bench_backlog.py; ops/bench_worker_rate.py runs run() with parser()'s options.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from ops.testkit.support import IngressProcess, Worker, free_port, unique, worker_env  # noqa: E402
from realgeeks_sync.app.ingress.signatures import sign_realgeeks  # noqa: E402
from realgeeks_sync.app.streaming.partitioning import site_partition  # noqa: E402

__all__ = [
    "MachineCpu",
    "Sent",
    "TopicWatcher",
    "WorkerProbe",
    "assigned_partitions",
    "delete_run_topics",
    "delete_stale_bench_topics",
    "describe_gc",
    "main",
    "parser",
    "pct_ms",
    "send_open_loop",
    "signed_webhook",
    "start_worker",
    "start_workers",
    "summary_ms",
    "wait_assigned",
    "warmup_sites",
    "worker_settings",
]

BROKER = "127.0.0.1:9092"
SECRET = "bench-secret"
WEBHOOK_PATH = "/webhooks/realgeeks"


# --------------------------------------------------------------------------- statistics


def pct_ms(ordered: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile of sorted seconds, in ms (None when empty)."""
    if not ordered:
        return None
    rank = min(len(ordered) - 1, max(0, int(p / 100 * len(ordered) + 0.5) - 1))
    return round(ordered[rank] * 1e3, 1)


def summary_ms(values: Sequence[float]) -> dict[str, float | int | None]:
    """count, p50, p95, p99, max (ms) of latencies in seconds."""
    ordered = sorted(values)
    return {
        "count": len(ordered),
        "p50": pct_ms(ordered, 50),
        "p95": pct_ms(ordered, 95),
        "p99": pct_ms(ordered, 99),
        "max": round(ordered[-1] * 1e3, 1) if ordered else None,
    }


def fmt(s: dict[str, Any]) -> str:
    return (
        f"p50 {s['p50']} ms  p95 {s['p95']} ms  p99 {s['p99']} ms  max {s['max']} ms"
        f"  (n={s['count']})"
    )


# --------------------------------------------------------------------------- worker


def start_worker(
    bootstrap: str,
    run_dir: Path,
    *,
    partitions: int,
    log_level: str,
    root: Path | None = None,
    **extra: str,
) -> Worker:
    """A worker subprocess with its own prefix/app id/port/data dir, no client rate limit.

    ``root`` runs the worker of another checkout (an earlier commit, for a baseline).
    """
    settings = {
        "prefix": unique("bench") + ".",
        "RGSYNC_REALGEEKS_SECRETS": SECRET,
        "RGSYNC_PARTITIONS": str(partitions),
        "RGSYNC_CLIENT_RATE_PER_S": "1e9",
        "RGSYNC_CLIENT_BURST": str(10**9),  # an integer setting
        "RGSYNC_LOG_LEVEL": log_level,
        "RGSYNC_REALGEEKS_API_URL": "http://127.0.0.1:9",  # nothing leaves the machine
        "RGSYNC_ELEVENLABS_API_URL": "http://127.0.0.1:9",
    }
    settings.update(extra)
    env = worker_env(bootstrap, run_dir, **settings)
    worker = Worker(env=env, log_path=run_dir / "worker.log", root=root or ROOT)
    return worker.start(wait=True, timeout=120)


def start_workers(
    bootstrap: str,
    run_dir: Path,
    count: int,
    *,
    partitions: int,
    log_level: str,
    root: Path | None = None,
    **extra: str,
) -> list[Worker]:
    """``count`` workers of one app (start_worker's, then more with the same prefix and app
    id, each with its own port and data dir): they share the partitions."""
    worker = start_worker(
        bootstrap, run_dir, partitions=partitions, log_level=log_level, root=root, **extra
    )
    return [worker] + [
        Worker(
            env={
                **worker.env,
                "RGSYNC_WEB_PORT": str(free_port()),
                "RGSYNC_DATA_DIR": str(run_dir / f"data{i}"),
            },
            log_path=run_dir / f"worker{i}.log",
            root=worker.root,
        ).start(wait=True, timeout=120)
        for i in range(1, count)
    ]


def add_setting_arguments(parser: argparse.ArgumentParser, whose: str, versus: bool) -> None:
    """``--worker-setting`` (repeatable) for ``whose`` workers and, with ``versus``, ``--versus``:
    the same workers also run with those settings, side by side."""
    parser.add_argument(
        "--worker-setting",
        action="append",
        metavar="RGSYNC_NAME=VALUE",
        help=f"a setting of {whose} workers (repeatable)",
    )
    if versus:
        parser.add_argument(
            "--versus",
            action="append",
            metavar="RGSYNC_NAME=VALUE",
            help=f"also run {whose} workers with these settings (repeatable: all together), "
            "side by side",
        )


def _settings(pairs: Sequence[str] | None, flag: str) -> dict[str, str]:
    chosen: dict[str, str] = {}
    for pair in pairs or ():
        name, equals, setting = pair.partition("=")
        if not equals or not name.strip().startswith("RGSYNC_"):
            raise SystemExit(f"{flag} {pair!r}: expected RGSYNC_NAME=VALUE")
        chosen[name.strip()] = setting
    return chosen


def worker_settings(args: argparse.Namespace) -> dict[str, str]:
    """RGSYNC_TABLE_STANDBY_REPLICAS from ``--standby-replicas`` (nothing when not given:
    a baseline commit may not know the setting), and every ``--worker-setting``."""
    value = getattr(args, "standby_replicas", None)
    chosen = {} if value is None else {"RGSYNC_TABLE_STANDBY_REPLICAS": str(value)}
    return chosen | _settings(getattr(args, "worker_setting", None), "--worker-setting")


def versus_settings(args: argparse.Namespace) -> dict[str, str]:
    """The other side of ``--versus``: this checkout's settings with the ``--versus`` ones."""
    return worker_settings(args) | _settings(args.versus, "--versus")


def assigned_partitions(worker: Worker) -> int:
    """How many raw partitions the worker owns, as its /health says (0 when unreachable)."""
    try:
        with urllib.request.urlopen(f"{worker.url}/health", timeout=5) as resp:
            report = json.loads(resp.read())
    except urllib.error.HTTPError as err:  # a 503 (not ready yet) has the report too
        report = json.loads(err.read())
    except OSError:
        report = {}
    return int(report.get("checks", {}).get("assigned_partitions", 0))


def gc_pauses(worker: Worker) -> dict[str, float] | None:
    """The worker's garbage-collector pauses so far, all generations (realgeeks_gc_pause_seconds
    on /metrics): how many, seconds in all and per bucket bound; None when not exported."""
    from prometheus_client.parser import text_string_to_metric_families

    try:
        with urllib.request.urlopen(f"{worker.url}/metrics", timeout=5) as resp:
            text = resp.read().decode()
    except OSError:
        return None
    totals: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name != "realgeeks_gc_pause_seconds":
            continue
        for s in family.samples:
            key = s.name.removeprefix("realgeeks_gc_pause_seconds")
            if key == "_bucket":
                key = f"le={s.labels['le']}"
            totals[key] = totals.get(key, 0.0) + s.value
    return totals or None


def gc_summary(
    before: dict[str, float] | None, after: dict[str, float] | None, webhooks: int
) -> dict[str, Any] | None:
    """Pauses within the window: count, total ms, ms per webhook, and the longest's bucket."""
    if before is None or after is None:
        return None
    moved = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in after}
    bounds = sorted(
        (float(k[3:]), v) for k, v in moved.items() if k.startswith("le=") and k != "le=+Inf"
    )
    count = moved.get("_count", 0.0)
    longest = next((bound for bound, hits in bounds if hits >= count), float("inf"))
    return {
        "pauses": int(count),
        "ms": round(moved.get("_sum", 0.0) * 1e3, 1),
        "ms_per_webhook": round(moved.get("_sum", 0.0) * 1e3 / webhooks, 4) if webhooks else None,
        "longest_ms_at_most": None if longest == float("inf") else longest * 1e3,
    }


def describe_gc(gc: dict[str, Any]) -> str:
    """A window's garbage-collector pauses (gc_summary), as the benchmarks print them."""
    return (
        f"{gc['pauses']} pauses, {gc['ms']} ms in all ({gc['ms_per_webhook']} ms per webhook), "
        f"longest <= {gc['longest_ms_at_most']} ms"
    )


def wait_assigned(workers: list[Worker], partitions: int, timeout: float = 90.0) -> list[int]:
    """Until every worker owns raw partitions and together they own all of them; how many each.

    Raises:
        RuntimeError: they did not within ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    owned: list[int] = []
    while time.monotonic() < deadline:
        owned = [assigned_partitions(w) for w in workers]
        if all(owned) and sum(owned) == partitions:
            return owned
        time.sleep(0.5)
    raise RuntimeError(f"partitions never spread over the workers: {owned}")


class WorkerProbe:
    """VmRSS and CPU seconds of a process from /proc; samples peak RSS in a thread."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def rss_kb(self) -> int:
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        except OSError:
            pass
        return 0

    def alive(self) -> bool:
        """Whether the process still exists (a gone one reads as 0 CPU seconds)."""
        return Path(f"/proc/{self.pid}/stat").exists()

    def cpu_s(self) -> float:
        try:
            raw = Path(f"/proc/{self.pid}/stat").read_text()
        except OSError:
            return 0.0
        fields = raw[raw.rindex(")") + 2 :].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            self.peak_kb = max(self.peak_kb, self.rss_kb())

    def start(self) -> WorkerProbe:
        self.peak_kb = self.rss_kb()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)


class MachineCpu:
    """Whole-machine CPU busy share between start() and stop(), from /proc/stat.

    The machine is shared and noisy: a run whose other processes took most of the CPU
    (``others_pct``: busy minus this benchmark and its worker) is not comparable.
    """

    @staticmethod
    def _sample() -> tuple[float, float]:
        fields = [float(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
        idle = fields[3] + fields[4]
        return sum(fields) - idle, sum(fields)

    def start(self) -> MachineCpu:
        self._busy0, self._total0 = self._sample()
        self._self0 = time.process_time()
        return self

    def stop(self, worker_cpu_s: float) -> dict[str, float]:
        busy, total = self._sample()
        ticks = max(total - self._total0, 1.0)
        hz = os.sysconf("SC_CLK_TCK")
        ncpu = os.cpu_count() or 1
        wall_cpu_s = ticks / hz  # summed over CPUs
        busy_s = (busy - self._busy0) / hz
        own = time.process_time() - self._self0 + worker_cpu_s
        return {
            "cpus": ncpu,
            "busy_pct": round(100 * busy_s / wall_cpu_s, 1),
            "others_pct": round(100 * max(busy_s - own, 0.0) / wall_cpu_s, 1),
            "load_avg_1m": round(os.getloadavg()[0], 2),
        }


def delete_run_topics(bootstrap: str, prefix: str) -> int:
    """Delete topics and consumer groups whose names start with the run's prefix/app id."""
    token = prefix.rstrip(".")
    return _delete_topics_and_groups(bootstrap, lambda name: name.startswith(token))


# The names benchmark runs give their topics and groups: a worker's prefix/app id
# (start_worker), bench_faust_floor's app and bench_ingest's topics.
_BENCH_RUN = re.compile(r"(bench[0-9a-f]{10}|floor[0-9a-f]{10}|rgbench[0-9a-f]{8})(?:[.-]|$)")


def bench_run(name: str) -> str | None:
    """The benchmark run a topic or group name belongs to, or None when it is not one's."""
    found = _BENCH_RUN.match(name)
    return found.group(1) if found else None


def delete_stale_bench_topics(bootstrap: str, runs: Collection[str] | None = None) -> int:
    """Delete the topics and groups of benchmark runs that are not running; how many topics.

    A run deletes its own as it ends; one that was killed leaves them (a broker here held
    378 topics, 3,200 partitions, of such runs). A run whose consumer group has members
    (a worker of a benchmark running now) is left alone; bench_ingest's topics have no
    group, so run one benchmark at a time. ``runs`` limits it to those runs (tests).

    Raises:
        RuntimeError: a broker did not list its consumer groups (nothing is deleted).
    """
    from confluent_kafka import ConsumerGroupState
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 3})
    idle = (ConsumerGroupState.EMPTY, ConsumerGroupState.DEAD)
    listed = admin.list_consumer_groups().result(timeout=10)
    if listed.errors:
        # A broker that did not list its groups may hold a running benchmark's.
        raise RuntimeError(f"consumer groups not listed: {listed.errors[0]}")
    live = {
        run
        for group in listed.valid
        if group.state not in idle and (run := bench_run(group.group_id))
    }

    def stale(name: str) -> bool:
        run = bench_run(name)
        return run is not None and run not in live and (runs is None or run in runs)

    return _delete_topics_and_groups(bootstrap, stale)


def _delete_topics_and_groups(bootstrap: str, ours: Callable[[str], bool]) -> int:
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 3})
    mine = [t for t in admin.list_topics(timeout=10).topics if ours(t)]
    if mine:
        for future in admin.delete_topics(mine, operation_timeout=30).values():
            with contextlib.suppress(Exception):
                future.result(timeout=30)
    with contextlib.suppress(Exception):
        groups = admin.list_consumer_groups().result(timeout=10).valid
        group_ids = [g.group_id for g in groups if ours(g.group_id)]
        for future in admin.delete_consumer_groups(group_ids).values() if group_ids else []:
            with contextlib.suppress(Exception):
                future.result(timeout=10)
    return len(mine)


# --------------------------------------------------------------------------- topic watcher


class TopicWatcher(threading.Thread):
    """Reads a topic from offset 0 in a thread; stamps the first arrival of each id.

    ``extract(value_dict) -> id | None`` picks the record's id. ``arrivals[id]`` is the
    wall time poll() returned it; ``kafka_ts[id]`` the record's CreateTime (s).
    """

    def __init__(
        self, bootstrap: str, topic: str, extract: Callable[[dict[str, Any]], str | None]
    ) -> None:
        super().__init__(daemon=True, name=f"watch-{topic}")
        self.bootstrap = bootstrap
        self.topic = topic
        self.extract = extract
        self.arrivals: dict[str, float] = {}
        self.kafka_ts: dict[str, float] = {}
        self.records = 0
        self.ready = threading.Event()
        self._stop_evt = threading.Event()
        self.error: str | None = None

    def run(self) -> None:
        from confluent_kafka import Consumer, TopicPartition

        consumer = Consumer(
            {
                "bootstrap.servers": self.bootstrap,
                "group.id": unique("benchwatch"),
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "fetch.wait.max.ms": 10,
                "log_level": 3,
            }
        )
        try:
            deadline = time.monotonic() + 60
            meta = None
            while time.monotonic() < deadline and not self._stop_evt.is_set():
                meta = consumer.list_topics(self.topic, timeout=5).topics.get(self.topic)
                if meta is not None and meta.error is None and meta.partitions:
                    break
                time.sleep(0.2)
            if meta is None or not meta.partitions:
                self.error = f"topic {self.topic} not found"
                self.ready.set()
                return
            consumer.assign([TopicPartition(self.topic, p, 0) for p in meta.partitions])
            consumer.poll(0.1)
            self.ready.set()
            while not self._stop_evt.is_set():
                msg = consumer.poll(0.05)
                if msg is None or msg.error():
                    continue
                now = time.time()
                self.records += 1
                try:
                    value = json.loads(msg.value() or b"")
                    ident = self.extract(value)
                except Exception:  # noqa: BLE001 - a foreign record is not ours
                    continue
                if ident is not None and ident not in self.arrivals:
                    self.arrivals[ident] = now
                    self.kafka_ts[ident] = msg.timestamp()[1] / 1e3
        finally:
            consumer.close()

    def stop(self) -> None:
        self._stop_evt.set()
        self.join(10)


# --------------------------------------------------------------------------- webhooks


def signed_webhook(body: dict[str, Any], action: str = "created") -> tuple[bytes, dict[str, str]]:
    raw = json.dumps(body, separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/json",
        "X-Lead-Router-Action": action,
        "X-Lead-Router-Message-Id": uuid.uuid4().hex,
        "X-Lead-Router-Signature": sign_realgeeks(SECRET, raw),
    }
    return raw, headers


@dataclass
class Sent:
    """One webhook: its id, when it was due and answered (wall clock), and the outcome."""

    ident: str
    due_wall: float
    started_wall: float = 0.0
    answered_wall: float = 0.0
    outcome: str = "pending"


@dataclass
class SendReport:
    sent: list[Sent] = field(default_factory=list)
    max_lateness_s: float = 0.0
    window_s: float = 0.0


async def send_open_loop(
    url: str | list[str],
    items: Sequence[tuple[str, bytes, dict[str, str]]],
    *,
    rate: float,
    connections: int,
    timeout_s: float = 15.0,
) -> SendReport:
    """POST ``items`` (id, body, headers) on a fixed timetable; stamp each answer.

    Request i is due at t0 + i/rate and is started then even when earlier ones are still
    waiting (the connector bounds concurrency; a request queued there still counts from
    its due time), so a slow server cannot hide its latency.
    """
    report = SendReport()
    loop = asyncio.get_running_loop()
    connector = aiohttp.TCPConnector(limit=connections, limit_per_host=connections)
    session = aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=timeout_s)
    )

    urls = [url] if isinstance(url, str) else url

    async def one(rec: Sent, body: bytes, headers: dict[str, str], target: str) -> None:
        rec.started_wall = time.time()
        try:
            async with session.post(target, data=body, headers=headers) as resp:
                await resp.read()
                rec.answered_wall = time.time()
                rec.outcome = "200" if resp.status == 200 else f"http_{resp.status}"
        except TimeoutError:
            rec.answered_wall = time.time()
            rec.outcome = "timeout"
        except aiohttp.ClientError as exc:
            rec.answered_wall = time.time()
            rec.outcome = type(exc).__name__

    tasks = []
    try:
        t0 = loop.time() + 0.05
        wall0 = time.time() + (t0 - loop.time())
        for i, (ident, body, headers) in enumerate(items):
            due = t0 + i / rate
            now = loop.time()
            if now < due:
                await asyncio.sleep(due - now)
                now = loop.time()
            report.max_lateness_s = max(report.max_lateness_s, now - due)
            rec = Sent(ident, wall0 + i / rate)
            report.sent.append(rec)
            tasks.append(asyncio.create_task(one(rec, body, headers, urls[i % len(urls)])))
        await asyncio.gather(*tasks)
        report.window_s = max((r.answered_wall for r in report.sent), default=wall0) - wall0
    finally:
        await session.close()
    return report


# --------------------------------------------------------------------------- leads

_FIRST = ["Jack", "Maria", "Kenji", "Leilani", "Noah", "Priya", "Oscar", "Hana", "Ava", "Liam"]


def lead_body(site: str, lead_id: str, n: int, phone: str) -> dict[str, Any]:
    """A distinct ~0.5 KB ``created`` lead (own id, email, phone and unlikely last name)."""
    digest = hashlib.sha256(lead_id.encode()).digest()
    last = "".join("bdfgklmnprstvz"[b % 14] + "aeiou"[b % 5] for b in digest[:5]).capitalize()
    return {
        "id": lead_id,
        "site_uuid": site,
        "site_domain": "www.mysite.com",
        "source": "Website Property Search",
        "role": "Buyer",
        "first_name": _FIRST[n % len(_FIRST)],
        "last_name": last,
        "email": f"bench.{lead_id}@example.com",
        "phone": phone,
        "agent_id": "14187",
        "partner_id": f"bench-{lead_id}",
    }


# --------------------------------------------------------------------------- main


def warmup_sites(sites: Sequence[str], partitions: int, count: int) -> list[str]:
    """The sites of the warm-up leads: one of every partition the sites cover first, then
    the others in turn; ``count`` of them, or one per covered partition if that is more.

    A topic partition's first write costs the broker 100-250 ms (measured: 80 new
    partitions, the first request 145-254 ms, the next ones under 30), and every run has
    topics of its own: a measured lead whose partition took no warm-up lead would pay it,
    and the dialer, a few broker round trips per lead in turn on each partition, with it.
    """
    first: dict[int, str] = {}
    for site in sites:
        first.setdefault(site_partition(site, partitions), site)
    covering = list(first.values())
    ordered = covering + [site for site in sites if site not in first.values()]
    return [ordered[n % len(ordered)] for n in range(max(count, len(covering)))]


async def _warmup(
    url: str, watcher: TopicWatcher, sites: list[str], count: int, partitions: int
) -> tuple[float, int]:
    """Send the warm-up leads at 10/s (``warmup_sites``: at least one on every partition)
    and wait until all are on leads.normalized; the seconds it took and how many."""
    if count <= 0:
        return 0.0, 0
    items = []
    for n, site in enumerate(warmup_sites(sites, partitions, count)):
        lead = "warm" + uuid.uuid4().hex[:20]
        body, headers = signed_webhook(lead_body(site, lead, n, f"+1808{1000000 + n:07d}"))
        items.append((lead, body, headers))
    t = time.monotonic()
    await send_open_loop(url, items, rate=10, connections=16)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and not all(i[0] in watcher.arrivals for i in items):
        await asyncio.sleep(0.1)
    return time.monotonic() - t, len(items)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    run_dir = Path(tempfile.mkdtemp(prefix="bench-e2e-"))
    worker, *extra_workers = start_workers(
        args.broker,
        run_dir,
        args.workers,
        partitions=args.partitions,
        log_level=args.log_level,
        **worker_settings(args),
    )
    prefix = worker.env["RGSYNC_TOPIC_PREFIX"]
    wait_assigned([worker, *extra_workers], args.partitions)
    # The same settings as the workers (secrets, prefix), on a port of its own.
    ingress_proc = (
        IngressProcess(
            env={**worker.env, "RGSYNC_INGRESS_PORT": str(free_port())},
            log_path=run_dir / "ingress.log",
        )
        if args.ingress_process
        else None
    )
    probe = WorkerProbe(worker.proc.pid if worker.proc else 0)
    # CPU of every worker (with --workers 2 the second one is not "others").
    cpu_probes = [probe, *(WorkerProbe(w.proc.pid if w.proc else 0) for w in extra_workers)]
    ingress_probe: WorkerProbe | None = None
    watcher = TopicWatcher(
        args.broker, prefix + "leads.normalized", lambda v: v.get("source_lead_id")
    )
    try:
        if ingress_proc is not None:
            ingress_proc.start(wait=True, timeout=60)
            ingress_probe = WorkerProbe(ingress_proc.proc.pid if ingress_proc.proc else 0)
        probe.start()
        rss_start = probe.rss_kb()
        watcher.start()
        await asyncio.to_thread(watcher.ready.wait, 60)
        if watcher.error:
            raise RuntimeError(watcher.error)
        url = (ingress_proc or worker).url + WEBHOOK_PATH
        urls = [url] if ingress_proc else [w.url + WEBHOOK_PATH for w in (worker, *extra_workers)]
        sites = [str(uuid.uuid4()) for _ in range(args.sites)]
        warm_s, warm_count = await _warmup(url, watcher, sites, args.warmup, args.partitions)
        rss_after_warmup = probe.rss_kb()

        total = int(args.rate * args.duration)
        items = []
        for n in range(total):
            lead = uuid.uuid4().hex
            body, headers = signed_webhook(
                lead_body(sites[n % len(sites)], lead, n, f"+1808{2000000 + n:07d}")
            )
            items.append((lead, body, headers))
        print(
            f"mode {mode(args)}: worker pid {probe.pid} prefix {prefix} ready; warm-up "
            f"{warm_count} leads in {warm_s:.1f}s; sending {total} webhooks at "
            f"{args.rate:g}/s for {args.duration:g}s",
            flush=True,
        )
        gc0 = gc_pauses(worker)
        each0 = [p.cpu_s() for p in cpu_probes]
        cpu0, wall0 = sum(each0), time.monotonic()
        ingress_cpu0 = ingress_probe.cpu_s() if ingress_probe else 0.0
        machine = MachineCpu().start()
        report = await send_open_loop(urls, items, rate=args.rate, connections=args.connections)
        ok_ids = {r.ident for r in report.sent if r.outcome == "200"}
        # Wait for every lead: until all arrived, or no new one for --stall-timeout
        # seconds, or --drain-timeout in all (a backlog is waited for, a loss is not).
        sent_done = time.monotonic()
        deadline = sent_done + args.drain_timeout
        seen, progress_at = len(watcher.arrivals), sent_done
        while time.monotonic() < deadline and not ok_ids <= watcher.arrivals.keys():
            await asyncio.sleep(0.2)
            if len(watcher.arrivals) != seen:
                seen, progress_at = len(watcher.arrivals), time.monotonic()
            elif time.monotonic() - progress_at > args.stall_timeout:
                break
        drain_s = time.monotonic() - sent_done
        each1 = [p.cpu_s() for p in cpu_probes]
        cpu1, wall1 = sum(each1), time.monotonic()
        ingress_cpu_s = ingress_probe.cpu_s() - ingress_cpu0 if ingress_probe else 0.0
        machine_cpu = machine.stop(cpu1 - cpu0 + ingress_cpu_s)
        gc1 = gc_pauses(worker)
        rss_end = probe.rss_kb()
    finally:
        watcher.stop()
        probe.stop()
        for w in (*([ingress_proc] if ingress_proc else []), worker, *extra_workers):
            w.stop()
        shutil.rmtree(run_dir / "data", ignore_errors=True)  # the log stays for diagnosis
    if not args.keep_topics:
        delete_run_topics(args.broker, prefix)

    outcomes = Counter(r.outcome for r in report.sent)
    by_id = {r.ident: r for r in report.sent}
    got = [i for i in ok_ids if i in watcher.arrivals]
    pipeline = [watcher.arrivals[i] - by_id[i].answered_wall for i in got]
    ingress = [r.answered_wall - r.due_wall for r in report.sent if r.outcome == "200"]
    whole = [watcher.arrivals[i] - by_id[i].due_wall for i in got]
    first_due = report.sent[0].due_wall if report.sent else 0.0
    # Where the pipeline time goes: 200 -> lead record written (CreateTime) -> read here.
    to_write = [watcher.kafka_ts[i] - by_id[i].answered_wall for i in got]
    to_read = [watcher.arrivals[i] - watcher.kafka_ts[i] for i in got]
    result = {
        "bench": "e2e_latency",
        "mode": mode(args),
        "rate": args.rate,
        "workers": args.workers,
        "duration_s": args.duration,
        "partitions": args.partitions,
        "sites": args.sites,
        "sent": len(report.sent),
        "ok_200": outcomes.get("200", 0),
        "errors": {k: v for k, v in outcomes.items() if k != "200"},
        "received": len(got),
        "missing": len(ok_ids) - len(got),
        "achieved_rate": round(outcomes.get("200", 0) / report.window_s, 1)
        if report.window_s
        else None,
        "max_send_lateness_ms": round(report.max_lateness_s * 1e3, 1),
        "drain_after_sending_s": round(drain_s, 1),
        "pipeline_rate": round(len(got) / (max(watcher.arrivals[i] for i in got) - first_due), 1)
        if got
        else None,
        "event_after_200_ms": summary_ms(pipeline),
        "http_200_after_send_ms": summary_ms(ingress),
        "event_after_send_ms": summary_ms(whole),
        "record_written_after_200_ms": summary_ms(to_write),
        "record_read_after_written_ms": summary_ms(to_read),
        "worker_rss_mb": {
            "start": round(rss_start / 1024, 1),
            "after_warmup": round(rss_after_warmup / 1024, 1),
            "end": round(rss_end / 1024, 1),
            "peak": round(probe.peak_kb / 1024, 1),
        },
        "worker_cpu_pct": round(100 * (cpu1 - cpu0) / max(wall1 - wall0, 1e-9), 1),
        "worker_cpu_pct_each": [
            round(100 * (b - a) / max(wall1 - wall0, 1e-9), 1)
            for a, b in zip(each0, each1, strict=True)
        ],
        # CPU seconds of the worker process (all threads, /proc) per webhook processed:
        # far steadier than rates on a machine shared with the broker and neighbours.
        "worker_cpu_ms_per_webhook": round((cpu1 - cpu0) * 1e3 / len(got), 3) if got else None,
        "ingress_cpu_pct": round(100 * ingress_cpu_s / max(wall1 - wall0, 1e-9), 1)
        if ingress_proc
        else None,
        "machine_cpu": machine_cpu,
        # The first worker's garbage-collector pauses in the window (app/core/gc_tuning.py).
        "worker_gc": gc_summary(gc0, gc1, len(got) // max(1, args.workers)),
        "worker_log": str(worker.log_path),
    }
    return result


def mode(args: argparse.Namespace) -> str:
    """Which process received the webhooks: ``worker`` or ``ingress-process``."""
    return "ingress-process" if args.ingress_process else "worker"


def parser() -> argparse.ArgumentParser:
    """This benchmark's options (ops/bench_worker_rate.py runs it with its own)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=200.0, help="webhooks per second")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of sending")
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--workers", type=int, default=1, help="worker processes sharing the load")
    parser.add_argument(
        "--ingress-process",
        action="store_true",
        help="send the webhooks to one `realgeeks-sync ingress` process, not to the worker",
    )
    parser.add_argument(
        "--standby-replicas", type=int, help="RGSYNC_TABLE_STANDBY_REPLICAS (default: unset)"
    )
    add_setting_arguments(parser, "the", versus=False)
    parser.add_argument("--sites", type=int, default=50)
    parser.add_argument("--connections", type=int, default=256, help="client concurrency bound")
    parser.add_argument(
        "--warmup",
        type=int,
        default=20,
        help="uncounted leads sent first, at least one per partition (0: none)",
    )
    parser.add_argument(
        "--drain-timeout", type=float, default=300.0, help="max wait for events after sending"
    )
    parser.add_argument(
        "--stall-timeout", type=float, default=20.0, help="give up after this long without one"
    )
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--broker", default=BROKER)
    parser.add_argument("--keep-topics", action="store_true")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    result = asyncio.run(run(args))
    print()
    print(
        f"e2e latency at {args.rate:g}/s for {args.duration:g}s, {args.partitions} partitions, "
        f"mode {result['mode']} ({args.workers} worker(s))"
    )
    print(
        f"  sent {result['sent']}  200 {result['ok_200']}  errors {result['errors']}  "
        f"received {result['received']}  missing {result['missing']}  "
        f"achieved {result['achieved_rate']}/s"
    )
    print(
        f"  pipeline throughput {result['pipeline_rate']}/s (lead events, first send to last "
        f"event); waited {result['drain_after_sending_s']} s after the last send"
    )
    print(f"  lead event after 200:   {fmt(result['event_after_200_ms'])}")
    print(f"  200 after send (due):   {fmt(result['http_200_after_send_ms'])}")
    print(f"  lead event after send:  {fmt(result['event_after_send_ms'])}")
    print(f"    200 -> record written (CreateTime): {fmt(result['record_written_after_200_ms'])}")
    print(f"    written -> read by consumer:        {fmt(result['record_read_after_written_ms'])}")
    rss = result["worker_rss_mb"]
    print(
        f"  worker RSS start {rss['start']} MB, after warm-up {rss['after_warmup']} MB, "
        f"end {rss['end']} MB, peak {rss['peak']} MB; CPU {result['worker_cpu_pct']}%, "
        f"{result['worker_cpu_ms_per_webhook']} ms per webhook"
    )
    if result["ingress_cpu_pct"] is not None:
        print(f"  ingress process CPU {result['ingress_cpu_pct']}%")
    if result["worker_gc"] is not None:
        print(f"  worker GC: {describe_gc(result['worker_gc'])}")
    m = result["machine_cpu"]
    print(
        f"  machine: {m['cpus']} CPUs {m['busy_pct']}% busy, other processes "
        f"{m['others_pct']}%, load {m['load_avg_1m']}"
    )
    print("RESULT " + json.dumps(result, separators=(",", ":")), flush=True)
    return 0 if result["missing"] == 0 and not result["errors"] else 1


if __name__ == "__main__":
    sys.exit(main())
