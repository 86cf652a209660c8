"""HTTP load generator for signed Real Geeks webhooks (aiohttp client, keep-alive).

Two phases, both printing one JSON object on stdout:

* ``closed``: N connections, each sending its next request as soon as the previous one is
  answered, for a warm-up and then a measured window (max throughput).
* ``open``: requests on a fixed timetable (``rate`` per second) whatever the answers do;
  latency counts from the *scheduled* send time, so a stalled server cannot hide its
  queueing (no coordinated omission).

Every request is a distinct ~1 KB ``created`` lead with its own id and message id, signed
with ``sign_realgeeks``. Only 127.0.0.1 is accepted as a target. Run on its own:

    .venv/bin/python ops/loadgen.py --url http://127.0.0.1:6066/webhooks/realgeeks \\
        --secret s3cret --phase open --rate 500 --duration 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from realgeeks_sync.app.ingress.signatures import sign_realgeeks

__all__ = ["PhaseResult", "WebhookFactory", "percentile_ms", "run_closed", "run_open"]

_CLK_TCK = os.sysconf("SC_CLK_TCK")
_SITES = [str(uuid.UUID(int=0x5EAD6DD1_2CB9_4F80_80FC_5716B05C9000 + i)) for i in range(16)]
_FIRST = ["Jack", "Maria", "Kenji", "Leilani", "Noah", "Priya", "Oscar", "Hana"]
_LAST = ["Johnson", "Kealoha", "Tanaka", "Silva", "Nguyen", "Okafor", "Berg", "Costa"]


class WebhookFactory:
    """Distinct, realistic signed Real Geeks ``created`` webhooks (body, headers)."""

    def __init__(self, secret: str, seed: str | None = None) -> None:
        self.secret = secret
        self.seed = seed or uuid.uuid4().hex[:8]
        self.count = 0

    def next(self) -> tuple[bytes, dict[str, str]]:
        """The next webhook: a ~1 KB JSON body and its X-Lead-Router-* headers."""
        n = self.count
        self.count += 1
        lead_id = uuid.uuid4().hex
        first, last = _FIRST[n % len(_FIRST)], _LAST[(n // len(_FIRST)) % len(_LAST)]
        now = time.time()
        created = (
            time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1e6):06d}Z"
        )
        lead: dict[str, Any] = {
            "action": "created",
            "id": lead_id,
            "site_uuid": _SITES[n % len(_SITES)],
            "site_domain": "www.mysite.com",
            "created": created,
            "source": "Website Property Search",
            "role": "Buyer",
            "first_name": first,
            "last_name": last,
            "email": f"{first.lower()}.{last.lower()}.{self.seed}{n}@mail.com",
            "phone": f"808-{(n // 10000) % 1000:03d}-{n % 10000:04d}",
            "agent_name": "Ben Harper",
            "agent_email": "ben@mail.com",
            "agent_id": "14187",
            "partner_id": f"bench-{self.seed}-{n}",
            "region": "Honolulu",
            "notes": "Looking for a 3 bed / 2 bath near good schools, budget around 900k.",
            "activities": [
                {
                    "source": "Website Property Search",
                    "type": "visited",
                    "description": "First visit (initial sign-up)",
                    "created": created,
                },
                {
                    "source": "Website Property Search",
                    "type": "search_performed",
                    "description": "Honolulu, 3+ beds, $700k-$950k",
                    "created": created,
                },
                {
                    "source": "Website Property Search",
                    "type": "saved_search_added",
                    "created": created,
                },
            ],
        }
        body = json.dumps(lead, separators=(", ", ": ")).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Lead-Router-Action": "created",
            "X-Lead-Router-Message-Id": f"bench-{self.seed}-{n}-{lead_id[:12]}",
            "X-Lead-Router-Signature": sign_realgeeks(self.secret, body),
        }
        return body, headers


def percentile_ms(ordered: list[float], p: float) -> float | None:
    """Nearest-rank percentile of sorted latencies in seconds, in ms (None when empty)."""
    if not ordered:
        return None
    rank = min(len(ordered) - 1, max(0, int(p / 100 * len(ordered) + 0.5) - 1))
    return round(ordered[rank] * 1e3, 2)


def _cpu_seconds(pid: int, main_thread_only: bool = False) -> float | None:
    """utime+stime of a process (all its threads, or only its main thread, where an
    asyncio server runs its event loop), from /proc; None when unreadable."""
    path = f"/proc/{pid}/task/{pid}/stat" if main_thread_only else f"/proc/{pid}/stat"
    try:
        raw = Path(path).read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


@dataclass
class PhaseResult:
    """What one phase measured (times in seconds unless the name says ms)."""

    phase: str
    window_s: float
    sent: int = 0
    ok: int = 0
    all_ok: int = 0  # 200s including the warm-up (what the server must have put on Kafka)
    errors: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    target_rate: float | None = None
    max_lateness_s: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)

    def summary(self, with_latencies: bool = False) -> dict[str, Any]:
        """Counts, rate and latency percentiles; raw latencies (ms) too if asked (merging)."""
        lat = sorted(self.latencies)

        return {
            "phase": self.phase,
            "window_s": round(self.window_s, 3),
            "sent": self.sent,
            "ok": self.ok,
            "all_ok": self.all_ok,
            "errors": sum(self.errors.values()),
            "error_kinds": dict(self.errors),
            "rps": round(self.ok / self.window_s, 1) if self.window_s else 0.0,
            "target_rate": self.target_rate,
            "p50_ms": percentile_ms(lat, 50),
            "p90_ms": percentile_ms(lat, 90),
            "p99_ms": percentile_ms(lat, 99),
            "max_ms": round(lat[-1] * 1e3, 2) if lat else None,
            "max_send_lateness_ms": round(self.max_lateness_s * 1e3, 2),
            "cpu_pct": self.cpu,
            **({"latencies_ms": [round(x * 1e3, 3) for x in lat]} if with_latencies else {}),
        }


def _machine_busy_seconds() -> float | None:
    """CPU seconds all cores spent busy (not idle or iowait) since boot, from /proc/stat."""
    try:
        with open("/proc/stat") as fh:
            ticks = [int(x) for x in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    return (sum(ticks[:8]) - ticks[3] - ticks[4]) / _CLK_TCK


class _CpuProbe:
    """CPU used by named processes (and the whole machine) between start() and stop(),
    as % of one core."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = {"loadgen": os.getpid(), **pids}
        self._t0 = 0.0
        self._c0: dict[str, float | None] = {}

    def _sample(self) -> dict[str, float | None]:
        sample = {name: _cpu_seconds(pid) for name, pid in self.pids.items()}
        if "server" in self.pids:  # its event loop's thread alone: the single-core limit
            sample["server_main_thread"] = _cpu_seconds(self.pids["server"], True)
        sample["machine"] = _machine_busy_seconds()
        return sample

    def start(self) -> None:
        self._t0, self._c0 = time.monotonic(), self._sample()

    def stop(self) -> dict[str, float]:
        elapsed, c1 = time.monotonic() - self._t0, self._sample()
        out: dict[str, float] = {}
        for name, end in c1.items():
            begin = self._c0.get(name)
            if begin is not None and end is not None and elapsed > 0:
                out[name] = round(100 * (end - begin) / elapsed, 1)
        return out


