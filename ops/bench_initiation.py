"""Pre-call webhook benchmark: POST /webhooks/elevenlabs/initiation with 100,000 leads known.

    .venv/bin/python ops/bench_initiation.py [--leads 100000] [--sites 20] [--rate 50]
        [--duration 60] [--known 0.8] [--busy-rate 50] [--partitions 8] [--keep-topics]

A worker subprocess (dialer off) runs under a unique topic prefix and app id against the
real broker. Its caller directory is filled the way production fills it: ``--leads``
caller.v1 records (built by app/domain/callers.py from real call contexts of synthetic
leads, 1 % of the numbers shared by two sites) are written to the run's own
``sync.callers`` topic, which the worker reads into its directory; the run waits until
the last lead answers. Then pre-call webhooks (``--known`` of them from a known caller,
the rest from numbers nobody has) are sent on an open-loop timetable at ``--rate``/s for
``--duration`` s, three times, side by side: to the idle worker; to the worker while it
also takes ``--busy-rate`` Real Geeks webhooks a second (each a new lead: identity
resolution, contexts, caller records); and to a ``realgeeks-sync ingress`` process (its
own copy of the directory, no agents) while the worker takes the same load. Latency is
from a request's due time to its answer.

Reported: p50/p95/p99/max per phase, answers by kind (known with the right lead, defaults,
other), how long the directory took to read the records, the worker's RSS before and
after, and the directory's size on disk. Aim: p99 < 50 ms at 50 req/s. The last line is
``RESULT {json}``; the run's topics are deleted unless ``--keep-topics``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
for entry in (str(ROOT), str(ROOT / "ops")):
    if entry not in sys.path:
        sys.path.insert(0, entry)

from bench_e2e_latency import (  # noqa: E402
    BROKER,
    WEBHOOK_PATH,
    WorkerProbe,
    delete_run_topics,
    fmt,
    lead_body,
    send_open_loop,
    signed_webhook,
    start_worker,
    summary_ms,
)
from confluent_kafka import Producer  # noqa: E402

from ops.testkit.support import IngressProcess, free_port  # noqa: E402
from realgeeks_sync.app.domain.call_context import build_call_context  # noqa: E402
from realgeeks_sync.app.domain.callers import caller_record  # noqa: E402
from realgeeks_sync.app.domain.dialing.optouts import e164_or_none  # noqa: E402
from realgeeks_sync.app.streaming.partitioning import site_partition  # noqa: E402

__all__ = ["main"]

PATH = "/webhooks/elevenlabs/initiation"
SECRET = "bench-initiation-secret"
AGENT = "agent_bench"
AREAS = ("212", "312", "415", "503", "617", "702", "808", "917")


def numbers(count: int, seed: int) -> list[str]:
    """``count`` distinct valid US numbers (area, exchange 200-999, line), shuffled."""
    rng = random.Random(seed)
    seen: set[str] = set()
    while len(seen) < count:
        number = f"+1{rng.choice(AREAS)}{rng.randint(200, 999)}{rng.randint(0, 9999):04d}"
        if number not in seen and e164_or_none(number) == number:
            seen.add(number)
    ordered = sorted(seen)
    rng.shuffle(ordered)
    return ordered


def caller_records(leads: int, sites: list[str], phones: list[str]) -> list[tuple[str, dict]]:
    """(key, caller.v1 value) for each lead: the record normalize_leads would write."""
    now = datetime.now(UTC)
    out = []
    for n in range(leads):
        site, lead = sites[n % len(sites)], f"lead{n:07d}"
        own = [phones[n]]
        if n % 100 == 0 and n + 1 < leads:
            own.append(phones[n + 1])  # 1 %: a number the next lead (another site) has too
        context = build_call_context(
            site_uuid=site,
            lead_id=lead,
            lead={"first_name": "Ana", "last_name": f"L{n}", "phone": own[0], "role": "Buyer"},
            activities=[],
            do_not_call=False,
            now=now,
            event_id=f"bench-{n}",
        )
        out.append((f"{site}:{lead}", caller_record(context, own)))
    return out


def seed_callers(broker: str, topic: str, partitions: int, records: list[tuple[str, dict]]) -> None:
    producer = Producer(
        {"bootstrap.servers": broker, "linger.ms": 50, "acks": "all", "log_level": 3}
    )
    for key, value in records:
        producer.produce(
            topic,
            key=key.encode(),
            value=json.dumps(value, separators=(",", ":")).encode(),
            partition=site_partition(key.split(":", 1)[0], partitions),
        )
        producer.poll(0)
    left = producer.flush(120)
    if left:
        raise RuntimeError(f"{left} caller records not delivered")


@dataclass
class Answer:
    due: float
    answered: float = 0.0
    status: int = 0
    lead_id: str | None = None
    expected: str | None = None


async def ask(session: aiohttp.ClientSession, url: str, number: str) -> tuple[int, str | None]:
    body = {
        "caller_id": number,
        "agent_id": AGENT,
        "called_number": "+15555550199",
        "call_sid": "CA" + uuid.uuid4().hex,
    }
    async with session.post(
        url, json=body, headers={"Authorization": f"Bearer {SECRET}"}
    ) as response:
        text = await response.text()
    if response.status != 200:
        return response.status, None
    variables = json.loads(text).get("dynamic_variables") or {}
    return 200, str(variables.get("lead_id") or "") or None


async def load(
    url: str, plan: list[tuple[str, str | None]], rate: float, connections: int
) -> list[Answer]:
    """Send ``plan`` (number, expected lead) on an open-loop timetable at ``rate``/s."""
    loop = asyncio.get_running_loop()
    connector = aiohttp.TCPConnector(limit=connections)
    answers: list[Answer] = []
    async with aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=10)
    ) as session:

        async def one(answer: Answer, number: str) -> None:
            try:
                answer.status, answer.lead_id = await ask(session, url, number)
            except (aiohttp.ClientError, TimeoutError):
                answer.status = -1
            answer.answered = loop.time()

        t0 = loop.time() + 0.05
        tasks = []
        for i, (number, expected) in enumerate(plan):
            due = t0 + i / rate
            if loop.time() < due:
                await asyncio.sleep(due - loop.time())
            answer = Answer(due=due, expected=expected)
            answers.append(answer)
            tasks.append(asyncio.create_task(one(answer, number)))
        await asyncio.gather(*tasks)
    return answers


def _kind(a: Answer) -> str:
    if a.status != 200:
        return "error"
    if a.expected == "?":
        return "shared"
    if a.expected and a.lead_id == a.expected:
        return "known"
    if a.expected is None and a.lead_id is None:
        return "defaults"
    return "wrong"


def phase_result(answers: list[Answer]) -> dict[str, Any]:
    kinds = Counter(_kind(a) for a in answers)
    return {
        "latency_ms": summary_ms([a.answered - a.due for a in answers if a.status == 200]),
        "answers": dict(kinds),
    }


async def wait_known(url: str, number: str, lead: str, timeout: float) -> float:
    started = time.monotonic()
    async with aiohttp.ClientSession() as session:
        while time.monotonic() - started < timeout:
            try:
                _status, found = await ask(session, url, number)
            except aiohttp.ClientError:
                found = None
            if found == lead:
                return time.monotonic() - started
            await asyncio.sleep(0.5)
    raise TimeoutError(f"the directory did not learn {lead} within {timeout} s")


def dir_size_mb(path: Path) -> float:
    return round(sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20, 1)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(7)
    sites = [str(uuid.uuid4()) for _ in range(args.sites)]
    count = int(args.rate * args.duration)
    hooks = int(args.busy_rate * args.duration)
    phones = numbers(args.leads + args.leads // 4 + 2 * hooks, seed=11)
    known_phones = phones[: args.leads]
    unknown_phones = phones[args.leads : args.leads + args.leads // 4]
    webhook_phones = phones[args.leads + args.leads // 4 :]
    records = caller_records(args.leads, sites, known_phones)
    run_dir = Path(tempfile.mkdtemp(prefix="bench-initiation-"))
    worker = ingress = None
    try:
        worker = start_worker(
            args.broker,
            run_dir,
            partitions=args.partitions,
            log_level="WARNING",
            RGSYNC_ELEVENLABS_INITIATION_SECRETS=SECRET,
            RGSYNC_ELEVENLABS_AGENT_ID=AGENT,
            RGSYNC_RECONCILE_INTERVAL_S="0",
        )
        prefix = worker.env["RGSYNC_TOPIC_PREFIX"]
        probe = WorkerProbe(worker.proc.pid if worker.proc else 0).start()
        url = worker.url + PATH
        rss_before = probe.rss_kb()
        t = time.monotonic()
        await asyncio.to_thread(
            seed_callers, args.broker, prefix + "sync.callers", args.partitions, records
        )
        seeded_s = time.monotonic() - t
        _key, last = records[-1]
        learned_s = await wait_known(url, last["phones"][0], last["lead_id"], timeout=600)
        rss_known = probe.rss_kb()
        print(
            f"worker pid {probe.pid} prefix {prefix}: {args.leads} caller records written in "
            f"{seeded_s:.1f} s, known to the directory {learned_s:.1f} s later",
            flush=True,
        )
        # The same settings on a port of its own: the pre-call webhook without the agents.
        ingress = IngressProcess(
            env={**worker.env, "RGSYNC_INGRESS_PORT": str(free_port())},
            log_path=run_dir / "ingress.log",
        ).start(wait=True, timeout=120)
        ingress_url = ingress.url + PATH
        await wait_known(ingress_url, last["phones"][0], last["lead_id"], timeout=600)
        # Each lead is known by its own number; a number two leads share may answer either
        # (the choice rule decides): asked, not counted as right or wrong.
        shared = {r["phones"][1] for _k, r in records if len(r["phones"]) > 1}
        owner = {r["phones"][0]: r["lead_id"] for _k, r in records}

        def plan(count: int) -> list[tuple[str, str | None]]:
            out: list[tuple[str, str | None]] = []
            for _ in range(count):
                if rng.random() < args.known:
                    number = rng.choice(known_phones)
                    out.append((number, "?" if number in shared else owner[number]))
                else:
                    out.append((rng.choice(unknown_phones), None))
            return out

        def webhooks(offset: int) -> list[tuple[str, bytes, dict[str, str]]]:
            return [
                (
                    f"w{n}",
                    *signed_webhook(
                        lead_body(sites[n % len(sites)], uuid.uuid4().hex, n, webhook_phones[n])
                    ),
                )
                for n in range(offset, offset + hooks)
            ]

        await load(url, plan(min(200, count)), args.rate, args.connections)  # warm-up
        await load(ingress_url, plan(min(200, count)), args.rate, args.connections)
        phases: dict[str, Any] = {}
        phases["idle, worker"] = phase_result(
            await load(url, plan(count), args.rate, args.connections)
        )
        for n, (name, target) in enumerate(
            (("busy, worker", url), ("busy, ingress process", ingress_url))
        ):
            answers, sent = await asyncio.gather(
                load(target, plan(count), args.rate, args.connections),
                send_open_loop(
                    worker.url + WEBHOOK_PATH,
                    webhooks(n * hooks),
                    rate=args.busy_rate,
                    connections=64,
                ),
            )
            phases[name] = phase_result(answers)
            phases[name]["webhooks_200"] = sum(1 for r in sent.sent if r.outcome == "200")
        rss_after = probe.rss_kb()
        probe.stop()
        directory = run_dir / "data" / "caller-directory" / "worker"
        size = dir_size_mb(directory) if directory.exists() else None
    finally:
        if ingress is not None:
            ingress.stop()
        if worker is not None:
            worker.stop()
        shutil.rmtree(run_dir / "data", ignore_errors=True)
    if not args.keep_topics and worker is not None:
        delete_run_topics(args.broker, worker.env["RGSYNC_TOPIC_PREFIX"])
    p99s = [p["latency_ms"]["p99"] for p in phases.values()]
    return {
        "bench": "initiation",
        "leads": args.leads,
        "sites": args.sites,
        "rate": args.rate,
        "duration_s": args.duration,
        "known_share": args.known,
        "busy_webhook_rate": args.busy_rate,
        "phases": phases,
        "callers_written_s": round(seeded_s, 1),
        "directory_caught_up_s": round(learned_s, 1),
        "directory_disk_mb": size,
        "worker_rss_mb": {
            "before_records": round(rss_before / 1024, 1),
            "records_read": round(rss_known / 1024, 1),
            "end": round(rss_after / 1024, 1),
        },
        "p99_under_50ms": all(p is not None and p < 50 for p in p99s),
        "worker_log": str(run_dir / "worker.log"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--leads", type=int, default=100_000)
    parser.add_argument("--sites", type=int, default=20)
    parser.add_argument("--rate", type=float, default=50.0, help="pre-call webhooks a second")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds per phase")
    parser.add_argument("--known", type=float, default=0.8, help="share from known callers")
    parser.add_argument("--busy-rate", type=float, default=50.0, help="webhooks/s, busy phase")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--broker", default=BROKER)
    parser.add_argument("--keep-topics", action="store_true")
    args = parser.parse_args(argv)
    r = asyncio.run(run(args))
    print()
    print(f"pre-call webhook: {args.leads} leads over {args.sites} sites, {args.rate:g} req/s")
    for name, phase in r["phases"].items():
        print(f"  {name:22s} {fmt(phase['latency_ms'])}  answers {phase['answers']}")
    print(
        f"  directory: {r['directory_caught_up_s']} s to read the records, "
        f"{r['directory_disk_mb']} MB on disk; worker RSS {r['worker_rss_mb']}"
    )
    print(f"  aim p99 < 50 ms: {'met' if r['p99_under_50ms'] else 'MISSED'}")
    print("RESULT " + json.dumps(r, separators=(",", ":")), flush=True)
    wrong = sum(
        p["answers"].get("wrong", 0) + p["answers"].get("error", 0) for p in r["phases"].values()
    )
    return 0 if r["p99_under_50ms"] and not wrong else 1


if __name__ == "__main__":
    sys.exit(main())
