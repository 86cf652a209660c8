"""Backlog benchmark: a backfill of N leads (``realgeeks-sync backfill``), start to last event.

    .venv/bin/python ops/bench_backlog.py [--leads 100000] [--sites 50] [--workers 1]
        [--partitions 8] [--baseline REV | --versus RGSYNC_NAME=VALUE ...] [--rounds 1]
        [--standby-replicas N] [--worker-setting RGSYNC_NAME=VALUE ...] [--keep-topics]

Worker subprocesses (dialer off, their own topic prefix and app id) run first; then a CSV
export of ``--leads`` distinct leads over ``--sites`` sites goes through the real backfill
command, which puts every row on ``realgeeks.webhooks.raw`` as fast as the broker takes
them. A consumer thread counts the lead events on ``leads.normalized``. Reported:

- minutes from the backfill's start to the last lead event, and lead events per second
  (a worker catching up after an outage, a portal import: throughput, not latency);
- CPU milliseconds per webhook of the worker processes (utime + stime of all their
  threads, from /proc): far less sensitive to the machine's other tenants than rates;
- with ``--workers 2``, each worker's CPU and partitions: the CPU per webhook of the pair
  against one worker shows whether splitting the work costs anything;
- with ``--baseline REV``, the same run with the worker of an earlier commit (a git
  worktree under var/bench/), rounds interleaved, for a ratio measured side by side;
  with ``--versus RGSYNC_NAME=VALUE``, this checkout's worker with those settings instead.

The last line is ``RESULT {json}``; the run's topics and groups are deleted at the end.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from ops.bench_e2e_latency import (  # noqa: E402
    BROKER,
    MachineCpu,
    TopicWatcher,
    WorkerProbe,
    add_setting_arguments,
    delete_run_topics,
    lead_body,
    start_workers,
    versus_settings,
    wait_assigned,
    worker_settings,
)
from ops.bench_speed_to_lead import baseline_checkout  # noqa: E402

__all__ = ["main"]

_COLUMNS = ["id", "site_uuid", "first_name", "last_name", "email", "phone", "role", "source"]


def write_export(path: Path, leads: int, sites: int) -> list[str]:
    """A Real Geeks export (CSV) of distinct leads; returns their ids."""
    site_ids = [str(uuid.uuid4()) for _ in range(sites)]
    ids = []
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for n in range(leads):
            lead = uuid.uuid4().hex
            ids.append(lead)
            writer.writerow(
                lead_body(site_ids[n % sites], lead, n, f"+1808{3000000 + n % 6000000:07d}")
            )
    return ids


def _median(values: list[float | None]) -> float | None:
    """The median of the figures a run gave (None: none did)."""
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def settle(
    probes: list[WorkerProbe], *, idle_pct: float = 5.0, limit_s: float = 60.0
) -> float | None:
    """Seconds until every worker used under ``idle_pct`` of a core for a whole second;
    None when one never did within ``limit_s`` or is gone (no /proc: it read as 0 CPU)."""
    started = time.monotonic()
    last = [p.cpu_s() for p in probes]
    while time.monotonic() - started < limit_s:
        time.sleep(1.0)
        if not all(p.alive() for p in probes):
            return None
        now = [p.cpu_s() for p in probes]
        if all(100 * (n - b) < idle_pct for n, b in zip(now, last, strict=True)):
            return round(time.monotonic() - started, 1)
        last = now
    return None


def run_once(
    args: argparse.Namespace, export: Path, ids: list[str], root: Path, settings: dict[str, str]
) -> dict[str, Any]:
    """Workers up (``settings``: their RGSYNC_ settings), backfill, wait for every lead
    event; the figures of one run."""
    run_dir = Path(tempfile.mkdtemp(prefix="bench-backlog-"))
    workers = start_workers(
        args.broker,
        run_dir,
        args.workers,
        partitions=args.partitions,
        log_level="WARNING",
        root=root,
        # A --worker-setting or --versus may name the batch too: theirs wins over --batch.
        **{"RGSYNC_BATCH_MAX_MESSAGES": str(args.batch), **settings},
    )
    worker = workers[0]
    prefix = worker.env["RGSYNC_TOPIC_PREFIX"]
    watcher = TopicWatcher(
        args.broker, prefix + "leads.normalized", lambda v: v.get("source_lead_id")
    )
    try:
        partitions = wait_assigned(workers, args.partitions)
        probes = [WorkerProbe(w.proc.pid if w.proc else 0) for w in workers]
        watcher.start()
        watcher.ready.wait(60)
        cpu0 = [p.cpu_s() for p in probes]
        machine = MachineCpu().start()
        started = time.time()
        backfill = subprocess.run(
            [sys.executable, "-m", "realgeeks_sync.app.cli", "backfill", str(export)],
            cwd=ROOT,
            env=worker.env,
            capture_output=True,
            text=True,
        )
        sent_s = time.time() - started
        wanted = set(ids)
        seen, progress_at = 0, time.monotonic()
        while not wanted <= watcher.arrivals.keys():
            time.sleep(0.5)
            if len(watcher.arrivals) != seen:
                seen, progress_at = len(watcher.arrivals), time.monotonic()
            elif time.monotonic() - progress_at > args.stall_timeout:
                break
        cpu = [p.cpu_s() - c for p, c in zip(probes, cpu0, strict=True)]
        machine_cpu = machine.stop(sum(cpu))
        settled = settle(probes)
        cpu_settled = [p.cpu_s() - c for p, c in zip(probes, cpu0, strict=True)]
    finally:
        watcher.stop()
        for w in workers:
            w.stop()
    if not args.keep_topics:
        delete_run_topics(args.broker, prefix)
    got = [watcher.arrivals[i] for i in ids if i in watcher.arrivals]
    last = max(got) if got else started
    elapsed = last - started
    return {
        "root": str(root),
        "leads": len(ids),
        "received": len(got),
        "missing": len(ids) - len(got),
        "backfill_exit": backfill.returncode,
        "backfill_send_s": round(sent_s, 1),
        "minutes_to_last_event": round(elapsed / 60, 2),
        "events_per_s": round(len(got) / elapsed, 1) if elapsed > 0 else None,
        "cpu_ms_per_webhook": round(sum(cpu) * 1e3 / len(got), 3) if got else None,
        # The agents behind leads.normalized (stories, dialer, contexts) may still be busy
        # when the last lead event arrives: their work counts too.
        "cpu_ms_per_webhook_to_idle": (
            round(sum(cpu_settled) * 1e3 / len(got), 3) if got and settled is not None else None
        ),
        "settle_s": settled,
        "per_worker": [
            {"partitions": n, "cpu_s": round(c, 1), "cpu_pct": round(100 * c / elapsed, 1)}
            for n, c in zip(partitions, cpu, strict=True)
        ],
        "machine_cpu": machine_cpu,
        "backfill_tail": backfill.stderr.strip().splitlines()[-1:] if backfill.stderr else [],
        "worker_log": str(worker.log_path),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--leads", type=int, default=100_000)
    parser.add_argument("--sites", type=int, default=50)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--batch", type=int, default=64, help="RGSYNC_BATCH_MAX_MESSAGES")
    parser.add_argument("--baseline", help="also run this commit's worker, side by side")
    parser.add_argument(
        "--standby-replicas", type=int, help="RGSYNC_TABLE_STANDBY_REPLICAS (default: unset)"
    )
    add_setting_arguments(parser, "this checkout's", versus=True)
    parser.add_argument(
        "--rounds", type=int, default=1, help="runs of each with --baseline or --versus"
    )
    parser.add_argument("--stall-timeout", type=float, default=60.0)
    parser.add_argument("--broker", default=BROKER)
    parser.add_argument("--keep-topics", action="store_true")
    args = parser.parse_args(argv)
    if args.baseline and args.versus:
        parser.error("--baseline and --versus: one comparison at a time")
    own = worker_settings(args)
    runs: dict[str, list[dict[str, Any]]] = {"current": []}
    order = [("current", ROOT, own)]
    if args.baseline:
        # The earlier commit's workers get only the standby count (they may not know the rest).
        standby = worker_settings(argparse.Namespace(standby_replicas=args.standby_replicas))
        order = [("baseline", baseline_checkout(args.baseline), standby), *order]
    elif args.versus:
        order = [("versus", ROOT, versus_settings(args)), *order]
    other = order[0][0] if len(order) > 1 else None
    if other:
        runs[other] = []
    export = Path(tempfile.mkdtemp(prefix="bench-backlog-export-")) / "export.csv"
    ids = write_export(export, args.leads, args.sites)
    for rnd in range(args.rounds):
        for name, root, settings in order if rnd % 2 == 0 else list(reversed(order)):
            r = run_once(args, export, ids, root, settings)
            runs[name].append(r)
            print(
                f"{name} round {rnd + 1}: {r['received']}/{r['leads']} lead events in "
                f"{r['minutes_to_last_event']} min ({r['events_per_s']}/s), "
                f"{r['cpu_ms_per_webhook']} ms CPU per webhook "
                f"({r['cpu_ms_per_webhook_to_idle']} until idle after {r['settle_s']} s), "
                f"workers {r['per_worker']}, "
                f"machine {r['machine_cpu']}",
                flush=True,
            )
    result: dict[str, Any] = {
        "bench": "backlog",
        "leads": args.leads,
        "sites": args.sites,
        "workers": args.workers,
        "standby_replicas": args.standby_replicas,
        "partitions": args.partitions,
        "batch": args.batch,
        **{k: v for k, v in runs["current"][-1].items() if k not in ("root",)},
        "rounds": runs,
    }
    if other:
        result[other] = args.baseline or args.versus
        # Each CPU figure side by side: the median of each side and the ratio by round
        # (keys named for the other side: baseline_..., versus_...).
        for figure, ratio in (
            ("cpu_ms_per_webhook", "cpu_ratio"),
            ("cpu_ms_per_webhook_to_idle", "cpu_to_idle_ratio"),
        ):
            cur = [r[figure] for r in runs["current"]]
            base = [r[figure] for r in runs[other]]
            result[f"{other}_{figure}"] = _median(base)
            result[f"{figure}_median"] = _median(cur)
            result[f"{ratio}_{other}_over_current_by_round"] = [
                round(b / c, 2) for b, c in zip(base, cur, strict=True) if b and c
            ]
        result[f"{other}_events_per_s"] = statistics.median(
            r["events_per_s"] or 0 for r in runs[other]
        )
        result[f"{other}_minutes_by_round"] = [r["minutes_to_last_event"] for r in runs[other]]
        result["minutes_by_round"] = [r["minutes_to_last_event"] for r in runs["current"]]
    print("RESULT " + json.dumps(result, separators=(",", ":")), flush=True)
    return 0 if result["missing"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