def _session(connections: int, timeout_s: float) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(
        limit=connections, limit_per_host=connections, ttl_dns_cache=None
    )
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=timeout_s),
        auto_decompress=False,
    )


async def _post(session: aiohttp.ClientSession, url: str, factory: WebhookFactory) -> str:
    body, headers = factory.next()
    try:
        async with session.post(url, data=body, headers=headers) as resp:
            await resp.read()
            return "200" if resp.status == 200 else f"http_{resp.status}"
    except TimeoutError:
        return "timeout"
    except aiohttp.ClientError as exc:
        return type(exc).__name__


async def run_closed(
    url: str,
    factory: WebhookFactory,
    *,
    connections: int,
    warmup_s: float,
    duration_s: float,
    pids: dict[str, int],
    timeout_s: float = 10.0,
) -> PhaseResult:
    """Max throughput: ``connections`` loops back to back; only the window after warm-up counts."""
    result = PhaseResult("closed", duration_s)
    probe = _CpuProbe(pids)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    window_start, window_end = t0 + warmup_s, t0 + warmup_s + duration_s
    loop.call_at(window_start, probe.start)

    async def one_connection(session: aiohttp.ClientSession) -> None:
        while (started := loop.time()) < window_end:
            outcome = await _post(session, url, factory)
            done = loop.time()
            result.all_ok += outcome == "200"
            if window_start <= done < window_end:
                result.sent += 1
                if outcome == "200":
                    result.ok += 1
                    result.latencies.append(done - started)
                else:
                    result.errors[outcome] += 1

    async with _session(connections, timeout_s) as session:
        await asyncio.gather(*(one_connection(session) for _ in range(connections)))
    result.cpu = probe.stop()
    return result


