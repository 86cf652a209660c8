"""Speed-to-lead benchmark: webhook 200 -> ElevenLabs outbound-call request, per lead.

    .venv/bin/python ops/bench_speed_to_lead.py [--leads 1000] [--rate 50] [--partitions 8]
        [--sites 50] [--connections 64] [--warmup 5] [--log-level INFO] [--keep-topics]
        [--baseline REV | --versus RGSYNC_NAME=VALUE ...] [--rounds 2]
        [--worker-setting RGSYNC_NAME=VALUE ...]

This process runs FakeElevenLabs and FakeRealGeeks (ops/testkit/fakes, real HTTP on 127.0.0.1,
in their own thread and event loop so the sender does not delay their clocks) and a
worker subprocess with the dialer on, pointed at them (the configuration of
tests/integration/test_call_loop.py, ``dialer_env``), under a unique topic prefix/app id.
It sends ``--leads`` distinct new leads (own id, email, name and a distinct valid phone
number in a zone inside calling hours, see ``callable_phones``) over ``--sites`` sites on an
open-loop timetable at ``--rate``/s, stamps each webhook's 200 (wall clock), and matches
each recorded outbound call by ``dynamic_variables["lead_id"]``.

Why distinct phones: identity resolution merges a new lead into an earlier lead of the
same site that shares its phone when the first names do not contradict it (the household
rule, app/domain/matching/); the merged lead keeps the first lead's id and is "already called".
One shared number for every lead would measure the matcher, not the dialer.

Reported: p50/p95/p99/max of (call request arrival - webhook 200), how many leads were
called (must be all), errors (non-200 webhooks, non-200 call answers, duplicate calls,
dead letters), and a stage split from calls.context's record timestamps. Aim: p99 < 1 s.

``--baseline REV`` also runs the worker of an earlier commit (a git worktree under
var/bench/, the same .venv), alternating with this checkout's for ``--rounds`` rounds, each
run with its own topics, and reports the p50 ratio: what the dialer's safety rules cost
(issue 9: at most 20 % of the p50). ops/bench runs it with ``--worker-setting
RGSYNC_FETCH_MAX_WAIT_MS=5`` (a ``--worker-setting`` is this checkout's worker's only), the
wait of the commits it was first measured on, so that the ratio is the dialer's and not the
fetch wait's, which adds up to that much per hop. The dialer's line limit is raised for the run
(RGSYNC_DIALER_MAX_CONCURRENT_CALLS): the fake never ends a call, so with 2 lines per site
the benchmark would measure the queue, not the path.
``--versus RGSYNC_NAME=VALUE`` runs this checkout's worker with and without those settings
instead, alternating the same way, and reports each side's p99 by round.
The warm-up puts a lead on every partition first (``warmup_sites``): the run's topics are
new, and a partition's first write is slow on the broker.
The last line is ``RESULT {json}``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for entry in (str(ROOT), str(ROOT / "ops")):
    if entry not in sys.path:
        sys.path.insert(0, entry)

import phonenumbers  # noqa: E402
from bench_e2e_latency import (  # noqa: E402
    BROKER,
    WEBHOOK_PATH,
    MachineCpu,
    TopicWatcher,
    WorkerProbe,
    add_setting_arguments,
    delete_run_topics,
    fmt,
    lead_body,
    send_open_loop,
    signed_webhook,
    start_worker,
    summary_ms,
    versus_settings,
    warmup_sites,
    worker_settings,
)

from ops.testkit.dialer import callable_number, dialer_env  # noqa: E402
from ops.testkit.fakes.elevenlabs import OUTBOUND_CALL_PATH, FakeElevenLabs  # noqa: E402
from ops.testkit.fakes.realgeeks import FakeRealGeeks  # noqa: E402
from realgeeks_sync.app.domain.calling_window import local_call_window  # noqa: E402

__all__ = ["callable_phones", "main"]


class Fakes:
    """FakeElevenLabs and FakeRealGeeks served from their own thread and event loop."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True, name="fakes")
        self.el = FakeElevenLabs()  # no max_concurrent_calls: never a 429
        self.rg = FakeRealGeeks()

    def start(self) -> Fakes:
        self.thread.start()

        async def up() -> None:
            await self.el.start()
            await self.rg.start()

        asyncio.run_coroutine_threadsafe(up(), self.loop).result(30)
        return self

    def stop(self) -> None:
        async def down() -> None:
            await self.el.close()
            await self.rg.close()

        try:
            asyncio.run_coroutine_threadsafe(down(), self.loop).result(30)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)


