"""Soak: steady load for ten minutes (RGSYNC_SOAK_S); worker memory stays flat and the
sync lag stays bounded. Runs under ``ops/test --slow``."""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from ops.testkit.support import Worker, unique, worker_env
from realgeeks_sync.app.ingress.signatures import sign_realgeeks

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SOAK_S = float(os.environ.get("RGSYNC_SOAK_S", "600"))
RATE = float(os.environ.get("RGSYNC_SOAK_RATE", "50"))
# The default RocksDB budget; a smaller one (RGSYNC_SOAK_CACHE_MB=16) fills within the
# warm-up, so the whole RSS curve shows the plateau.
CACHE_MB = int(os.environ.get("RGSYNC_SOAK_CACHE_MB", "64"))


def rocksdb_memory_mb(worker: Worker) -> float:
    """The worker's shared RocksDB cache usage, from its /metrics."""
    with urllib.request.urlopen(f"{worker.url}/metrics", timeout=5) as resp:
        for line in resp.read().decode().splitlines():
            if line.startswith("realgeeks_rocksdb_memory_bytes "):
                return float(line.split()[1]) / (1024 * 1024)
    return float("nan")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def sync_lag(worker: Worker) -> float:
    with urllib.request.urlopen(f"{worker.url}/metrics", timeout=10) as resp:
        for line in resp.read().decode().splitlines():
            if line.startswith("realgeeks_sync_lag_seconds "):
                return float(line.split()[1])
    return 0.0


def test_soak_memory_flat_and_lag_bounded(kafka_bootstrap: str, tmp_path: Path) -> None:
    env = worker_env(
        kafka_bootstrap,
        tmp_path,
        RGSYNC_CLIENT_RATE_PER_S="100000",
        RGSYNC_CLIENT_BURST="100000",
        RGSYNC_LOG_LEVEL="WARNING",
        RGSYNC_ROCKSDB_CACHE_MB=str(CACHE_MB),
    )
    worker = Worker(env=env, log_path=tmp_path / "w.log").start()
    assert worker.proc is not None
    sites = [unique("site") for _ in range(20)]
    stop = threading.Event()
    sent = [0]

    def load() -> None:
        i = 0
        next_at = time.monotonic()
        while not stop.is_set():
            body = json.dumps(
                {
                    "site_uuid": sites[i % len(sites)],
                    "id": unique("l"),
                    "email": f"soak{i}@example.com",
                    "first_name": f"S{i}",
                    "source": "Web",
                }
            ).encode()
            req = urllib.request.Request(
                f"{worker.url}/webhooks/realgeeks",
                data=body,
                method="POST",
                headers={
                    "X-Lead-Router-Action": "created",
                    "X-Lead-Router-Signature": sign_realgeeks("test-secret", body),
                },
            )
            with urllib.request.urlopen(req, timeout=10):
                sent[0] += 1
            i += 1
            next_at += 1 / RATE
            time.sleep(max(0.0, next_at - time.monotonic()))

    thread = threading.Thread(target=load, daemon=True)
    thread.start()
    try:
        time.sleep(min(60.0, SOAK_S / 5))  # warm-up: caches, RocksDB memtables
        start_rss = rss_mb(worker.proc.pid)
        start_cache = rocksdb_memory_mb(worker)
        lags: list[float] = []
        trajectory: list[float] = [start_rss]
        cache_trajectory: list[float] = [start_cache]
        deadline = time.monotonic() + SOAK_S
        while time.monotonic() < deadline:
            time.sleep(10)
            lags.append(sync_lag(worker))
            trajectory.append(rss_mb(worker.proc.pid))
            cache_trajectory.append(rocksdb_memory_mb(worker))
        end_rss = rss_mb(worker.proc.pid)
        end_cache = rocksdb_memory_mb(worker)
    finally:
        stop.set()
        thread.join(timeout=15)
        worker.stop()
    print(
        f"soak: {SOAK_S:.0f}s at {RATE:.0f}/s sent={sent[0]} rss_start={start_rss:.0f}MB "
        f"rss_end={end_rss:.0f}MB max_lag={max(lags):.2f}s "
        f"rocksdb_cache={start_cache:.0f}->{end_cache:.0f}MB of {CACHE_MB}MB\n"
        f"rss every minute: {' '.join(f'{x:.0f}' for x in trajectory[::6])}\n"
        f"cache every minute: {' '.join(f'{x:.0f}' for x in cache_trajectory[::6])}"
    )
    # RocksDB's shared cache fills up to its budget by design (blocks, index/filters,
    # memtables); everything else must stay flat, and the cache within its budget.
    # RocksDB's LRU cache is not strict: pinned blocks and memtables may overshoot a little.
    assert end_cache <= CACHE_MB * 1.25 + 2
    assert end_rss - end_cache < (start_rss - start_cache) * 1.1 + 10
    assert max(lags) < 30