async def run_open(
    url: str,
    factory: WebhookFactory,
    *,
    rate: float,
    connections: int,
    warmup_s: float,
    duration_s: float,
    pids: dict[str, int],
    timeout_s: float = 10.0,
) -> PhaseResult:
    """Fixed rate: request i is due at t0 + i/rate; latency is measured from that due time.

    Requests due in the warm-up are sent but not counted.
    """
    result = PhaseResult("open", duration_s, target_rate=rate)
    probe = _CpuProbe(pids)
    loop = asyncio.get_running_loop()
    first_counted = int(rate * warmup_s)
    total = first_counted + int(rate * duration_s)
    tasks: list[asyncio.Task[None]] = []

    async def one_request(session: aiohttp.ClientSession, due: float, counted: bool) -> None:
        outcome = await _post(session, url, factory)
        done = loop.time()
        result.all_ok += outcome == "200"
        if not counted:
            return
        result.sent += 1
        if outcome == "200":
            result.ok += 1
            result.latencies.append(done - due)
        else:
            result.errors[outcome] += 1

    async with _session(connections, timeout_s) as session:
        t0 = loop.time() + 0.01
        measured_from = t0 + first_counted / rate
        loop.call_at(measured_from, probe.start)
        for i in range(total):
            due = t0 + i / rate
            now = loop.time()
            if now < due:
                await asyncio.sleep(due - now)
                now = loop.time()
            if i >= first_counted:
                result.max_lateness_s = max(result.max_lateness_s, now - due)
            tasks.append(asyncio.create_task(one_request(session, due, i >= first_counted)))
        await asyncio.gather(*tasks)
        last_done = loop.time()
        result.cpu = probe.stop()
    # Achieved rate over the schedule, or longer when answers trailed it.
    result.window_s = max(duration_s, last_done - measured_from)
    return result


def _check_local(url: str) -> None:
    host = urlsplit(url).hostname
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit(f"loadgen: refusing non-local target {host!r}")


def main(argv: list[str] | None = None) -> None:
    """Run one phase and print its summary as JSON."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--url", required=True)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--phase", choices=("closed", "open"), required=True)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--timeout", type=float, default=10.0)
    parser.add_argument(
        "--wait-go",
        action="store_true",
        help="print 'ready', then start when a line arrives on stdin (syncs generators)",
    )
    parser.add_argument(
        "--dump-latencies", action="store_true", help="include every latency (ms) in the JSON"
    )
    parser.add_argument(
        "--cpu-pid",
        action="append",
        default=[],
        metavar="NAME=PID",
        help="also report CPU%% of this process over the measured window",
    )
    args = parser.parse_args(argv)
    _check_local(args.url)
    pids = {name: int(pid) for name, _, pid in (p.partition("=") for p in args.cpu_pid)}
    factory = WebhookFactory(args.secret)
    if args.phase == "closed":
        coro = run_closed(
            args.url,
            factory,
            connections=args.connections,
            warmup_s=args.warmup,
            duration_s=args.duration,
            pids=pids,
            timeout_s=args.timeout,
        )
    else:
        coro = run_open(
            args.url,
            factory,
            rate=args.rate,
            connections=args.connections,
            warmup_s=args.warmup,
            duration_s=args.duration,
            pids=pids,
            timeout_s=args.timeout,
        )
    if args.wait_go:
        print("ready", flush=True)
        sys.stdin.readline()
    result = asyncio.run(coro)
    print(json.dumps(result.summary(args.dump_latencies)))


if __name__ == "__main__":
    main()
