"""Run every benchmark under ops/ and print one table (``ops/bench``).

Each benchmark is its own script ending with a ``RESULT {json}`` line; this runner starts
them one after another (never in parallel: the machine has two cores), keeps their full
output under var/bench/, and prints the figures the issues ask for next to their aims.
It first deletes the topics of earlier benchmark runs that were killed before they could
(``delete_stale_bench_topics``): run one ``ops/bench`` at a time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable

Row = tuple[str, str, str]  # figure, value, aim

# The last commit before the dialer became a state machine (issue 9).
SPEED_BASELINE = "443b811"
# The last commit before issue 13's work on CPU per webhook.
CPU_BASELINE = "ab36bf8"


def _pct(d: dict[str, Any] | None, key: str) -> str:
    return "-" if not d or d.get(key) is None else f"{d[key]} ms"


def ingest(r: dict[str, Any]) -> list[Row]:
    summary = r.get("summary") or {}
    rows: list[Row] = []
    for name, target in summary.items():
        if not isinstance(target, dict):
            continue
        ratios = target.get("ratio_vs_bare_rounds")
        if ratios is None and name != "bare":
            bare = summary.get("bare", {}).get("max_rps_rounds") or []
            mine = target.get("max_rps_rounds") or []
            ratios = [round(m / b, 2) for m, b in zip(mine, bare, strict=False) if b]
        value = f"{target.get('max_rps_median')} req/s"
        if ratios:
            value += f", ratio to bare by round {', '.join(str(x) for x in ratios)}"
        value += (
            f"; at 500/s p50 {target.get('open_p50_ms_median')} ms, "
            f"p99 {target.get('open_p99_ms_median')} ms"
        )
        aim = "" if name == "bare" else ("ratio >= 0.5" if name == "ingress" else "")
        rows.append((f"ingest, {name}", value, aim))
    floor = summary.get("ingress_over_bare_publish_rounds")
    if floor:
        rows.append(
            (
                "  ingress / bare-publish (publish and await acks=all, nothing else; same run)",
                f"max req/s ratio by round {', '.join(str(x) for x in floor)}",
                "",
            )
        )
    secured = summary.get("sasl_ssl_over_plaintext_rounds")
    if secured:
        rows.append(
            (
                "  ingest to Kafka over TLS + SASL / plaintext (same run)",
                f"max req/s ratio by round {', '.join(str(x) for x in secured)}",
                "",
            )
        )
    return rows


def faust_floor(r: dict[str, Any]) -> list[Row]:
    by_hops = r.get("by_hops") or {}
    rounds = "; ".join(
        f"{h} hop(s) {', '.join(str(x) for x in v.get('cpu_us_per_record_rounds') or [])} us"
        for h, v in by_hops.items()
    )
    return [
        (
            "Faust alone (the worker's faust.App, no work): CPU per record read; per further hop",
            f"{r.get('read_us')} us; {r.get('read_and_send_us_per_further_hop')} us "
            f"(by round: {rounds})",
            "",
        )
    ]


def signatures(r: dict[str, Any]) -> list[Row]:
    return [
        (
            f"worst ElevenLabs signature accepted ({r.get('elevenlabs_values')} v0 values, "
            f"{r.get('elevenlabs_body_mib')} MiB, {r.get('secrets')} secrets): CPU",
            f"{r.get('elevenlabs_worst_accepted_ms')} ms (Real Geeks, 1 MiB: "
            f"{r.get('realgeeks_worst_accepted_ms')} ms)",
            "",
        ),
        (
            "  the issue's header (2,000 empty v0 values, 16 MiB) refused: CPU",
            f"{r.get('attack_refused_ms')} ms (old check, estimated: "
            f"{r.get('attack_old_estimate_s')} s)",
            "",
        ),
    ]


def e2e(r: dict[str, Any]) -> list[Row]:
    lat = r.get("event_after_200_ms") or {}
    cpu = r.get("worker_cpu_ms_per_webhook")
    return [
        (
            f"webhook 200 -> leads.normalized at {r.get('rate')}/s for {r.get('duration_s')} s"
            f" ({r.get('mode', 'worker')})",
            f"p50 {_pct(lat, 'p50')}, p99 {_pct(lat, 'p99')}",
            "p99 < 500 ms",
        ),
        (
            "  sent / received / missing",
            f"{r.get('sent')} / {r.get('received')} / {r.get('missing')}",
            "missing 0",
        ),
        ("  pipeline rate (events/s)", str(r.get("pipeline_rate")), ""),
        ("  worker CPU per webhook", f"{cpu} ms", ""),
        ("  worker RSS start -> end", json.dumps(r.get("worker_rss_mb")), ""),
    ]


def worker_rate(r: dict[str, Any]) -> list[Row]:
    steps = ", ".join(
        f"{s.get('rate'):g}/s p99 {s.get('p99_ms')} ms {s.get('cpu_ms_per_webhook')} ms CPU"
        f"{_gc_pauses(s.get('gc'))}"
        for s in r.get("steps") or []
    )
    return [
        (
            f"worker throughput: highest rate with p99 < {r.get('p99_bound_ms'):g} ms for "
            f"{r.get('duration_s'):g} s (ingress process)",
            f"{r.get('max_rate')}/s at {r.get('cpu_ms_per_webhook_at_max')} ms CPU per webhook",
            ">= 1000/s and <= 1 ms",
        ),
        ("  by offered rate", steps, ""),
    ]


def _gc_pauses(gc: dict[str, Any] | None) -> str:
    """A step's garbage-collector pauses (ops/bench_e2e_latency.py's worker_gc), if reported."""
    if not gc:
        return ""
    longest = gc.get("longest_ms_at_most")
    return f" (GC {gc.get('ms')} ms in {gc.get('pauses')} pauses, <= {longest} ms)"


def _standby(r: dict[str, Any]) -> str:
    """How many standby copies the run's workers kept, when it set them."""
    n = r.get("standby_replicas")
    return "" if n is None else f", {n} standby"