def callable_phones(count: int, now: datetime) -> list[str]:
    """``count`` distinct valid numbers, each inside calling hours now and in 30 minutes.

    They share the zone of ``callable_number`` (tests/integration/test_call_loop.py) and
    differ in the last four digits.
    """
    base = callable_number(now, allowed=True)
    stem = base[:-4]
    phones: list[str] = []
    for k in range(10000):
        number = f"{stem}{k:04d}"
        if not phonenumbers.is_valid_number(phonenumbers.parse(number)):
            continue
        if all(local_call_window(number, now + timedelta(minutes=m)).allowed_now for m in (0, 30)):
            phones.append(number)
            if len(phones) == count:
                return phones
    raise RuntimeError(f"only {len(phones)} callable numbers under {stem}")


def _calls_by_lead(el: FakeElevenLabs) -> dict[str, list[float]]:
    calls: dict[str, list[float]] = {}
    for call in list(el.calls):
        lead = str(call.dynamic_variables.get("lead_id"))
        calls.setdefault(lead, []).append(call.received_wall)
    return calls


async def _wait_called(el: FakeElevenLabs, ids: set[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not ids <= _calls_by_lead(el).keys():
        await asyncio.sleep(0.1)


def baseline_checkout(rev: str) -> Path:
    """A worktree of ``rev`` under var/bench/ (made once), to run its worker."""
    sha = subprocess.run(
        ["git", "rev-parse", "--verify", f"{rev}^{{commit}}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    path = ROOT / "var" / "bench" / f"baseline-{sha[:12]}"
    if not (path / "app" / "cli.py").exists():
        subprocess.run(
            ["git", "worktree", "add", "--force", "--detach", str(path), sha],
            cwd=ROOT,
            capture_output=True,
            check=True,
        )
    return path


async def run(
    args: argparse.Namespace, root: Path = ROOT, settings: dict[str, str] | None = None
) -> dict[str, Any]:
    """One run; ``settings``: more RGSYNC_ settings of its worker."""
    settings = settings or {}
    now = datetime.now(UTC)
    phones = callable_phones(args.leads + max(args.warmup, args.partitions), now)
    sites = [str(uuid.uuid4()) for _ in range(args.sites)]
    run_dir = Path(tempfile.mkdtemp(prefix="bench-stl-"))
    fakes = Fakes().start()
    worker = None
    watchers: list[TopicWatcher] = []
    try:
        worker = start_worker(
            args.broker,
            run_dir,
            partitions=args.partitions,
            log_level=args.log_level,
            root=root,
            RGSYNC_DIALER_MAX_CONCURRENT_CALLS=str(10 * (args.leads + args.warmup)),
            **dialer_env(fakes.rg, fakes.el),
            **settings,
        )
        prefix = worker.env["RGSYNC_TOPIC_PREFIX"]
        probe = WorkerProbe(worker.proc.pid if worker.proc else 0).start()
        context = TopicWatcher(
            args.broker,
            prefix + "calls.context",
            lambda v: v.get("lead_id") if v.get("schema") == "call_context.v1" else None,
        )
        dead = TopicWatcher(args.broker, prefix + "sync.deadletter", lambda v: None)
        watchers = [context, dead]
        for w in watchers:
            w.start()
        for w in watchers:
            await asyncio.to_thread(w.ready.wait, 60)
        url = worker.url + WEBHOOK_PATH

        def item(n: int, tag: str, site: str | None = None) -> tuple[str, bytes, dict[str, str]]:
            lead = tag + uuid.uuid4().hex[: 32 - len(tag)]
            site = site or sites[n % len(sites)]
            body, headers = signed_webhook(lead_body(site, lead, n, phones[n]))
            return lead, body, headers

        # Warm-up: the first calls open the dialer's HTTP session and connections, and every
        # partition takes its first writes (warmup_sites: the broker's first write to a
        # partition is slow, and the run's topics are new).
        warm = [
            item(args.leads + n, "warm", site)
            for n, site in enumerate(
                warmup_sites(sites, args.partitions, args.warmup) if args.warmup > 0 else []
            )
        ]
        t = time.monotonic()
        if warm:
            await send_open_loop(url, warm, rate=5, connections=8)
            await _wait_called(fakes.el, {w[0] for w in warm}, 90)
        warm_s = time.monotonic() - t
        warm_ids = {w[0] for w in warm}
        warm_called = len(warm_ids & _calls_by_lead(fakes.el).keys())
        print(
            f"worker pid {probe.pid} prefix {prefix}; fake ElevenLabs {fakes.el.url}; "
            f"phones {phones[0]}..{phones[-1]}; warm-up {warm_called}/{len(warm)} called in "
            f"{warm_s:.1f}s; sending {args.leads} leads at {args.rate:g}/s",
            flush=True,
        )

        items = [item(n, "") for n in range(args.leads)]
        cpu0, wall0 = probe.cpu_s(), time.monotonic()
        machine = MachineCpu().start()
        report = await send_open_loop(url, items, rate=args.rate, connections=args.connections)
        ok_ids = {r.ident for r in report.sent if r.outcome == "200"}
        await _wait_called(fakes.el, ok_ids, args.call_timeout)
        await asyncio.sleep(1.0)  # room for a duplicate call to show up
        cpu1, wall1 = probe.cpu_s(), time.monotonic()
        machine_cpu = machine.stop(cpu1 - cpu0)
        rss_end = probe.rss_kb()
        probe.stop()
    finally:
        for w in watchers:
            w.stop()
        if worker is not None:
            worker.stop()
        fakes.stop()
        shutil.rmtree(run_dir / "data", ignore_errors=True)
    if not args.keep_topics and worker is not None:
        delete_run_topics(args.broker, worker.env["RGSYNC_TOPIC_PREFIX"])

    calls = _calls_by_lead(fakes.el)
    outcomes = Counter(r.outcome for r in report.sent)
    by_id = {r.ident: r for r in report.sent}
    called = [i for i in ok_ids if i in calls]
    latency = [calls[i][0] - by_id[i].answered_wall for i in called]
    from_send = [calls[i][0] - by_id[i].due_wall for i in called]
    with_ctx = [i for i in called if i in context.kafka_ts]
    to_context = [context.kafka_ts[i] - by_id[i].answered_wall for i in with_ctx]
    context_to_call = [calls[i][0] - context.kafka_ts[i] for i in with_ctx]
    call_statuses = Counter(r.status for r in fakes.el.requests if r.path == OUTBOUND_CALL_PATH)
    duplicates = sum(len(v) - 1 for v in calls.values() if len(v) > 1)
    errors: dict[str, int] = {f"webhook_{k}": v for k, v in outcomes.items() if k != "200"}
    errors.update({f"call_http_{k}": v for k, v in call_statuses.items() if k != 200})
    if duplicates:
        errors["duplicate_calls"] = duplicates
    if dead.records:
        errors["deadletters"] = dead.records
    if args.dump:
        with open(args.dump, "w") as fh:
            fh.write("i,due,answered,context_ts,context_seen,call\n")
            for n, r in enumerate(report.sent):
                cols: list[float | None] = [
                    r.due_wall,
                    r.answered_wall,
                    context.kafka_ts.get(r.ident),
                    context.arrivals.get(r.ident),
                    calls[r.ident][0] if r.ident in calls else None,
                ]
                fh.write(f"{n}," + ",".join("" if c is None else f"{c:.4f}" for c in cols) + "\n")
    s = summary_ms(latency)
    return {
        "bench": "speed_to_lead",
        "leads": args.leads,
        "rate": args.rate,
        "partitions": args.partitions,
        "sites": args.sites,
        "webhooks_ok": outcomes.get("200", 0),
        "called": len(called),
        "not_called": len(ok_ids) - len(called),
        "errors": errors,
        "call_after_200_ms": s,
        "p99_under_1s": s["p99"] is not None and s["p99"] < 1000 and len(called) == args.leads,
        "call_after_send_ms": summary_ms(from_send),
        "http_200_after_send_ms": summary_ms(
            [r.answered_wall - r.due_wall for r in report.sent if r.outcome == "200"]
        ),
        "context_written_after_200_ms": summary_ms(to_context),
        "call_after_context_written_ms": summary_ms(context_to_call),
        "achieved_rate": round(outcomes.get("200", 0) / report.window_s, 1)
        if report.window_s
        else None,
        "max_send_lateness_ms": round(report.max_lateness_s * 1e3, 1),
        "worker_cpu_pct": round(100 * (cpu1 - cpu0) / max(wall1 - wall0, 1e-9), 1),
        "worker_rss_mb_end": round(rss_end / 1024, 1),
        "machine_cpu": machine_cpu,
        "worker_log": str(run_dir / "worker.log"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--leads", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=50.0, help="webhooks per second")
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--sites", type=int, default=50)
    parser.add_argument("--connections", type=int, default=64, help="client concurrency bound")
    parser.add_argument(
        "--warmup",
        type=int,
        default=5,
        help="uncounted leads called first, at least one per partition (0: none)",
    )
    parser.add_argument(
        "--call-timeout",
        type=float,
        default=90.0,
        help="seconds to wait for the last calls after the last webhook",
    )
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--broker", default=BROKER)
    parser.add_argument("--keep-topics", action="store_true")
    parser.add_argument("--dump", help="write per-lead times (CSV, wall clock) here")
    parser.add_argument("--baseline", help="also run this commit's worker, side by side")
    parser.add_argument(
        "--rounds", type=int, default=2, help="runs of each with --baseline or --versus"
    )
    add_setting_arguments(parser, "this checkout's", versus=True)
    args = parser.parse_args(argv)
    if args.baseline and args.versus:
        parser.error("--baseline and --versus: one comparison at a time")
    own = worker_settings(args)
    sides: list[tuple[str, Path, dict[str, str]]] = []
    if args.baseline:
        sides = [("baseline", baseline_checkout(args.baseline), {}), ("current", ROOT, own)]
    elif args.versus:
        sides = [("versus", ROOT, versus_settings(args)), ("current", ROOT, own)]
    if sides:
        runs: dict[str, list[dict[str, Any]]] = {label: [] for label, _, _ in sides}
        for n in range(args.rounds):
            # Alternate the order so a slow neighbour does not always hit the same side.
            for label, root, settings in sides if n % 2 == 0 else sides[::-1]:
                runs[label].append(asyncio.run(run(args, root, settings)))
                p50 = runs[label][-1]["call_after_200_ms"]["p50"]
                p99 = runs[label][-1]["call_after_200_ms"]["p99"]
                print(f"round {n + 1} {label}: p50 {p50} ms, p99 {p99} ms", flush=True)
        other = sides[0][0]
        r = dict(runs["current"][-1])
        r["rounds"] = {
            label: [x["call_after_200_ms"] for x in results] for label, results in runs.items()
        }
        r[other] = args.baseline or args.versus
        r["p50_ratio_by_round"] = [
            round(c["call_after_200_ms"]["p50"] / b["call_after_200_ms"]["p50"], 3)
            for c, b in zip(runs["current"], runs[other], strict=True)
            if b["call_after_200_ms"]["p50"]
        ]
        r["p99_by_round"] = {
            label: [x["call_after_200_ms"]["p99"] for x in results]
            for label, results in runs.items()
        }
        # This checkout's errors decide the exit code; the other side's are shown apart.
        r["errors_by_side"] = {
            label: dict(sum((Counter(x["errors"]) for x in results), Counter()))
            for label, results in runs.items()
        }
        r["errors"] = r["errors_by_side"]["current"]
        r["p99_under_1s"] = all(x["p99_under_1s"] for x in runs["current"])
    else:
        r = asyncio.run(run(args, ROOT, own))
    print()
    print(
        f"speed to lead: {args.leads} leads at {args.rate:g}/s over {args.sites} sites, "
        f"{args.partitions} partitions"
    )
    print(
        f"  webhooks 200 {r['webhooks_ok']}/{args.leads}  called {r['called']}  "
        f"not called {r['not_called']}  errors {r['errors'] or 'none'}  "
        f"achieved {r['achieved_rate']}/s"
    )
    print(f"  call request after 200:  {fmt(r['call_after_200_ms'])}")
    print(f"  200 after send (due):    {fmt(r['http_200_after_send_ms'])}")
    print(f"    200 -> calls.context written: {fmt(r['context_written_after_200_ms'])}")
    print(f"    context written -> call:      {fmt(r['call_after_context_written_ms'])}")
    if "p50_ratio_by_round" in r:
        if args.baseline:
            aim = " (aim <= 1.2)"  # issue 9: what the dialer's rules may cost
            print(f"  p50 against {args.baseline} by round: {r['p50_ratio_by_round']}{aim}")
        else:
            against = " ".join(args.versus)
            print(f"  p50 against {against} by round: {r['p50_ratio_by_round']}")
        for label, p99s in r["p99_by_round"].items():
            print(f"  p99 by round, {label}: {p99s} ms")
    print(
        f"  worker CPU {r['worker_cpu_pct']}%  RSS {r['worker_rss_mb_end']} MB  "
        f"aim p99 < 1 s: {'met' if r['p99_under_1s'] else 'MISSED'}"
    )
    m = r["machine_cpu"]
    print(
        f"  machine: {m['cpus']} CPUs {m['busy_pct']}% busy, other processes "
        f"{m['others_pct']}%, load {m['load_avg_1m']}"
    )
    print("RESULT " + json.dumps(r, separators=(",", ":")), flush=True)
    return 0 if r["p99_under_1s"] and not r["errors"] else 1


if __name__ == "__main__":
    sys.exit(main())