def backlog(r: dict[str, Any]) -> list[Row]:
    per = ", ".join(
        f"{w.get('partitions')} partitions {w.get('cpu_pct')} % CPU"
        for w in r.get("per_worker") or []
    )
    rows: list[Row] = [
        (
            f"backfill of {r.get('leads')} leads, {r.get('workers')} worker(s)"
            f"{_standby(r)}: start -> last event",
            f"{r.get('minutes_to_last_event')} min, {r.get('events_per_s')} events/s, "
            f"{r.get('cpu_ms_per_webhook')} ms CPU per webhook to the last event, "
            f"{r.get('cpu_ms_per_webhook_to_idle')} until idle ({per}); "
            f"missing {r.get('missing')}",
            "",
        )
    ]
    if r.get("baseline"):
        ratios = ", ".join(str(x) for x in r.get("cpu_ratio_baseline_over_current_by_round") or [])
        rows.append(
            (
                f"  CPU per webhook, {r.get('baseline')} (before issue 13) / this, by round",
                f"{r.get('baseline_cpu_ms_per_webhook')} / {r.get('cpu_ms_per_webhook_median')} ms;"
                f" ratio {ratios}; events/s {r.get('baseline_events_per_s')} / "
                f"{r.get('events_per_s')}",
                "3x",
            )
        )
        idle = ", ".join(
            str(x) for x in r.get("cpu_to_idle_ratio_baseline_over_current_by_round") or []
        )
        rows.append(
            (
                "  the same until the worker is idle (the agents behind leads.normalized too)",
                f"{r.get('baseline_cpu_ms_per_webhook_to_idle')} / "
                f"{r.get('cpu_ms_per_webhook_to_idle_median')} ms; ratio {idle}",
                "3x",
            )
        )
    return rows


def speed(r: dict[str, Any]) -> list[Row]:
    lat = r.get("call_after_200_ms") or {}
    rows = [
        (
            f"speed to lead: webhook 200 -> outbound-call request ({r.get('rate')}/s)",
            f"p50 {_pct(lat, 'p50')}, p99 {_pct(lat, 'p99')} ({r.get('called')} called)",
            "p99 < 1 s",
        )
    ]
    rounds = r.get("rounds") or {}
    if rounds:
        base = ", ".join(str(x.get("p50")) for x in rounds.get("baseline", []))
        mine = ", ".join(str(x.get("p50")) for x in rounds.get("current", []))
        ratios = ", ".join(str(x) for x in r.get("p50_ratio_by_round") or [])
        rows.append(
            (
                f"  p50 by round: this / {r.get('baseline')} (before the dialer's rules)",
                f"{mine} / {base} ms; ratio {ratios}",
                "ratio <= 1.2",
            )
        )
    return rows


def dialer(r: dict[str, Any]) -> list[Row]:
    per = ", ".join(f"{k}: {v} us" for k, v in (r.get("us_per_transition") or {}).items())
    return [
        (
            f"dialer decisions (state machine, {r.get('leads')} leads, no broker)",
            f"{r.get('transitions_per_s')} transitions/s; {per}",
            "",
        )
    ]


def dedup(r: dict[str, Any]) -> list[Row]:
    rows: list[Row] = [
        (
            f"identity resolution (threshold {r.get('fuzzy_threshold')}): "
            "precision / recall / F1, blocking recall, events/s",
            "",
            "",
        )
    ]
    for d in r.get("datasets") or []:
        name = d.get("dataset")
        aim = "P >= 0.995, F1 >= 0.96" if str(name).startswith("febrl") else ""
        rows.append(
            (
                f"  {name} ({d.get('records')} records, {d.get('true_pairs')} true pairs)",
                f"{d.get('precision'):.4f} / {d.get('recall'):.4f} / {d.get('f1'):.4f}, "
                f"blocking {d.get('blocking_recall'):.4f}, {d.get('events_per_s'):.0f}/s",
                aim,
            )
        )
    return rows


def identity(r: dict[str, Any]) -> list[Row]:
    sizes = r.get("sizes") or []
    per = ", ".join(f"{s.get('size')}: {s.get('us_per_event')} us" for s in sizes)
    cpu = ", ".join(
        f"{s.get('size')}: {s.get('cpu_us_per_event')} us ({s.get('events_per_s_cpu')}/s)"
        for s in sizes
    )
    return [
        ("identity resolution per event (10k, 100k, 1M leads), wall", per, ""),
        ("  CPU per event (events/s on one core)", cpu, ">= 5000/s"),
        (
            "  cost at largest / smallest (wall, CPU)",
            f"{r.get('ratio_largest_to_smallest')}, {r.get('ratio_cpu_largest_to_smallest')}",
            "<= 2x",
        ),
        (
            "  store reads in it (RocksDB lookup, JSON decode; wall): reads, time per event",
            ", ".join(
                f"{s.get('size')}: {s.get('store_reads_per_event')}, "
                f"{s.get('store_read_us_per_event')} us"
                for s in sizes
            ),
            "",
        ),
        ("  RSS at largest index", f"{r.get('rss_mib_at_largest')} MiB", ""),
    ]


def initiation(r: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    for name, phase in (r.get("phases") or {}).items():
        lat = phase.get("latency_ms") or {}
        rows.append(
            (
                f"pre-call webhook at {r.get('rate')}/s, {r.get('leads')} leads known ({name})",
                f"p50 {_pct(lat, 'p50')}, p99 {_pct(lat, 'p99')}; answers {phase.get('answers')}",
                "p99 < 50 ms",
            )
        )
    rows.append(
        (
            "  caller directory: records read, disk, worker RSS (MB)",
            f"{r.get('directory_caught_up_s')} s, {r.get('directory_disk_mb')} MB, "
            f"{json.dumps(r.get('worker_rss_mb'))}",
            "",
        )
    )
    return rows


BENCHES: list[tuple[str, list[str], Callable[[dict[str, Any]], list[Row]]]] = [
    (
        "ingest",
        ["ops/bench_ingest.py", "--targets", "bare,bare-publish,ingress,ingress-aiokafka,worker"],
        ingest,
    ),
    # TLS + SASL beside plaintext (issue 10), in the same run: a row of its own, because it
    # needs the secured broker's ports free (another checkout's broker can hold them), and
    # then only this row is lost.
    (
        "ingest_secure",
        ["ops/bench_ingest.py", "--targets", "bare,ingress,ingress-sasl-ssl", "--rounds", "3"],
        ingest,
    ),
    ("signatures", ["ops/bench_signatures.py"], signatures),
    # The aim (p99 < 500 ms at 200/s) with the ingress in its own process, and the
    # single-process deployment (ingress on the worker's event loop) for comparison.
    (
        "e2e",
        ["ops/bench_e2e_latency.py", "--rate", "200", "--duration", "60", "--ingress-process"],
        e2e,
    ),
    ("e2e_worker", ["ops/bench_e2e_latency.py", "--rate", "200", "--duration", "60"], e2e),
    ("e2e_worker_100", ["ops/bench_e2e_latency.py", "--rate", "100", "--duration", "60"], e2e),
    # Issue 13: the highest rate one worker keeps with p99 < 500 ms for a minute.
    ("worker_rate", ["ops/bench_worker_rate.py", "--duration", "60"], worker_rate),
    # What Faust itself costs per record read and sent on, with no work: a floor for the above.
    ("faust_floor", ["ops/bench_faust_floor.py"], faust_floor),
    # A backlog taken as fast as the worker can: this branch against the commit before it
    # (CPU per webhook side by side), the split over two workers, and 100,000 leads.
    (
        "backlog_vs_baseline",
        ["ops/bench_backlog.py", "--leads", "10000", "--rounds", "2", "--baseline", CPU_BASELINE],
        backlog,
    ),
    (
        "backlog_two_workers",
        ["ops/bench_backlog.py", "--leads", "20000", "--workers", "2"],
        backlog,
    ),
    # Each standby copy applies every table write once more: the same two workers without.
    (
        "backlog_two_workers_no_standby",
        ["ops/bench_backlog.py", "--leads", "20000", "--workers", "2", "--standby-replicas", "0"],
        backlog,
    ),
    ("backlog_one_worker", ["ops/bench_backlog.py", "--leads", "20000"], backlog),
    ("backfill_100k", ["ops/bench_backlog.py", "--leads", "100000"], backlog),
    ("speed_to_lead", ["ops/bench_speed_to_lead.py", "--leads", "1000"], speed),
    # Side by side with the last commit before the dialer's state machine (issue 9): the
    # safety rules may cost at most 20 % of the p50. At 20 leads/s, below the rate where
    # this 2-core machine (broker and load generator included) saturates.
    (
        "speed_to_lead_vs_baseline",
        [
            "ops/bench_speed_to_lead.py",
            "--leads",
            "400",
            "--rate",
            "20",
            "--rounds",
            "4",
            "--baseline",
            SPEED_BASELINE,
            # The dialer's cost, not the fetch wait's (50 ms by default, for CPU per webhook).
            "--worker-setting",
            "RGSYNC_FETCH_MAX_WAIT_MS=5",
        ],
        speed,
    ),
    ("dialer", ["ops/bench_dialer.py"], dialer),
    # The pre-call webhook of inbound calls: its own topics, 100,000 leads in the directory.
    ("initiation", ["ops/bench_initiation.py"], initiation),
    ("dedup", ["ops/bench_dedup.py"], dedup),
    ("identity", ["ops/bench_identity.py"], identity),
]


def _result_of(log: Path) -> dict[str, Any] | None:
    result = None
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("RESULT "):
            result = json.loads(line[len("RESULT ") :])
    return result


def run(name: str, argv: list[str], out_dir: Path, reuse: bool) -> dict[str, Any] | None:
    log = out_dir / f"{name}.log"
    if reuse and log.exists() and _result_of(log):
        print(f"# {name}: reusing {log.relative_to(ROOT)}", file=sys.stderr)
        return _result_of(log)
    started = time.monotonic()
    with open(log, "w") as fh:
        proc = subprocess.run(
            [PY, *argv],
            cwd=ROOT,
            stdout=fh,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
    result = _result_of(log)
    took = time.monotonic() - started
    print(
        f"# {name}: exit {proc.returncode}, {took:.0f} s, log {log.relative_to(ROOT)}",
        file=sys.stderr,
    )
    return result


def _prune_stale_topics() -> None:
    """Delete what killed benchmark runs left on the broker: every topic slows it a little.

    Best effort: without a broker the benchmarks that need one say so themselves.
    """
    from bench_e2e_latency import BROKER, delete_stale_bench_topics

    try:
        deleted = delete_stale_bench_topics(BROKER)
    except Exception as exc:  # noqa: BLE001 - no broker, or it did not answer in time
        print(f"earlier benchmark runs' topics not deleted: {exc}", file=sys.stderr, flush=True)
        return
    if deleted:
        print(f"deleted {deleted} topics of earlier benchmark runs", file=sys.stderr, flush=True)
        # The broker removes their files after answering (at once with ops/kafka's
        # settings): not while the first benchmark measures.
        time.sleep(5)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", help="comma-separated: " + ",".join(b[0] for b in BENCHES))
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="take a benchmark's last result from var/bench/NAME.log if there",
    )
    args = parser.parse_args()
    wanted = set(args.only.split(",")) if args.only else None
    out_dir = ROOT / "var" / "bench"
    out_dir.mkdir(parents=True, exist_ok=True)
    if not args.reuse:
        _prune_stale_topics()
    rows: list[Row] = []
    for name, argv, fmt in BENCHES:
        if wanted and name not in wanted:
            continue
        result = run(name, argv, out_dir, args.reuse)
        try:
            rows += fmt(result) if result else [(f"{name}: no RESULT line", "see its log", "")]
        except (KeyError, TypeError, AttributeError) as exc:
            rows.append((f"{name}: unexpected RESULT shape ({exc})", "see its log", ""))
    machine = (
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{time.strftime('%Y-%m-%d')}"
    )
    width = max(len(r[0]) for r in rows)
    vwidth = max(len(r[1]) for r in rows)
    print(f"realgeeks-sync benchmarks ({machine})")
    print(f"| {'figure'.ljust(width)} | {'value'.ljust(vwidth)} | aim |")
    print(f"|{'-' * (width + 2)}|{'-' * (vwidth + 2)}|-----|")
    for figure, value, aim in rows:
        print(f"| {figure.ljust(width)} | {value.ljust(vwidth)} | {aim} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
